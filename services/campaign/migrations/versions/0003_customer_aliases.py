"""customer_aliases: ids that profile merged into, or recognised as, another customer.

A new, empty table: nothing is locked or rewritten.
"""

import sqlalchemy as sa
from alembic import op

revision = "campaign_0003"
down_revision = "campaign_0002"

SCHEMA = "campaign"


def upgrade() -> None:
    op.create_table(
        "customer_aliases",
        sa.Column("alias_id", sa.Text, primary_key=True),
        sa.Column("customer_id", sa.Text, nullable=False),
        schema=SCHEMA,
    )
    op.create_index("customer_aliases_customer", "customer_aliases", ["customer_id"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("customer_aliases", schema=SCHEMA)
