"""Ids profile joined to a customer (`profile.merged`, `profile.aliased`): counted as that customer, once."""

from libs.common.migrations import create_customer_aliases, drop_customer_aliases

revision = "insights_0006"
down_revision = "insights_0005"

SCHEMA = "insights"


def upgrade() -> None:
    create_customer_aliases(SCHEMA)


def downgrade() -> None:
    drop_customer_aliases(SCHEMA)
