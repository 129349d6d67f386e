"""Set-at-a-time writes of a consumer batch: one statement over `unnest` arrays per table, whatever the batch size.

A multi-row `INSERT ... VALUES` built per batch is compiled by SQLAlchemy every time (a bind parameter per cell):
under a catch-up load that compilation was most of scoring's CPU. `executemany` runs the statement once per row
in PostgreSQL. These statements have one shape, so they are compiled and prepared once, and asyncpg encodes each
column as one array. Callers pass rows sorted by key, so two writers meeting on the same rows take their locks in
the same order, and without a key twice (ON CONFLICT cannot touch one row twice in a statement).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import orjson
from sqlalchemy import BigInteger, Boolean, Date, DateTime, Float, Integer, Numeric, Row, Table, Text, TextClause, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncSession


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _json_or_null(value: Any) -> str | None:
    return None if value is None else _json(value)


@dataclass(frozen=True)
class _Kind:
    array: str  # the PostgreSQL array type the column travels as
    select: str  # how the unnested value becomes the column's value ({} or {0} is the value)
    encode: Callable[[Any], Any] | None = None


_TEXT = _Kind("text[]", "{}")
_KINDS: tuple[tuple[type[Any], _Kind], ...] = (
    # JSON documents and text arrays travel as JSON text: unnest would flatten an array of arrays
    (JSONB, _Kind("text[]", "CAST({} AS jsonb)", _json)),
    (
        ARRAY,
        _Kind(
            "text[]",
            "CASE WHEN {0} IS NULL THEN NULL ELSE ARRAY(SELECT jsonb_array_elements_text(CAST({0} AS jsonb))) END",
            _json_or_null,
        ),
    ),
    (DateTime, _Kind("timestamptz[]", "{}")),
    (Date, _Kind("date[]", "{}")),
    (BigInteger, _Kind("bigint[]", "{}")),
    (Integer, _Kind("integer[]", "{}")),
    (Float, _Kind("float8[]", "{}")),  # Double too; before Numeric, of which Float is a kind
    (Numeric, _Kind("numeric[]", "{}")),
    (Boolean, _Kind("boolean[]", "{}")),
    (Text, _TEXT),
)


def _kind(table: Table, column: str) -> _Kind:
    column_type = table.c[column].type
    for python_type, kind in _KINDS:
        if isinstance(column_type, python_type):
            if python_type is JSONB and getattr(column_type, "none_as_null", False):
                # as SQLAlchemy binds it: None is SQL NULL only where the column says so, else JSON null
                return _Kind(kind.array, kind.select, _json_or_null)
            return kind
    raise TypeError(f"{table.name}.{column}: no array form for {column_type!r}")


@cache
def _insert(table: Table, columns: tuple[str, ...], on_conflict: str) -> TextClause:
    kinds = [_kind(table, name) for name in columns]
    arrays = ", ".join(f"CAST(:{name} AS {kind.array})" for name, kind in zip(columns, kinds, strict=True))
    values = ", ".join(kind.select.format(f"u.{name}") for name, kind in zip(columns, kinds, strict=True))
    return text(
        f"INSERT INTO {table.fullname} AS t ({', '.join(columns)}) "
        f"SELECT {values} FROM unnest({arrays}) AS u({', '.join(columns)}) {on_conflict}"
    )


def insert_statement(table: Table, columns: Sequence[str], on_conflict: str) -> TextClause:
    """``INSERT INTO table (columns) SELECT ... FROM unnest(...)`` followed by ``on_conflict`` (plain SQL naming
    the target table ``t``), built once per shape."""
    return _insert(table, tuple(columns), on_conflict)


def upsert_all(table: Table, key: Sequence[str], columns: Sequence[str], *, touch: str | None = None) -> str:
    """The ON CONFLICT clause that replaces every non-key column of ``columns`` (and sets ``touch`` to now())."""
    assignments = [f"{name} = EXCLUDED.{name}" for name in columns if name not in key]
    if touch is not None:
        assignments.append(f"{touch} = now()")
    return f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {', '.join(assignments)}"


def parameters(table: Table, columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Column-wise arrays of ``rows``, each value in the form its column travels in."""
    listed = list(rows)
    out: dict[str, list[Any]] = {}
    for name in columns:
        encode = _kind(table, name).encode
        values = [row[name] for row in listed]
        out[name] = values if encode is None else [encode(value) for value in values]
    return out


async def upsert(
    session: AsyncSession,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    key: Sequence[str] = (),
    update: Sequence[str] | None = None,
    update_where: str | None = None,
    returning: Sequence[str] = (),
) -> Sequence[Row[Any]]:
    """`rows` (mappings with the same columns) written by one statement of this module, whatever their number.

    Without `update`, a row whose key is already stored is skipped (ON CONFLICT DO NOTHING); with it, those columns
    are overwritten from the new row, unless `update_where` (SQL over `t`, the stored row, and `EXCLUDED`) says
    otherwise. Rows are written in key order; with `update` the caller passes each key once.
    """
    if not rows:
        return []
    columns = tuple(c.name for c in table.columns if c.name in rows[0])
    ordered = sorted(rows, key=lambda row: tuple(row[k] for k in key)) if key else list(rows)
    if update:
        clause = upsert_all(table, key, update) + (f" WHERE {update_where}" if update_where else "")
    else:
        clause = f"ON CONFLICT ({', '.join(key)}) DO NOTHING" if key else "ON CONFLICT DO NOTHING"
    clause += f" RETURNING {', '.join(returning)}" if returning else ""
    result = await session.execute(insert_statement(table, columns, clause), parameters(table, columns, ordered))
    return result.all() if returning else []
