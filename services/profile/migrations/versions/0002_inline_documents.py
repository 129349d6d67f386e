"""Profile documents up to a page are stored inline and uncompressed.

A typical document is just over PostgreSQL's 2 kB TOAST threshold, so by default every upsert ran pglz over it:
measured as a sixth of PostgreSQL's CPU under the consumer. A document is rewritten on every change and read by
primary key, so the disk saved by compressing it is not worth that; documents beyond a page are still compressed.
"""

from alembic import op

revision = "profile_0002"
down_revision = "profile_0001"

SCHEMA = "profile"


def upgrade() -> None:
    op.execute(f"ALTER TABLE {SCHEMA}.customers SET (toast_tuple_target = 8160)")


def downgrade() -> None:
    op.execute(f"ALTER TABLE {SCHEMA}.customers RESET (toast_tuple_target)")
