"""Managed API keys and the append-only audit trail."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "auth_0001"
down_revision = None

SCHEMA = "auth"


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.Text, primary_key=True),
        sa.Column("secret_sha256", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("scopes", ARRAY(sa.Text), nullable=False),
        sa.Column("rate_limit_per_s", sa.Float),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("replaced_by", sa.Text),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.clock_timestamp()),
        sa.Column("service", sa.Text, nullable=False),
        sa.Column("key_id", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("address", sa.Text),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("customer_id", sa.Text),
        sa.Column("target", sa.Text),
        sa.Column("details", JSONB, nullable=False, server_default="{}"),
        schema=SCHEMA,
    )
    op.create_index("audit_log_customer", "audit_log", ["customer_id", "occurred_at"], schema=SCHEMA)
    op.create_index("audit_log_actor", "audit_log", ["key_id", "occurred_at"], schema=SCHEMA)
    op.create_index("audit_log_time", "audit_log", ["occurred_at"], schema=SCHEMA)
    # An audit trail that its writers could edit would prove nothing: rows can only be added.
    op.execute(
        f"""CREATE FUNCTION "{SCHEMA}".audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'auth.audit_log is append-only';
        END $$"""
    )
    op.execute(
        f"""CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON "{SCHEMA}".audit_log
        FOR EACH ROW EXECUTE FUNCTION "{SCHEMA}".audit_log_append_only()"""
    )
    op.execute(
        f"""CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON "{SCHEMA}".audit_log
        FOR EACH STATEMENT EXECUTE FUNCTION "{SCHEMA}".audit_log_append_only()"""
    )


def downgrade() -> None:
    op.drop_table("audit_log", schema=SCHEMA)
    op.execute(f'DROP FUNCTION "{SCHEMA}".audit_log_append_only()')
    op.drop_table("api_keys", schema=SCHEMA)
