"""Schema `auth`: the managed API keys and the audit trail, shared by every service (libs/common owns it).

Every service migrates it at start (under the migration lock, so replicas do not race) and reads and writes it
through `libs.common.apikeys` and `libs.common.audit` only: see docs/architecture.md, "Access and audit".
"""

from pathlib import Path

SCHEMA = "auth"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
