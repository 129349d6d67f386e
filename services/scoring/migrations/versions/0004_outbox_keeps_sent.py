"""Published outbox rows are kept for the redelivery window (see libs.common.migrations.create_outbox_sent)."""

from libs.common.migrations import create_outbox_sent, drop_outbox_sent

revision = "scoring_0004"
down_revision = "scoring_0003"

SCHEMA = "scoring"


def upgrade() -> None:
    create_outbox_sent(SCHEMA)


def downgrade() -> None:
    drop_outbox_sent(SCHEMA)
