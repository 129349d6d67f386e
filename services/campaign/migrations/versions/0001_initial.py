"""Campaign: campaigns, customer facts, actions, coupons, A/B assignments, loyalty, scheduler; seeds built-ins.

Nothing was deployed before this revision, so it creates the schema from `adapters/tables.py` as it is
today. Once deployed, later changes to tables.py go into new revisions (op.add_column ...), never here.
"""

import json

import sqlalchemy as sa
from alembic import op

from libs.common.migrations import create_messaging_tables

revision = "campaign_0001"
down_revision = None

SCHEMA = "campaign"

# The welcome to the top tier: one 10 % coupon when a customer crosses into tier "high".
TOP_TIER_WELCOME = {
    "name": "Top tier welcome",
    "trigger": {"kind": "threshold_crossed", "crossing": "tier_up", "to": "high"},
    "audience": {},
    "actions": [{"type": "coupon", "kind": "percent", "value": "10", "valid_days": 30}],
    "status": "active",
    "variants": [],
    "holdout_percent": 0.0,
    "conversion_window_days": 14,
}


def upgrade() -> None:
    from services.campaign.adapters import tables

    create_messaging_tables(SCHEMA)
    bind = op.get_bind()
    domain_tables = [
        tables.campaigns,
        tables.customer_facts,
        tables.actions,
        tables.coupons,
        tables.assignments,
        tables.purchases,
        tables.loyalty_accounts,
        tables.scheduled_triggers,
    ]
    tables.metadata.create_all(bind, tables=domain_tables)
    bind.execute(
        sa.text(
            "INSERT INTO campaign.campaigns (id, name, definition, status, builtin)"
            " VALUES (:id, :name, CAST(:definition AS jsonb), 'active', true)"
        ),
        {
            "id": "builtin-top-tier-welcome",
            "name": TOP_TIER_WELCOME["name"],
            "definition": json.dumps(TOP_TIER_WELCOME),
        },
    )


def downgrade() -> None:
    for name in (
        "scheduled_triggers",
        "loyalty_accounts",
        "purchases",
        "assignments",
        "coupons",
        "actions",
        "customer_facts",
        "campaigns",
        "outbox",
        "inbox",
    ):
        op.drop_table(name, schema=SCHEMA)
