"""Profile pages keep room for an updated document (fillfactor 70), so most upserts are HOT updates.

A profile is rewritten on every batch that touches it. With full pages the new version goes to another page and
every index on the table (five, one of them GIN) gets a new entry, even though identities and tags rarely
change; with room left on the page PostgreSQL updates in place and leaves the indexes alone.
"""

from alembic import op

revision = "profile_0005"
down_revision = "profile_0004"

SCHEMA = "profile"


def upgrade() -> None:
    op.execute(f"ALTER TABLE {SCHEMA}.customers SET (fillfactor = 70)")


def downgrade() -> None:
    op.execute(f"ALTER TABLE {SCHEMA}.customers RESET (fillfactor)")
