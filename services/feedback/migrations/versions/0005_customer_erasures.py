"""customer_erasures: ids erased on request and when (libs.common.erasures)."""

from libs.common.migrations import create_customer_erasures, drop_customer_erasures

revision = "feedback_0005"
down_revision = "feedback_0004"

SCHEMA = "feedback"


def upgrade() -> None:
    create_customer_erasures(SCHEMA)


def downgrade() -> None:
    drop_customer_erasures(SCHEMA)
