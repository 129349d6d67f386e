"""customer_aliases: ids that profile joined to a customer (libs.common.aliases)."""

from libs.common.migrations import create_customer_aliases, drop_customer_aliases

revision = "feedback_0004"
down_revision = "feedback_0003"

SCHEMA = "feedback"


def upgrade() -> None:
    create_customer_aliases(SCHEMA)


def downgrade() -> None:
    drop_customer_aliases(SCHEMA)
