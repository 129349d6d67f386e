"""SLA breach seconds as bigint: a ticket from long ago, or a generous configured target, overflowed 32 bits.

Rewrites `sla_breaches` under an ACCESS EXCLUSIVE lock; the table holds one row per breached clock.
"""

import sqlalchemy as sa
from alembic import op

revision = "feedback_0006"
down_revision = "feedback_0005"

SCHEMA = "feedback"


def upgrade() -> None:
    for column in ("target_s", "elapsed_s"):
        op.alter_column("sla_breaches", column, type_=sa.BigInteger, existing_nullable=False, schema=SCHEMA)


def downgrade() -> None:
    for column in ("target_s", "elapsed_s"):
        op.alter_column("sla_breaches", column, type_=sa.Integer, existing_nullable=False, schema=SCHEMA)
