"""The shared outbox deletes rows once published (see libs.common.migrations.outbox_rows_deleted_on_publish)."""

from libs.common.migrations import outbox_rows_deleted_on_publish, outbox_rows_kept_after_publish

revision = "profile_0004"
down_revision = "profile_0003"

SCHEMA = "profile"


def upgrade() -> None:
    outbox_rows_deleted_on_publish(SCHEMA)


def downgrade() -> None:
    outbox_rows_kept_after_publish(SCHEMA)
