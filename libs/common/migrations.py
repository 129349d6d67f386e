"""Alembic per service schema: each service keeps its own revisions and its own version table."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

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
    await asyncio.to_thread(upgrade_to_head, migrations_dir, database_url, schema)


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
    """Used by each service's first revision, so the inbox/outbox shape is defined once, in db.py."""
    from libs.common.db import MessagingTables

    tables = MessagingTables(MetaData(schema=schema))
    bind = context.get_bind()
    for table in (tables.inbox, tables.outbox):
        table.create(bind)
