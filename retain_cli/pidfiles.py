"""Pid files under the data directory: a broker or service left running by an earlier run is found and stopped.

A file holds the pid and the process's start time, so a pid the system has since given to another program is never
mistaken for ours.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

STALE_STOP_WAIT_S = 15.0


@dataclass(frozen=True)
class Stale:
    name: str
    pid: int


@dataclass
class PidFiles:
    directory: Path

    def record(self, name: str, pid: int) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            started = psutil.Process(pid).create_time()
        except psutil.Error:
            return  # already gone: nothing to find later
        path = self.directory / f"{name}.pid"
        temporary = path.with_suffix(".tmp")
        temporary.write_text(f"{pid}\n{started!r}\n")
        temporary.replace(path)

    def forget(self, name: str) -> None:
        (self.directory / f"{name}.pid").unlink(missing_ok=True)

    def running(self) -> list[Stale]:
        """Processes recorded by an earlier run that are still alive (files of dead ones are removed)."""
        alive: list[Stale] = []
        for path in sorted(self.directory.glob("*.pid")) if self.directory.exists() else []:
            pid = _recorded_alive(path)
            if pid is None:
                path.unlink(missing_ok=True)
            else:
                alive.append(Stale(path.stem, pid))
        return alive

    def stop_stale(self) -> list[Stale]:
        """Stops every recorded process still alive, with its whole process group (a service's workers)."""
        stale = self.running()
        for entry in stale:
            _signal_group(entry.pid, signal.SIGTERM)
        deadline = time.monotonic() + STALE_STOP_WAIT_S
        for entry in stale:
            while _alive(entry.pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _alive(entry.pid):
                _signal_group(entry.pid, signal.SIGKILL)
            self.forget(entry.name)
        return stale


def _recorded_alive(path: Path) -> int | None:
    try:
        pid_text, started_text = path.read_text().split()[:2]
        pid, started = int(pid_text), float(started_text)
        process = psutil.Process(pid)
        if process.create_time() != started or process.status() == psutil.STATUS_ZOMBIE:
            return None
        return pid
    except (ValueError, OSError, psutil.Error):
        return None


def _alive(pid: int) -> bool:
    try:
        status: str = psutil.Process(pid).status()
        return bool(status != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def _signal_group(pid: int, signum: int) -> None:
    """Children run in their own session, so their group id is their pid; the process alone if it has none."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass
