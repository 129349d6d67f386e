"""Erasure reaches ingest: erased ids (libs.common.erasures), the scrubs still to do, and `erasures_of`.

New tables and a function: nothing existing is locked or rewritten.
"""

from alembic import op

from libs.common.migrations import create_customer_erasures, drop_customer_erasures

revision = "ingest_0005"
down_revision = "ingest_0004"

SCHEMA = "ingest"


def upgrade() -> None:
    create_customer_erasures(SCHEMA)
    op.execute(f"CREATE TABLE {SCHEMA}.erasure_scrubs (customer_id text PRIMARY KEY, erased_at timestamptz NOT NULL)")
    # The gate's shared lock, then the records, in one round trip. VOLATILE: under READ COMMITTED the query after
    # the lock takes a fresh snapshot, so it sees an erasure that committed while this transaction waited for it.
    op.execute(
        f"""
        CREATE FUNCTION {SCHEMA}.erasures_of(ids text[])
        RETURNS TABLE (customer_id text, erased_at timestamptz)
        LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
            PERFORM pg_advisory_xact_lock_shared(1163018579, 1);
            RETURN QUERY SELECT e.customer_id, e.erased_at FROM {SCHEMA}.customer_erasures e
                         WHERE e.customer_id = ANY(ids);
        END
        $$
        """
    )


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {SCHEMA}.erasures_of(text[])")
    op.execute(f"DROP TABLE {SCHEMA}.erasure_scrubs")
    drop_customer_erasures(SCHEMA)
