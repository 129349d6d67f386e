"""The shared outbox deletes rows once published (see libs.common.migrations.outbox_rows_deleted_on_publish)."""

from libs.common.migrations import outbox_rows_deleted_on_publish, outbox_rows_kept_after_publish

revision = "ingest_0002"
down_revision = "ingest_0001"

SCHEMA = "ingest"


def upgrade() -> None:
    outbox_rows_deleted_on_publish(SCHEMA)


def downgrade() -> None:
    outbox_rows_kept_after_publish(SCHEMA)
