"""customer_aliases: ids that profile joined to a customer (libs.common.aliases)."""

from libs.common.migrations import create_customer_aliases, drop_customer_aliases

revision = "campaign_0003"
down_revision = "campaign_0002"

SCHEMA = "campaign"


def upgrade() -> None:
    create_customer_aliases(SCHEMA)


def downgrade() -> None:
    drop_customer_aliases(SCHEMA)
