"""Ingest: event log (dedupe + outbox of accepted events), inbox and outbox."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from libs.common.migrations import create_messaging_tables

revision = "ingest_0001"
down_revision = None

SCHEMA = "ingest"


def upgrade() -> None:
    create_messaging_tables(SCHEMA)
    op.create_table(
        "event_log",
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("data", JSONB, nullable=False),
        sa.Column("published", sa.Boolean, nullable=False, server_default=sa.text("false")),
        schema=SCHEMA,
    )
    op.create_index(
        "event_log_unpublished", "event_log", ["received_at"], schema=SCHEMA, postgresql_where=sa.text("NOT published")
    )
    op.create_index("event_log_event_time", "event_log", ["event_time"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("event_log", schema=SCHEMA)
