"""Published outbox rows are kept for the redelivery window (see libs.common.migrations.create_outbox_sent)."""

from libs.common.migrations import create_outbox_sent, drop_outbox_sent

revision = "campaign_0004"
down_revision = "campaign_0003"

SCHEMA = "campaign"


def upgrade() -> None:
    create_outbox_sent(SCHEMA)


def downgrade() -> None:
    drop_outbox_sent(SCHEMA)
