"""Feedback: ticket SLA and routing state, SLA breaches, agents, surveys, survey tokens and responses, customers."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "feedback_0002"
down_revision = "feedback_0001"

SCHEMA = "feedback"
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    for column in (
        sa.Column("channel", sa.Text, nullable=False, server_default="web"),
        sa.Column("text", sa.Text, nullable=False, server_default=""),
        sa.Column("tier", sa.Text, nullable=False, server_default="low"),
        sa.Column("queue", sa.Text, nullable=False, server_default="general"),
        sa.Column("agent_id", sa.Text),
        sa.Column("first_response_at", TS),
        sa.Column("resolved_at", TS),
        sa.Column("closed_at", TS),
        sa.Column("status_history", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("sla_due_at", TS),
    ):
        op.add_column("tickets", column, schema=SCHEMA)
    op.create_index("tickets_customer", "tickets", ["customer_id"], schema=SCHEMA)
    op.create_index(
        "tickets_sla_due", "tickets", ["sla_due_at"], schema=SCHEMA, postgresql_where=sa.text("sla_due_at IS NOT NULL")
    )
    op.create_index(
        "tickets_agent_open",
        "tickets",
        ["agent_id"],
        schema=SCHEMA,
        postgresql_where=sa.text("status NOT IN ('resolved', 'closed')"),
    )
    op.create_index("tickets_opened_at", "tickets", ["opened_at"], schema=SCHEMA)

    op.create_table(
        "sla_breaches",
        sa.Column("ticket_id", sa.Text, primary_key=True),
        sa.Column("clock", sa.Text, primary_key=True),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("tier", sa.Text, nullable=False),
        sa.Column("priority", sa.Text, nullable=False),
        sa.Column("target_s", sa.Integer, nullable=False),
        sa.Column("elapsed_s", sa.Integer, nullable=False),
        sa.Column("breached_at", TS, nullable=False),
        sa.Column("detected_at", TS, nullable=False),
        schema=SCHEMA,
    )
    op.create_index("sla_breaches_customer", "sla_breaches", ["customer_id"], schema=SCHEMA)

    op.create_table(
        "agents",
        sa.Column("agent_id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("skills", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("max_load", sa.Integer, nullable=False),
        sa.Column("online", sa.Boolean, nullable=False, server_default=sa.text("true")),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_table(
        "surveys",
        sa.Column("survey_id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("question", sa.Text, nullable=False, server_default=""),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.text("true")),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_table(
        "survey_tokens",
        sa.Column("nonce", sa.Text, primary_key=True),
        sa.Column("survey_id", sa.Text, nullable=False),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("issued_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("used_at", TS),
        schema=SCHEMA,
    )
    op.create_index("survey_tokens_customer", "survey_tokens", ["customer_id"], schema=SCHEMA)
    op.create_table(
        "survey_responses",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("response_key", sa.Text, nullable=False, unique=True),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("survey_id", sa.Text),
        sa.Column("nps", sa.SmallInteger),
        sa.Column("csat", sa.SmallInteger),
        sa.Column("comment", sa.Text),
        sa.Column("sentiment", sa.Text, nullable=False),
        sa.Column("sentiment_score", sa.Float, nullable=False),
        sa.Column("tier", sa.Text),
        sa.Column("segments", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("responded_at", TS, nullable=False),
        schema=SCHEMA,
    )
    op.create_index("survey_responses_customer", "survey_responses", ["customer_id"], schema=SCHEMA)
    op.create_index("survey_responses_at", "survey_responses", ["responded_at"], schema=SCHEMA)
    op.create_table(
        "customers",
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("tier", sa.Text),
        sa.Column("tier_at", TS),
        sa.Column("segments", JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("segments_at", TS),
        schema=SCHEMA,
    )


def downgrade() -> None:
    for table in ("customers", "survey_responses", "survey_tokens", "surveys", "agents", "sla_breaches"):
        op.drop_table(table, schema=SCHEMA)
    for index in ("tickets_opened_at", "tickets_agent_open", "tickets_sla_due", "tickets_customer"):
        op.drop_index(index, table_name="tickets", schema=SCHEMA)
    for column in (
        "sla_due_at",
        "status_history",
        "closed_at",
        "resolved_at",
        "first_response_at",
        "agent_id",
        "queue",
        "tier",
        "text",
        "channel",
    ):
        op.drop_column("tickets", column, schema=SCHEMA)
