"""Every material change of a customer's score (append-only history) and the next instant a customer's score
changes without any event (the due-time scheduler's table)."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "scoring_0005"
down_revision = "scoring_0004"

SCHEMA = "scoring"


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    op.create_table(
        "score_history",
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("at", ts, nullable=False),
        sa.Column("as_of", ts, nullable=False),
        sa.Column("trigger", sa.Text, nullable=False),
        sa.Column("cause_id", sa.Text, nullable=False),
        sa.Column("model_version", sa.BigInteger),
        sa.Column("changes", ARRAY(sa.Text), nullable=False),
        sa.Column("tier", sa.Text, nullable=False),
        sa.Column("stage", sa.Text, nullable=False),
        sa.Column("churn_risk", sa.Double, nullable=False),
        sa.Column("clv", sa.Double),
        sa.Column("previous", JSONB),
        sa.Column("reasons", JSONB, nullable=False),
        sa.Column("recorded_at", ts, nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_index("score_history_page", "score_history", ["customer_id", "at", "event_id"], schema=SCHEMA)
    op.create_index("score_history_at", "score_history", ["at"], schema=SCHEMA)
    op.create_table(
        "due_times",
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("due_at", ts, nullable=False),
        schema=SCHEMA,
    )
    op.create_index("due_times_due_at", "due_times", ["due_at"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("due_times", schema=SCHEMA)
    op.drop_table("score_history", schema=SCHEMA)
