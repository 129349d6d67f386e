"""Alembic per service schema: each service keeps its own revisions and its own version table."""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa
from alembic import command, context, op
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from libs.common.auth_schema import MIGRATIONS_DIR as AUTH_MIGRATIONS
from libs.common.auth_schema import SCHEMA as AUTH_SCHEMA

# One lock id for every service: migrations of different schemas are cheap, and serialising
# them avoids two replicas of one service racing to create the same schema.
_MIGRATION_LOCK_ID = 0x5245544149


def alembic_config(migrations_dir: Path, database_url: str, schema: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["schema"] = schema
    return config


def upgrade_to_head(migrations_dir: Path, database_url: str, schema: str) -> None:
    """Blocking; call from a thread (alembic's env runs its own event loop)."""
    command.upgrade(alembic_config(migrations_dir, database_url, schema), "head")


async def migrate(migrations_dir: Path, database_url: str, schema: str) -> None:
    """A service's schema, and schema `auth` (API keys and the audit trail) that every service reads and writes."""
    await asyncio.to_thread(upgrade_to_head, migrations_dir, database_url, schema)
    if schema != AUTH_SCHEMA:
        await asyncio.to_thread(upgrade_to_head, AUTH_MIGRATIONS, database_url, AUTH_SCHEMA)


def run_env(metadata: MetaData) -> None:
    """Body of every service's alembic env.py."""
    config = context.config
    schema: str = config.attributes.get("schema") or metadata.schema or "public"
    url = config.get_main_option("sqlalchemy.url")
    assert url is not None

    def run(connection: Connection) -> None:
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        context.configure(
            connection=connection,
            target_metadata=metadata,
            version_table_schema=schema,
            include_schemas=True,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def main() -> None:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as connection:
                await connection.run_sync(run)
        finally:
            await engine.dispose()

    asyncio.run(main())


def create_messaging_tables(schema: str) -> None:
    """The inbox and outbox as every service's first revision created them.

    Frozen here on purpose: a revision is history, so it must not follow the current tables in db.py (later
    revisions, e.g. `outbox_rows_deleted_on_publish`, change them).
    """
    op.create_table(
        "inbox",
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("consumer", sa.Text, primary_key=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=schema,
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("key", sa.LargeBinary, nullable=False),
        sa.Column("value", sa.LargeBinary, nullable=False),
        sa.Column("headers", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        schema=schema,
    )
    _create_unpublished_index(schema)


def outbox_rows_deleted_on_publish(schema: str) -> None:
    """The relay deletes a row once the broker acknowledged it, so the outbox holds only what is unpublished.

    Marking rows published rewrote each ~1.5 kB row once more and left the relay's index scan walking over every
    published row until vacuum or the hourly purge; the topic itself is the record of what was published.
    """
    op.execute(f'DELETE FROM "{schema}".outbox WHERE published_at IS NOT NULL')
    op.drop_index("outbox_unpublished", table_name="outbox", schema=schema)
    op.drop_column("outbox", "published_at", schema=schema)


def outbox_rows_kept_after_publish(schema: str) -> None:
    """Downgrade of `outbox_rows_deleted_on_publish`."""
    op.add_column("outbox", sa.Column("published_at", sa.DateTime(timezone=True)), schema=schema)
    _create_unpublished_index(schema)


def create_outbox_sent(schema: str) -> None:
    """Published rows kept for the redelivery window (libs.common.outbox), apart from the outbox so that the relay's
    scan of unpublished rows never walks over them. A new, empty table: nothing is locked."""
    op.create_table(
        "outbox_sent",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("key", sa.LargeBinary, nullable=False),
        sa.Column("value", sa.LargeBinary, nullable=False),
        sa.Column("headers", JSONB, nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=schema,
    )
    op.create_index("outbox_sent_sent_at", "outbox_sent", ["sent_at"], schema=schema)


def drop_outbox_sent(schema: str) -> None:
    op.drop_table("outbox_sent", schema=schema)


def create_customer_aliases(schema: str) -> None:
    """The table of `libs.common.aliases.CustomerAliases`, as first created (a new, empty table: nothing is locked)."""
    op.create_table(
        "customer_aliases",
        sa.Column("alias_id", sa.Text, primary_key=True),
        sa.Column("customer_id", sa.Text, nullable=False),
        schema=schema,
    )
    op.create_index("customer_aliases_customer", "customer_aliases", ["customer_id"], schema=schema)


def drop_customer_aliases(schema: str) -> None:
    op.drop_table("customer_aliases", schema=schema)


def create_customer_erasures(schema: str) -> None:
    """The table of `libs.common.erasures.ErasureRecords`, as first created (a new, empty table: nothing is locked)."""
    op.create_table(
        "customer_erasures",
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        schema=schema,
    )


def drop_customer_erasures(schema: str) -> None:
    op.drop_table("customer_erasures", schema=schema)


def _create_unpublished_index(schema: str) -> None:
    op.create_index(
        "outbox_unpublished", "outbox", ["id"], schema=schema, postgresql_where=sa.text("published_at IS NULL")
    )
