"""`python -m strict` (with `tests/` as the working directory or on PYTHONPATH)."""

from strict.server import main

main()
