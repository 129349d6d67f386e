"""Behavioural clusters: the centres of the last fit and each customer's cluster (published as a segment)."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "insights_0005"
down_revision = "insights_0004"

SCHEMA = "insights"


def upgrade() -> None:
    op.create_table(
        "clusters",
        sa.Column("segment", sa.Text, primary_key=True),
        sa.Column("customers", sa.Integer, nullable=False),
        sa.Column("centre", JSONB, nullable=False),
        sa.Column("z", JSONB, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("fit_id", sa.Text, nullable=False),
        sa.Column("k", sa.Integer, nullable=False),
        sa.Column("silhouette", sa.Float),
        sa.Column("fitted_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "cluster_members",
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("segment", sa.Text, nullable=False),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("cluster_members", schema=SCHEMA)
    op.drop_table("clusters", schema=SCHEMA)
