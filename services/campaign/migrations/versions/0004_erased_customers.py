"""erased_customers: the record that keeps an erased customer from coming back through a late event."""

from alembic import op

revision = "campaign_0004"
down_revision = "campaign_0003"

SCHEMA = "campaign"


def upgrade() -> None:
    from services.campaign.adapters import tables

    tables.metadata.create_all(op.get_bind(), tables=[tables.erased_customers])


def downgrade() -> None:
    op.drop_table("erased_customers", schema=SCHEMA)
