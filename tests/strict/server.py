"""The strict moto server: moto's own server app (as `moto_server` runs it: threaded,
moto's request handler) behind the strict layer.

    .venv/bin/python tests/strict/server.py -H 127.0.0.1 -p 5000     # from anywhere
    cd tests && ../.venv/bin/python -m strict -H 127.0.0.1 -p 5000    # as a package
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script: make `strict` importable as a package.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "strict"  # noqa: A001


def build_app():
    """moto's WSGI app wrapped in the strict middleware."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from strict.middleware import StrictMiddleware, install_moto_hooks

    install_moto_hooks()
    inner = DomainDispatcherApplication(create_backend_app)
    inner.debug = True  # type: ignore[attr-defined]  # as moto's server sets it
    return StrictMiddleware(inner)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="moto server with AWS's IAM rules, limits and DynamoDB contention")
    parser.add_argument("-H", "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("-p", "--port", type=int, default=int(os.environ.get("MOTO_PORT", 5000)), help="port (default $MOTO_PORT or 5000)")
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))

    def stop(signum, frame):  # noqa: ANN001
        sys.exit(0)

    try:
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
    except ValueError:
        pass

    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import run_simple

    # moto parses an UpdateExpression recursively, a frame or more per clause: an
    # update of a few hundred attributes (DynamoDB takes up to 4 KB of expression)
    # passes Python's default limit. Each request's thread gets the stack for it.
    import threading

    sys.setrecursionlimit(20_000)
    threading.stack_size(256 << 20)

    app = build_app()
    print(f"strict moto server on http://{args.host}:{args.port} (template {__import__('strict.cfn').cfn.template_path()})",
          file=sys.stderr, flush=True)
    run_simple(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
