"""The shared outbox deletes rows once published (see libs.common.migrations.outbox_rows_deleted_on_publish)."""

from libs.common.migrations import outbox_rows_deleted_on_publish, outbox_rows_kept_after_publish

revision = "feedback_0003"
down_revision = "feedback_0002"

SCHEMA = "feedback"


def upgrade() -> None:
    outbox_rows_deleted_on_publish(SCHEMA)


def downgrade() -> None:
    outbox_rows_kept_after_publish(SCHEMA)
