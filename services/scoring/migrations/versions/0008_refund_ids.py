"""Refunds keep upstream's refund id: the business key that makes two events of one refund count once."""

import sqlalchemy as sa
from alembic import op

revision = "scoring_0008"
down_revision = "scoring_0007"

SCHEMA = "scoring"


def upgrade() -> None:
    # a nullable column without default: a catalogue change, no table rewrite
    op.add_column("refunds", sa.Column("refund_id", sa.Text), schema=SCHEMA)


def downgrade() -> None:
    op.drop_column("refunds", "refund_id", schema=SCHEMA)
