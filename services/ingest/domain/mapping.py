"""Turning rows of a CSV or JSON-lines file into upstream events (pure).

`--map column=field` names where a column goes (`customer_id`, `time`, `id`, `data.amount`,
`data.items[0].price`); `--set field=value` adds a constant. A row without a mapped `id` gets one
derived from the import's identity and its line number, so importing the same file again (to resume
after an interruption) produces the same ids, which the dedupe then answers as duplicates.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from libs.common.envelope import derived_event_id

_SEGMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)((?:\[\d{1,4}\])*)$")
_INDEX = re.compile(r"\[(\d+)\]")
PathPart = str | int


class MappingError(ValueError):
    pass


def parse_path(text: str) -> tuple[PathPart, ...]:
    """`data.items[0].price` -> ("data", "items", 0, "price")."""
    parts: list[PathPart] = []
    for segment in text.strip().split("."):
        match = _SEGMENT.match(segment)
        if not match:
            raise MappingError(f"'{text}' is not a field path like data.items[0].price")
        parts.append(match.group(1))
        parts.extend(int(index) for index in _INDEX.findall(match.group(2)))
    return tuple(parts)


def parse_pairs(specs: Iterable[str], what: str) -> list[tuple[str, str]]:
    pairs = []
    for spec in specs:
        left, sep, right = spec.partition("=")
        if not sep or not left.strip() or not right.strip():
            raise MappingError(f"{what} '{spec}' must look like left=right")
        pairs.append((left.strip(), right.strip()))
    return pairs


def _put(target: dict[str, Any], path: tuple[PathPart, ...], value: Any) -> None:
    node: Any = target
    for here, after in itertools.pairwise(path):
        child: Any = [] if isinstance(after, int) else {}
        if isinstance(here, int):
            while len(node) <= here:
                node.append(None)
            if node[here] is None:
                node[here] = child
            node = node[here]
        else:
            node = node.setdefault(here, child)
    last = path[-1]
    if isinstance(last, int):
        while len(node) <= last:
            node.append(None)
        node[last] = value
    else:
        node[last] = value


@dataclass(frozen=True)
class RowMapping:
    event_type: str
    import_id: str
    columns: dict[str, tuple[PathPart, ...]] = field(default_factory=dict)
    constants: dict[tuple[PathPart, ...], str] = field(default_factory=dict)

    @classmethod
    def parse(cls, event_type: str, import_id: str, maps: Iterable[str], sets: Iterable[str] = ()) -> RowMapping:
        if not import_id.strip() or len(import_id) > 128:
            raise MappingError("import_id must be 1-128 characters")
        columns = {column: parse_path(target) for column, target in parse_pairs(maps, "map")}
        constants = {parse_path(target): value for target, value in parse_pairs(sets, "set")}
        for path in [*columns.values(), *constants]:
            if path[0] not in ("id", "customer_id", "time", "data"):
                raise MappingError(f"cannot map to '{path[0]}': use id, customer_id, time or data.<field>")
        return cls(event_type=event_type, import_id=import_id, columns=columns, constants=constants)

    def row_event_id(self, line: int) -> str:
        return derived_event_id("import", self.import_id, str(line))

    def to_event(self, row: Mapping[str, Any], line: int) -> dict[str, Any]:
        """A flattened event for one row; empty cells are left out so optional fields stay optional."""
        event: dict[str, Any] = {"type": self.event_type, "data": {}}
        for path, value in self.constants.items():
            _put(event, path, value)
        if self.columns:
            for column, path in self.columns.items():
                cell = row.get(column)
                if cell is not None and cell != "":
                    _put(event, path, cell)
        else:
            # JSON lines without a mapping are already events (their own type wins if they name one).
            event.update(row)
        if not event.get("id"):
            event["id"] = self.row_event_id(line)
        return event
