"""Every service's revisions form one line: two revisions on the same parent (two branches merged) stop the service
at start-up ("multiple heads")."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from libs.common.migrations import alembic_config

SERVICES_DIR = Path(__file__).resolve().parents[2] / "services"
MIGRATION_DIRS = sorted(path.parent for path in SERVICES_DIR.glob("*/migrations/env.py"))


@pytest.mark.parametrize("migrations_dir", MIGRATION_DIRS, ids=lambda path: path.parent.name)
def test_one_head_and_unique_revisions(migrations_dir: Path) -> None:
    script = ScriptDirectory.from_config(alembic_config(migrations_dir, "postgresql://unused/none", "unused"))
    assert len(script.get_heads()) == 1, script.get_heads()
    files = list((migrations_dir / "versions").glob("*.py"))
    assert len(list(script.walk_revisions())) == len(files)


def test_every_service_was_found() -> None:
    assert len(MIGRATION_DIRS) >= 6
