"""Drives a program in a pseudo-terminal, as a person would: waits for each question's
`[id]` prompt and types the answer. Arguments: a JSON file with `argv`, `env` and
`steps` ([question id, answer] in order). Prints the whole session; exits with the
program's exit code (or 97 when a prompt never came)."""
import json
import os
import pty
import select
import sys
import time

script = json.load(open(sys.argv[1]))
pid, fd = pty.fork()
if pid == 0:
    os.environ.update(script["env"])
    os.execv(script["argv"][0], script["argv"])

seen = b""
pending = b""


def read_until(marker, timeout=90):
    global seen, pending
    end = time.time() + timeout
    while marker not in pending:
        ready, _, _ = select.select([fd], [], [], max(0.0, end - time.time()))
        if not ready:
            sys.stdout.write((seen + pending).decode(errors="replace"))
            print(f"\n[pty_drive] timed out waiting for {marker!r}")
            sys.exit(97)
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            chunk = b""
        if not chunk:
            sys.stdout.write((seen + pending).decode(errors="replace"))
            print(f"\n[pty_drive] the program ended while waiting for {marker!r}")
            sys.exit(97)
        pending += chunk
    cut = pending.index(marker) + len(marker)
    seen += pending[:cut]
    pending = pending[cut:]


for question, answer in script["steps"]:
    read_until(f"[{question}]".encode())
    read_until(b"> ")
    os.write(fd, (answer + "\n").encode())

rest = b""
while True:
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    rest += chunk
_, status = os.waitpid(pid, 0)
sys.stdout.write((seen + pending + rest).decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
