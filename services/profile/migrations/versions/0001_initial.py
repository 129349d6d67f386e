"""Profile: customers, aliases, erasures, timeline, segments, inbox and outbox."""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from libs.common.migrations import create_messaging_tables

revision = "profile_0001"
down_revision = None

SCHEMA = "profile"


def upgrade() -> None:
    create_messaging_tables(SCHEMA)
    op.create_table(
        "customers",
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("state", JSONB, nullable=False),
        sa.Column("rev", sa.BigInteger, nullable=False),
        sa.Column("email", sa.Text),
        sa.Column("phone", sa.Text),
        sa.Column("erp_id", sa.Text),
        sa.Column("shop_id", sa.Text),
        sa.Column("tags", ARRAY(sa.Text), nullable=False, server_default="{}"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    for column in ("email", "phone", "erp_id", "shop_id"):
        op.create_index(f"customers_{column}", "customers", [column], schema=SCHEMA)
    op.create_index("customers_tags", "customers", ["tags"], postgresql_using="gin", schema=SCHEMA)
    op.create_table(
        "aliases",
        sa.Column("merged_id", sa.Text, primary_key=True),
        sa.Column("survivor_id", sa.Text, nullable=False),
        sa.Column("merged_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_index("ix_profile_aliases_survivor_id", "aliases", ["survivor_id"], schema=SCHEMA)
    op.create_table(
        "erasures",
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "timeline",
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("event_time", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("summary", JSONB, nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "segments",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("condition", JSONB, nullable=False),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_table(
        "segment_members",
        sa.Column("segment_id", sa.Text, sa.ForeignKey(f"{SCHEMA}.segments.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=SCHEMA,
    )
    op.create_index("segment_members_customer", "segment_members", ["customer_id"], schema=SCHEMA)


def downgrade() -> None:
    for table in ("segment_members", "segments", "timeline", "erasures", "aliases", "customers", "outbox", "inbox"):
        op.drop_table(table, schema=SCHEMA)
