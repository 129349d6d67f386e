"""`python -m retain_cli.reaper PID`: stops the embedded PostgreSQL when the process that started it dies.

PostgreSQL is started through pg_ctl, which detaches the server: it cannot ask to die with the supervisor itself.
This small child of the supervisor can; when the kernel signals it (the supervisor is gone, even by SIGKILL) it
gives the server a fast shutdown.
"""

from __future__ import annotations

import os
import signal
import sys
import time

FAST_SHUTDOWN_WAIT_S = 30.0


def stop_server(pid: int) -> None:
    """SIGINT is PostgreSQL's fast shutdown; SIGKILL only if it has not finished in time."""
    try:
        os.kill(pid, signal.SIGINT)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + FAST_SHUTDOWN_WAIT_S
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def main(argv: list[str]) -> int:
    server_pid = int(argv[0])
    parent = int(argv[1])

    def on_parent_death(signum: int, frame: object) -> None:
        stop_server(server_pid)
        os._exit(0)

    signal.signal(signal.SIGTERM, on_parent_death)
    signal.signal(signal.SIGHUP, on_parent_death)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the supervisor's to handle, in order
    from libs.common.lifetime import die_with_parent

    die_with_parent(signal.SIGTERM, parent)
    while True:
        signal.pause()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
