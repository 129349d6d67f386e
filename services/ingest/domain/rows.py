"""Incremental splitting of an uploaded file into rows with their line numbers (pure, streaming).

Bytes arrive in arbitrary chunks; `feed` returns the rows completed so far and keeps the rest, so a file
of any size is processed with memory bounded by one chunk plus one row.
"""

from __future__ import annotations

import codecs
import csv
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

Format = Literal["csv", "jsonl"]


@dataclass(frozen=True, slots=True)
class Row:
    line: int
    values: dict[str, Any] | None  # None when the row could not be parsed
    error: str | None = None


@dataclass
class RowSplitter:
    format: Format
    _decoder: codecs.IncrementalDecoder = field(default_factory=lambda: codecs.getincrementaldecoder("utf-8-sig")())
    _tail: str = ""
    _record: str = ""
    _record_line: int = 0
    _line: int = 0
    header: list[str] | None = None

    def feed(self, chunk: bytes, final: bool = False) -> list[Row]:
        text = self._tail + self._decoder.decode(chunk, final)
        lines = text.splitlines(keepends=True)
        # A trailing "\r" may be the first half of "\r\n" split across chunks: wait for the next one.
        complete = lines and (lines[-1].endswith("\n") or (lines[-1].endswith("\r") and final))
        self._tail = "" if final or not lines or complete else lines.pop()
        rows: list[Row] = []
        for physical in lines:
            self._line += 1
            row = self._physical(physical)
            if row is not None:
                rows.append(row)
        if final and self._record:
            rows.append(Row(self._record_line, None, "unterminated quoted field"))
            self._record = ""
        return rows

    def _physical(self, text: str) -> Row | None:
        if self.format == "jsonl":
            return self._json_line(text)
        if not self._record:
            self._record_line = self._line
        self._record += text
        # An odd number of quotes means a quoted field continues on the next physical line.
        if self._record.count('"') % 2:
            return None
        record, self._record = self._record, ""
        if not record.strip():
            return None
        values = next(csv.reader([record]))
        if self.header is None:
            self.header = [name.strip() for name in values]
            return None
        if len(values) != len(self.header):
            return Row(self._record_line, None, f"expected {len(self.header)} columns, found {len(values)}")
        return Row(self._record_line, dict(zip(self.header, values, strict=True)))

    def _json_line(self, text: str) -> Row | None:
        if not text.strip():
            return None
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            return Row(self._line, None, f"not JSON: {exc}")
        if not isinstance(value, dict):
            return Row(self._line, None, "each line must be a JSON object")
        return Row(self._line, value)
