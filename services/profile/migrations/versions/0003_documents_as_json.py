"""Profile documents are stored as `json` (the text as written), not `jsonb`.

The service always writes a document whole and reads it whole as text; nothing queries inside it (identities and
tags have their own columns). `jsonb` made PostgreSQL build a binary tree from every upserted document and turn
it back into text on every read, for operators we never use; `json` only checks the syntax on the way in.
"""

from alembic import op

revision = "profile_0003"
down_revision = "profile_0002"

SCHEMA = "profile"


def upgrade() -> None:
    op.execute(f"ALTER TABLE {SCHEMA}.customers ALTER COLUMN state TYPE json USING state::json")


def downgrade() -> None:
    op.execute(f"ALTER TABLE {SCHEMA}.customers ALTER COLUMN state TYPE jsonb USING state::jsonb")
