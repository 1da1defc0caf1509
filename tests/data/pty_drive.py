"""Drives a program in a pseudo-terminal, as a person would: waits for each question's
`[id]` prompt and types the answer. Arguments: a JSON file with `argv`, `env` and
`steps` ([question id, answer] in order). Prints the whole session; exits with the
program's exit code (or 97 when a prompt never came)."""
import json
import os
import pty
import select
import signal
import sys
import time

script = json.load(open(sys.argv[1]))
# The whole session's deadline: a question nobody answers must not hang the tests.
DEADLINE = time.time() + 180
pid, fd = pty.fork()
if pid == 0:
    os.environ.update(script["env"])
    os.execv(script["argv"][0], script["argv"])

seen = b""
pending = b""


def stop(code, why):
    sys.stdout.write((seen + pending).decode(errors="replace"))
    print(f"\n[pty_drive] {why}")
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except OSError:
        pass
    sys.exit(code)


def read_until(marker):
    global seen, pending
    end = min(DEADLINE, time.time() + 90)
    while marker not in pending:
        ready, _, _ = select.select([fd], [], [], max(0.0, end - time.time()))
        if not ready:
            stop(97, f"timed out waiting for {marker!r}")
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            chunk = b""
        if not chunk:
            stop(97, f"the program ended while waiting for {marker!r}")
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
    ready, _, _ = select.select([fd], [], [], max(0.0, DEADLINE - time.time()))
    if not ready:
        pending += rest
        stop(98, "the program did not end after the last answer (another question?)")
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
