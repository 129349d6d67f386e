"""Reads and writes of scoring's tables; rows in, domain objects out."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import ARRAY, Row, Text, any_, bindparam, delete, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common import unnest
from services.scoring.adapters import history
from services.scoring.adapters.tables import aliases, clock, erasures, facts, models, purchases, refunds, scores
from services.scoring.domain.bgnbd import BgNbdParams
from services.scoring.domain.customer_score import ScoringModel
from services.scoring.domain.facts import PurchaseSummary, StoredFacts
from services.scoring.domain.gamma_gamma import GammaGammaParams
from services.scoring.domain.policy import ActiveModel
from services.scoring.domain.purchase_models import model_from_params
from services.scoring.domain.rfm import RankReference, RfmEdges

_FACT_FIELDS = tuple(f.name for f in fields(StoredFacts))
# Advisory locks of scoring's own keyspace (two-key form), apart from the ones other services take on the same ids.
_CUSTOMER_LOCK_CLASS = 0x53434F52  # "SCOR"
_SECONDS_PER_DAY = 86_400.0


async def lock_customers(session: AsyncSession, customer_ids: Iterable[str]) -> None:
    """Holds every id's lock until the transaction ends, taken in id order so that two batches cannot deadlock.

    Purchases (customer-events), profile's joins and erasures (profile-changes) and feedback run in consumers of
    their own: the lock makes an erasure or a join and a batch about the same id happen one after the other, so a
    batch either commits before the erasure deletes (and is deleted with the rest) or reads its record after."""
    ids = sorted(set(customer_ids))
    if ids:
        await session.execute(
            text(
                "SELECT count(pg_advisory_xact_lock(:lock_class, hashtext(id))) "
                "FROM (SELECT unnest(CAST(:ids AS text[])) AS id ORDER BY 1) AS locked"
            ),
            {"lock_class": _CUSTOMER_LOCK_CLASS, "ids": ids},
        )


async def try_lock_customers(session: AsyncSession, customer_ids: Iterable[str]) -> list[str]:
    """The ids whose lock was free and is now held until the transaction ends. The due-time scheduler holds due
    rows before it asks, and a consumer holding a customer's lock may be waiting for that row: waiting here
    could deadlock, and a customer a consumer is busy with gets a fresh due time from it anyway."""
    ids = sorted(set(customer_ids))
    if not ids:
        return []
    rows = await session.execute(
        text(
            "SELECT id FROM (SELECT unnest(CAST(:ids AS text[])) AS id ORDER BY 1) AS wanted "
            "WHERE pg_try_advisory_xact_lock(:lock_class, hashtext(id))"
        ),
        {"lock_class": _CUSTOMER_LOCK_CLASS, "ids": ids},
    )
    return sorted(row.id for row in rows)


async def resolve(session: AsyncSession, customer_ids: Iterable[str]) -> dict[str, str]:
    """The customer each id stands for (itself unless profile joined it to another)."""
    ids = sorted(set(customer_ids))
    table = aliases.table
    found: dict[str, str] = {}
    if ids:
        rows = await session.execute(select(table.c.alias_id, table.c.customer_id).where(table.c.alias_id.in_(ids)))
        found = {row.alias_id: row.customer_id for row in rows}
    return {customer_id: found.get(customer_id, customer_id) for customer_id in ids}


async def erased_at(session: AsyncSession, customer_ids: Iterable[str]) -> dict[str, datetime]:
    return await erasures.erased_at(session, customer_ids)


async def ids_joined_to(session: AsyncSession, customer_id: str) -> list[str]:
    return await aliases.ids_joined_to(session, customer_id)


async def erase_customers(session: AsyncSession, customer_ids: Iterable[str], at: datetime) -> None:
    """Records the ids as erased at ``at`` and deletes everything scoring holds under them."""
    ids = sorted(set(customer_ids))
    if not ids:
        return
    await erasures.record(session, ids, at)
    await erase(session, ids)
    for customer_id in ids:
        await aliases.forget(session, customer_id)


async def join(session: AsyncSession, from_id: str, into_id: str) -> None:
    """Records that ``from_id`` is ``into_id`` and moves its purchases there (an order both hold counts once);
    what was scored under ``from_id`` is dropped."""
    table = aliases.table
    await session.execute(
        pg_insert(table)
        .values(alias_id=from_id, customer_id=into_id)
        .on_conflict_do_update(index_elements=[table.c.alias_id], set_={"customer_id": into_id})
    )
    await session.execute(update(table).where(table.c.customer_id == from_id).values(customer_id=into_id))
    await session.execute(
        text(
            f"INSERT INTO {purchases.fullname} (customer_id, order_id, purchased_at, amount, event_id) "
            f"SELECT :into_id, order_id, purchased_at, amount, event_id FROM {purchases.fullname} "
            "WHERE customer_id = :from_id ORDER BY order_id "
            f"ON CONFLICT (customer_id, order_id) DO UPDATE SET purchased_at = excluded.purchased_at, "
            "amount = excluded.amount, event_id = excluded.event_id "
            "WHERE (excluded.purchased_at, excluded.event_id) < (purchases.purchased_at, purchases.event_id)"
        ),
        {"into_id": into_id, "from_id": from_id},
    )
    await session.execute(
        text(
            f"INSERT INTO {refunds.fullname} (customer_id, event_id, order_id, refunded_at, amount, refund_id) "
            f"SELECT :into_id, event_id, order_id, refunded_at, amount, refund_id FROM {refunds.fullname} "
            "WHERE customer_id = :from_id ORDER BY event_id ON CONFLICT DO NOTHING"
        ),
        {"into_id": into_id, "from_id": from_id},
    )
    await erase(session, [from_id])


@dataclass(frozen=True)
class RefundRow:
    customer_id: str
    event_id: str
    order_id: str
    refunded_at: datetime
    amount: float
    refund_id: str | None = None


async def add_refunds(session: AsyncSession, rows: Sequence[RefundRow]) -> None:
    """One row per refund event; a redelivered one changes nothing. Several events of one refund (its business key,
    ``_ONE_PER_REFUND``) are all kept and counted once when netted."""
    ordered = sorted(rows, key=lambda row: (row.customer_id, row.event_id))
    if ordered:
        await session.execute(_ADD_REFUNDS, unnest.parameters(refunds, _REFUND_COLUMNS, map(_row_dict, ordered)))


_REFUND_COLUMNS = tuple(f.name for f in fields(RefundRow))
_ADD_REFUNDS = unnest.insert_statement(refunds, _REFUND_COLUMNS, "ON CONFLICT DO NOTHING")


@dataclass(frozen=True)
class PurchaseRow:
    customer_id: str
    order_id: str
    purchased_at: datetime
    amount: float
    event_id: str


async def add_purchases(session: AsyncSession, rows: Sequence[PurchaseRow]) -> None:
    """One row per (customer, order): of several deliveries of an order the earliest (time, event id) stands, so
    the result does not depend on which arrived first."""
    chosen: dict[tuple[str, str], PurchaseRow] = {}
    for row in rows:
        key = (row.customer_id, row.order_id)
        held = chosen.get(key)
        if held is None or (row.purchased_at, row.event_id) < (held.purchased_at, held.event_id):
            chosen[key] = row
    if chosen:
        ordered = [_row_dict(chosen[key]) for key in sorted(chosen)]
        await session.execute(_ADD_PURCHASES, unnest.parameters(purchases, _PURCHASE_COLUMNS, ordered))


_PURCHASE_COLUMNS = tuple(f.name for f in fields(PurchaseRow))
_ADD_PURCHASES = unnest.insert_statement(
    purchases,
    _PURCHASE_COLUMNS,
    "ON CONFLICT (customer_id, order_id) DO UPDATE SET purchased_at = EXCLUDED.purchased_at, "
    "amount = EXCLUDED.amount, event_id = EXCLUDED.event_id "
    "WHERE (EXCLUDED.purchased_at, EXCLUDED.event_id) < (t.purchased_at, t.event_id)",
)


def _row_dict(row: Any) -> dict[str, Any]:
    """A flat dataclass as a dict (dataclasses.asdict deep-copies every value, which a write does not need)."""
    return {name: getattr(row, name) for name in row.__dataclass_fields__}


# A refund is known by its order and upstream refund id, or, without an id, by its order, time and amount: two events
# of one refund (re-sent by upstream under a new event id) count once, the earliest (time, event id) standing for
# both whatever the order they arrived in.
_ONE_PER_REFUND = f"""
    SELECT DISTINCT ON (customer_id, order_id, refund_id, CASE WHEN refund_id IS NULL THEN refunded_at END,
                        CASE WHEN refund_id IS NULL THEN amount END)
           customer_id, order_id, amount
    FROM {refunds.fullname} {{some}}
    ORDER BY customer_id, order_id, refund_id, CASE WHEN refund_id IS NULL THEN refunded_at END,
             CASE WHEN refund_id IS NULL THEN amount END, refunded_at, event_id"""


def _net_orders(only_ids: bool) -> str:
    """The orders with their refunds netted off (floored at 0), without those refunded in full: a returned order is
    no transaction and no spend. ``only_ids`` restricts both sides to ``:ids``."""
    some = "WHERE customer_id = ANY(CAST(:ids AS text[]))" if only_ids else ""
    also = "AND p.customer_id = ANY(CAST(:ids AS text[]))" if only_ids else ""
    return f"""(
    SELECT p.customer_id, p.purchased_at, greatest(p.amount - coalesce(r.refunded, 0), 0) AS amount
    FROM {purchases.fullname} AS p
    LEFT JOIN (SELECT customer_id, order_id, sum(amount) AS refunded FROM ({_ONE_PER_REFUND.format(some=some)}) AS one
               GROUP BY customer_id, order_id) AS r ON r.customer_id = p.customer_id AND r.order_id = p.order_id
    WHERE NOT (p.amount > 0 AND coalesce(r.refunded, 0) >= p.amount) {also}
) AS orders"""


_SUMMARY_SQL = f"""
WITH days AS (
    SELECT customer_id, floor(extract(epoch FROM purchased_at) / {_SECONDS_PER_DAY}) AS day,
           count(*) AS orders, sum(amount) AS spend, min(purchased_at) AS first_at, max(purchased_at) AS last_at
    FROM {{table}} WHERE customer_id = ANY(CAST(:ids AS text[]))
    GROUP BY customer_id, day
)
SELECT customer_id, sum(orders) AS orders, sum(spend) AS total_spend, min(first_at) AS first_at,
       max(last_at) AS last_at, count(*) AS purchase_days,
       sum(spend) - (array_agg(spend ORDER BY day))[1] AS repeat_day_spend
FROM days GROUP BY customer_id
"""


async def purchase_summaries(session: AsyncSession, customer_ids: Iterable[str]) -> dict[str, PurchaseSummary]:
    """Orders, spend, first and last purchase, purchase days (UTC) and the spend of all but the first day."""
    ids = sorted(set(customer_ids))
    if not ids:
        return {}
    rows = await session.execute(text(_SUMMARY_SQL.format(table=_net_orders(only_ids=True))), {"ids": ids})
    return {
        row.customer_id: PurchaseSummary(
            orders=int(row.orders),
            total_spend=float(row.total_spend),
            first_purchase_at=row.first_at,
            last_purchase_at=row.last_at,
            purchase_days=int(row.purchase_days),
            repeat_day_spend=float(row.repeat_day_spend),
        )
        for row in rows
    }


BUYER_COLUMNS = (
    "orders",
    "total_spend",
    "first_day",
    "last_day",
    "last_epoch",
    "purchase_days",
    "repeat_day_spend",
    "cal_days",
    "cal_last_day",
    "holdout_days",
)
_BUYERS_SQL = f"""
WITH days AS (
    SELECT customer_id, floor(extract(epoch FROM purchased_at) / {_SECONDS_PER_DAY}) AS day, count(*) AS orders,
           sum(amount) AS spend, max(extract(epoch FROM purchased_at)) AS last_epoch
    FROM {{purchases}} GROUP BY customer_id, day
)
SELECT sum(orders)::float8, sum(spend)::float8, min(day)::float8, max(day)::float8, max(last_epoch)::float8,
       count(*)::float8, (sum(spend) - (array_agg(spend ORDER BY day))[1])::float8,
       (count(*) FILTER (WHERE day <= :cut))::float8, coalesce(max(day) FILTER (WHERE day <= :cut), -1)::float8,
       (count(*) FILTER (WHERE day > :cut AND day <= :today))::float8
FROM days GROUP BY customer_id
"""


async def load_buyers(session: AsyncSession, as_of: datetime, cut_day: float) -> tuple[int, npt.NDArray[np.float64]]:
    """Every buyer's purchase summary (BUYER_COLUMNS) in one query, as one float matrix (no per-customer
    objects), and the number of customers scoring knows."""
    n_customers = int(await session.scalar(select(func.count()).select_from(facts)) or 0)
    today = float(np.floor(as_of.timestamp() / _SECONDS_PER_DAY))
    statement = text(_BUYERS_SQL.format(purchases=_net_orders(only_ids=False)))
    rows = (await session.execute(statement, {"cut": cut_day, "today": today})).all()
    width = len(BUYER_COLUMNS)
    matrix = np.array(rows, dtype=np.float64) if rows else np.empty((0, width))
    return n_customers, matrix.reshape(-1, width)


async def customer_ids_after(session: AsyncSession, after: str, limit: int) -> list[str]:
    rows = await session.execute(
        select(facts.c.customer_id).where(facts.c.customer_id > after).order_by(facts.c.customer_id).limit(limit)
    )
    return list(rows.scalars())


async def try_refit_lock(session: AsyncSession, lock_id: int) -> bool:
    return bool(await session.scalar(select(func.pg_try_advisory_xact_lock(lock_id))))


async def newest_model_as_of(session: AsyncSession) -> datetime | None:
    """The clock reading (wall time live, event time in replay) the newest model was fitted as of."""
    newest: datetime | None = await session.scalar(select(func.max(models.c.as_of)))
    return newest


async def insert_model(session: AsyncSession, values: dict[str, Any]) -> int:
    version = await session.scalar(insert(models).values(**values).returning(models.c.version))
    assert version is not None
    return int(version)


async def lock_and_load(
    session: AsyncSession, customer_ids: Sequence[str], *, create_missing: bool = True
) -> tuple[dict[str, StoredFacts], dict[str, dict[str, Any]]]:
    """Facts and current score documents of ``customer_ids``, rows locked in id order so that a
    consumer batch and a refit batch touching the same customers cannot deadlock.

    ``create_missing`` first inserts an empty facts row for customers not seen yet. Without it,
    the profile and feedback consumers could both find no row for a new customer, both build facts
    from nothing, and the second upsert would overwrite the first's facts. With it, the second
    insert waits on the first's uncommitted row and the lock below then reads the committed facts.
    """
    ids = sorted(set(customer_ids))
    if not ids:
        return {}, {}
    if create_missing:
        await session.execute(_CREATE_MISSING, {"customer_id": ids})
    fact_rows = (await session.execute(_LOCK_FACTS, {"ids": ids})).all()
    score_rows = (await session.execute(_LOCK_SCORES, {"ids": ids})).all()
    loaded = {row.customer_id: StoredFacts(*row) for row in fact_rows}
    return loaded, {row.customer_id: row.score for row in score_rows}


def _among(column: Any) -> Any:
    """`column = ANY(:ids)`: one statement shape for any number of ids (IN (...) renders one per count)."""
    return column == any_(bindparam("ids", type_=ARRAY(Text)))


_CREATE_MISSING = unnest.insert_statement(facts, ("customer_id",), "ON CONFLICT DO NOTHING")
_LOCK_FACTS = (
    select(*(facts.c[name] for name in _FACT_FIELDS))
    .where(_among(facts.c.customer_id))
    .order_by(facts.c.customer_id)
    .with_for_update()
)
_LOCK_SCORES = (
    select(scores.c.customer_id, scores.c.score)
    .where(_among(scores.c.customer_id))
    .order_by(scores.c.customer_id)
    .with_for_update()
)
_SAVE_FACTS = unnest.insert_statement(
    facts, _FACT_FIELDS, unnest.upsert_all(facts, ("customer_id",), _FACT_FIELDS, touch="updated_at")
)
_SCORE_COLUMNS = ("customer_id", "tier", "stage", "churn_risk", "clv", "model_version", "score", "as_of")
_SAVE_SCORES = unnest.insert_statement(
    scores, _SCORE_COLUMNS, unnest.upsert_all(scores, ("customer_id",), _SCORE_COLUMNS, touch="updated_at")
)


async def save(session: AsyncSession, stored: Sequence[StoredFacts], documents: dict[str, dict[str, Any]]) -> None:
    if stored:
        rows = sorted((_row_dict(f) for f in stored), key=lambda row: row["customer_id"])
        await session.execute(_SAVE_FACTS, unnest.parameters(facts, _FACT_FIELDS, rows))
    if documents:
        rows = [
            {
                "customer_id": customer_id,
                "tier": doc["tier"],
                "stage": doc["stage"],
                "churn_risk": doc["churn_risk"],
                "clv": doc["clv"],
                "model_version": doc["model_version"],
                "score": doc,
                "as_of": datetime.fromisoformat(doc["as_of"].replace("Z", "+00:00")),
            }
            for customer_id, doc in sorted(documents.items())
        ]
        await session.execute(_SAVE_SCORES, unnest.parameters(scores, _SCORE_COLUMNS, rows))


async def erase(session: AsyncSession, customer_ids: Iterable[str]) -> None:
    ids = sorted(set(customer_ids))
    if ids:
        await session.execute(delete(facts).where(facts.c.customer_id.in_(ids)))
        await session.execute(delete(scores).where(scores.c.customer_id.in_(ids)))
        await session.execute(delete(purchases).where(purchases.c.customer_id.in_(ids)))
        await session.execute(delete(refunds).where(refunds.c.customer_id.in_(ids)))
        await history.erase(session, ids)


async def newest_event_time(session: AsyncSession) -> datetime | None:
    return await session.scalar(select(clock.c.newest_event_at).where(clock.c.id == 1))


async def advance_clock(session: AsyncSession, seen: datetime) -> None:
    """Last statement of a transaction on purpose: the row lock is then held only while committing."""
    await session.execute(
        update(clock)
        .where(clock.c.id == 1)
        .where((clock.c.newest_event_at.is_(None)) | (clock.c.newest_event_at < seen))
        .values(newest_event_at=seen)
    )


async def latest_model_version(session: AsyncSession) -> int | None:
    version = await session.scalar(select(func.max(models.c.version)))
    return None if version is None else int(version)


def model_from_row(row: Row[Any]) -> ActiveModel:
    edges = row.rfm_edges
    chosen = row._mapping.get("chosen_model")
    purchase = None
    if chosen:
        params = next((c["params"] for c in row.candidates or [] if c.get("name") == chosen), None)
        purchase = None if params is None else model_from_params(chosen, params)
    model = ScoringModel(
        purchase=purchase,
        rfm_edges=RfmEdges(
            recency=tuple(edges["recency"]), frequency=tuple(edges["frequency"]), monetary=tuple(edges["monetary"])
        ),
        rfm_rank=RankReference(np.asarray(row.rfm_rank, dtype=np.float64)),
        bgnbd=BgNbdParams(**row.bgnbd) if row.bgnbd else None,
        gamma_gamma=GammaGammaParams(**row.gamma_gamma) if row.gamma_gamma else None,
        clv_rank=None if row.clv_rank is None else RankReference(np.asarray(row.clv_rank, dtype=np.float64)),
    )
    return ActiveModel(version=int(row.version), model=model, small_base=bool(row.small_base))


async def load_model(session: AsyncSession, version: int) -> ActiveModel:
    row = (await session.execute(select(models).where(models.c.version == version))).one()
    return model_from_row(row)
