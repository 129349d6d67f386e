"""The counted churned-customers reports, kept until a score, an erasure or a join changes them (or they age)."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "insights_0009"
down_revision = "insights_0008"

SCHEMA = "insights"


def upgrade() -> None:
    op.create_table(
        "churn_report_counts",
        sa.Column("grain", sa.Text, primary_key=True),
        sa.Column("period_start", sa.Date, primary_key=True),
        sa.Column("period_end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("token", sa.Text, nullable=False),
        sa.Column("counts", JSONB),
        sa.Column("computed_at", sa.DateTime(timezone=True)),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("churn_report_counts", schema=SCHEMA)
