#!/usr/bin/env python3
"""After `sam build`: every function in template.yaml has a `bootstrap` in .aws-sam/build
that is an arm64 Linux executable, as `provided.al2023` on arm64 runs it."""
import re
import sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent
template = (root / "template.yaml").read_text()
functions = re.findall(r"^  (\w+):\n    Type: AWS::Serverless::Function", template, re.M)
if not functions:
    sys.exit("check_artifacts: no AWS::Serverless::Function in template.yaml")
bad = []
for name in functions:
    path = root / ".aws-sam" / "build" / name / "bootstrap"
    if not path.is_file():
        bad.append(f"{name}: {path.relative_to(root)} is missing")
        continue
    head = path.read_bytes()[:20]
    # ELF, 64-bit, little-endian, e_machine 183 (EM_AARCH64).
    if head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
        bad.append(f"{name}: bootstrap is not a 64-bit little-endian ELF file")
    elif int.from_bytes(head[18:20], "little") != 183:
        bad.append(f"{name}: bootstrap is not built for arm64 (aarch64)")
    elif not path.stat().st_mode & 0o111:
        bad.append(f"{name}: bootstrap is not executable")
    else:
        size = path.stat().st_size / 1e6
        print(f"{name}: {path.relative_to(root)}, arm64, {size:.1f} MB")
if bad:
    sys.exit("check_artifacts:\n  " + "\n  ".join(bad))
