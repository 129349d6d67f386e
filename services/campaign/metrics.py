"""Campaign's gauges: what it decided and issued, counted from its own tables on a scrape."""

from __future__ import annotations

from prometheus_client import Gauge

from libs.common.metrics import Snapshot

# Every replica counts the same tables: the value set last is the current one.
ACTIONS = Snapshot(
    Gauge(
        "retain_campaign_actions",
        "Decided actions by kind (coupon, message, alert, holdout), channel, status (sent, failed, skipped, pending, "
        "deferred, issued) and skip reason.",
        ["kind", "channel", "status", "reason"],
        multiprocess_mode="livemostrecent",
    )
)
COUPONS_ISSUED = Snapshot(
    Gauge(
        "retain_coupons_issued",
        "Coupons issued, by campaign (since the start; erased customers' removed).",
        ["campaign"],
        multiprocess_mode="livemostrecent",
    )
)
COUPONS_REDEEMED = Snapshot(
    Gauge(
        "retain_coupons_redeemed",
        "Coupons redeemed by a purchase, by campaign.",
        ["campaign"],
        multiprocess_mode="livemostrecent",
    )
)
