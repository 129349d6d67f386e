"""Stage runs for the churned-customers report, a partial index for coupon use, scores by time.

`stage_runs` folds each customer's scores into runs of the same stage and tier, so "the stage at the end of a period"
is a filter over runs instead of a sort of every score ever received.
"""

import sqlalchemy as sa
from alembic import op

revision = "insights_0008"
down_revision = "insights_0007"

SCHEMA = "insights"


def upgrade() -> None:
    op.create_table(
        "stage_runs",
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("since", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("until", sa.DateTime(timezone=True)),
        sa.Column("stage", sa.Text, nullable=False),
        sa.Column("tier", sa.Text),
        schema=SCHEMA,
    )
    # The same statement as store.rebuild_stage_runs, over every customer.
    op.execute(
        "INSERT INTO insights.stage_runs (customer_id, since, event_id, until, stage, tier) "
        "SELECT customer_id, scored_at, event_id, "
        "lead(scored_at) OVER (PARTITION BY customer_id ORDER BY scored_at, event_id), stage, tier FROM ("
        "SELECT customer_id, scored_at, event_id, stage, tier, lag(stage) OVER w AS prev_stage, "
        "lag(tier) OVER w AS prev_tier, row_number() OVER w AS n FROM insights.scores WHERE stage IS NOT NULL "
        "WINDOW w AS (PARTITION BY customer_id ORDER BY scored_at, event_id)) s "
        "WHERE n = 1 OR stage IS DISTINCT FROM prev_stage OR tier IS DISTINCT FROM prev_tier"
    )
    op.create_index(
        "purchases_coupon",
        "purchases",
        ["customer_id", "purchased_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("coupon_code IS NOT NULL"),
    )
    op.create_index("scores_scored_at", "scores", ["scored_at"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("scores_scored_at", "scores", schema=SCHEMA)
    op.drop_index("purchases_coupon", "purchases", schema=SCHEMA)
    op.drop_table("stage_runs", schema=SCHEMA)
