"""Bulk import: a streamed CSV or JSON-lines file becomes events, chunk by chunk, never all in memory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from services.ingest.domain.incoming import InvalidEvent, ValidEvent, validate_python
from services.ingest.domain.mapping import RowMapping
from services.ingest.domain.rows import Format, Row, RowSplitter
from services.ingest.handlers.accept import accept_events, count_rejected
from services.ingest.handlers.deps import IngestDeps
from services.ingest.metrics import BATCH_SIZE

# The answer lists this many rejected rows; the counts cover all of them.
MAX_REPORTED_REJECTIONS = 1000


@dataclass
class ImportReport:
    import_id: str
    rows: int = 0
    accepted: int = 0
    duplicates: int = 0
    erased: int = 0  # rows from before their customer was erased: neither kept nor published
    rejected: int = 0
    rejections: list[dict[str, Any]] = field(default_factory=list)

    def reject(self, line: int, errors: list[dict[str, Any]]) -> None:
        self.rejected += 1
        if len(self.rejections) < MAX_REPORTED_REJECTIONS:
            self.rejections.append({"line": line, "errors": errors})

    def as_json(self) -> dict[str, Any]:
        return {
            "import_id": self.import_id,
            "rows": self.rows,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "erased": self.erased,
            "rejected": self.rejected,
            "rejections": self.rejections,
            "rejections_truncated": self.rejected > len(self.rejections),
        }


async def import_stream(
    ctx: IngestDeps, chunks: AsyncIterator[bytes], fmt: Format, mapping: RowMapping, source: str
) -> ImportReport:
    report = ImportReport(import_id=mapping.import_id)
    splitter = RowSplitter(fmt)
    pending: list[ValidEvent] = []
    limit = ctx.settings.ingest_import_chunk_rows
    window = ctx.settings.time_window

    def take(rows: list[Row]) -> None:
        for row in rows:
            report.rows += 1
            if row.values is None:
                report.reject(row.line, [{"field": "row", "message": row.error or "unreadable", "code": "row"}])
                count_rejected([mapping.event_type], source)
                continue
            try:
                pending.append(validate_python(mapping.to_event(row.values, row.line), window=window))
            except InvalidEvent as exc:
                report.reject(row.line, exc.errors)
                count_rejected([mapping.event_type], source)

    async def flush() -> None:
        if not pending:
            return
        BATCH_SIZE.labels("imports").observe(len(pending))
        for outcome in await accept_events(ctx, pending, source):
            if outcome.status == "accepted":
                report.accepted += 1
            elif outcome.status == "erased":
                report.erased += 1
            else:
                report.duplicates += 1
        pending.clear()

    async for chunk in chunks:
        take(splitter.feed(chunk))
        if len(pending) >= limit:
            await flush()
    take(splitter.feed(b"", final=True))
    await flush()
    return report
