"""The scratch directory a benchmark runs its embedded PostgreSQL and broker in."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path


def scratch_directory(prefix: str) -> Path:
    base = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(base, 0o777)  # embedded PostgreSQL drops root privileges for its data directory
    return base


def discard_unless_failed(base: Path) -> None:
    """Call from `finally` once the servers stopped: a run leaves ~1 GB of database behind, worth keeping only
    when it failed (its logs are in there)."""
    if sys.exc_info()[0] is None:
        shutil.rmtree(base, ignore_errors=True)
    else:
        print(f"kept {base} for inspection", file=sys.stderr)
