"""Child processes that cannot outlive the process that started them.

A supervisor killed with SIGKILL runs no cleanup of its own, so each child asks the kernel to signal it when its
parent dies (Linux `PR_SET_PDEATHSIG`). Elsewhere the request is a no-op and the supervisor's own shutdown is all.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1
_prctl: Callable[..., int] | None = None
if sys.platform.startswith("linux"):
    try:
        _prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        _prctl = None


def parent_death_signal_supported() -> bool:
    return _prctl is not None


def die_with_parent(signum: int = signal.SIGTERM, parent_pid: int | None = None) -> None:
    """Asks for `signum` when the parent dies; exits at once if it is already gone (it died before we asked).

    Safe between fork and exec (no allocation beyond the foreign call): the setting survives exec.
    """
    if _prctl is None:
        return
    _prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)


def dying_with_this_process(signum: int = signal.SIGTERM) -> Callable[[], None]:
    """A `preexec_fn` for subprocess.Popen: the child gets `signum` when the calling process dies.

    Popen must be called from the main thread: the kernel signals the child when the thread that forked it exits.
    """
    parent = os.getpid()

    def preexec() -> None:
        die_with_parent(signum, parent)

    return preexec
