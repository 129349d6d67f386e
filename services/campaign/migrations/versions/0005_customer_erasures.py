"""customer_erasures: the record that keeps an erased customer from coming back through a late event."""

from libs.common.migrations import create_customer_erasures, drop_customer_erasures

revision = "campaign_0005"
down_revision = "campaign_0004"

SCHEMA = "campaign"


def upgrade() -> None:
    create_customer_erasures(SCHEMA)


def downgrade() -> None:
    drop_customer_erasures(SCHEMA)
