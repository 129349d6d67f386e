"""The key store of crypto-shredding (libs.common.personal): one wrapped data key per customer.

A new table: nothing existing is locked or rewritten.
"""

from alembic import op

revision = "ingest_0006"
down_revision = "ingest_0005"

SCHEMA = "ingest"


def upgrade() -> None:
    op.execute(
        f"""
        CREATE TABLE {SCHEMA}.customer_keys (
            customer_id text PRIMARY KEY,
            key_id text NOT NULL,
            wrapped_key bytea NOT NULL,
            scheme_version integer NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )


def downgrade() -> None:
    op.execute(f"DROP TABLE {SCHEMA}.customer_keys")
