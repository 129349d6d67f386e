"""Complaints kept as a set per customer (event id -> time), so the open stretch does not depend on arrival order."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "scoring_0007"
down_revision = "scoring_0006"

SCHEMA = "scoring"


def upgrade() -> None:
    op.add_column(
        "facts", sa.Column("complaints", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")), schema=SCHEMA
    )


def downgrade() -> None:
    op.drop_column("facts", "complaints", schema=SCHEMA)
