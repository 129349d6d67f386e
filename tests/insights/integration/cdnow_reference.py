"""The KPI and cohort definitions computed straight from a CDNOW file, independently of the service's code."""

from __future__ import annotations

import itertools
import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

Month = tuple[int, int]


@dataclass(frozen=True)
class Row:
    line: int
    customer: str
    day: date
    amount: Decimal


def read(path: Path) -> list[Row]:
    """CDNOW_master.txt (customer, date, CDs, dollars) or CDNOW_sample.txt (customer, id, date, CDs, dollars)."""
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        parts = line.split()
        if not parts or not parts[0].isdigit():
            continue
        raw = parts[-3]
        rows.append(Row(number, parts[0], date(int(raw[:4]), int(raw[4:6]), int(raw[6:])), Decimal(parts[-1])))
    return rows


def months(first: Month, last: Month) -> list[Month]:
    out, (y, m) = [], first
    while (y, m) <= last:
        out.append((y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def previous(month: Month) -> Month:
    y, m = month
    return (y - 1, 12) if m == 1 else (y, m - 1)


def month_of(day: date) -> Month:
    return (day.year, day.month)


def kpis_by_month(rows: list[Row], first: Month, last: Month) -> dict[str, dict[str, Any]]:
    active: dict[Month, set[str]] = defaultdict(set)
    revenue: dict[tuple[Month, str], Decimal] = defaultdict(Decimal)
    days: dict[str, set[date]] = defaultdict(set)
    for row in rows:
        active[month_of(row.day)].add(row.customer)
        revenue[(month_of(row.day), row.customer)] += row.amount
        days[row.customer].add(row.day)
    first_month = {customer: month_of(min(ds)) for customer, ds in days.items()}
    gaps: dict[Month, list[int]] = defaultdict(list)
    for ds in days.values():
        ordered = sorted(ds)
        for before, after in itertools.pairwise(ordered):
            gaps[month_of(after)].append((after - before).days)
    out = {}
    for month in months(first, last):
        now, earlier = active[month], active[previous(month)]
        new = {c for c in now if first_month[c] == month}
        total = sum((revenue[(month, c)] for c in now), Decimal(0))
        total_new = sum((revenue[(month, c)] for c in new), Decimal(0))
        s, e, n = len(earlier), len(now), len(new)
        both = len(now & earlier)
        month_gaps = gaps[month]
        out[f"{month[0]}-{month[1]:02d}"] = {
            "active_start": s,
            "active_customers": e,
            "new_customers": n,
            "retained_customers": both,
            "retention_rate": (e - n) / s if s else None,
            "period_over_period_retention": both / s if s else None,
            "churn_rate": 1 - both / s if s else None,
            "repeat_purchase_rate": (e - n) / e if e else None,
            "repurchase_cycle_mean_days": statistics.fmean(month_gaps) if month_gaps else None,
            "repurchase_cycle_median_days": float(statistics.median(month_gaps)) if month_gaps else None,
            "revenue": total,
            "revenue_new": total_new,
            "revenue_returning": total - total_new,
        }
    return out


def cohorts_by_month(rows: list[Row], first: Month, last: Month) -> dict[str, dict[str, Any]]:
    days: dict[str, set[date]] = defaultdict(set)
    revenue: dict[tuple[Month, str], Decimal] = defaultdict(Decimal)
    for row in rows:
        days[row.customer].add(row.day)
        revenue[(month_of(row.day), row.customer)] += row.amount
    members: dict[Month, set[str]] = defaultdict(set)
    for customer, ds in days.items():
        members[month_of(min(ds))].add(customer)
    out = {}
    for cohort in months(first, last):
        group = members[cohort]
        cells = []
        for month in months(cohort, last):
            buyers = {c for c in group if any(month_of(d) == month for d in days[c])}
            cells.append((len(buyers), sum((revenue[(month, c)] for c in buyers), Decimal(0))))
        out[f"{cohort[0]}-{cohort[1]:02d}"] = {"customers": len(group), "cells": cells}
    return out
