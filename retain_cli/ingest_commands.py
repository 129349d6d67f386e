"""`retain import` and `retain replay`: thin HTTP clients of the ingest service.

Going through the service (rather than the database) keeps one code path for validation, dedupe and
publishing, and works the same against the embedded stack and a production deployment.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHUNK_BYTES = 256 * 1024
# The import's identity is a hash of the file's beginning: the same file, or the same file with rows
# appended since, gives every line the same event id again, which is what makes re-running resume.
IDENTITY_BYTES = 64 * 1024


def add_ingest_commands(commands: Any) -> None:
    """Registers the subcommands on the `retain` parser's subparsers."""
    imp = commands.add_parser("import", help="import a CSV or JSON-lines file of events through ingest")
    imp.add_argument("file", type=Path)
    imp.add_argument("--type", required=True, help="event type of every row, e.g. purchase")
    imp.add_argument("--map", action="append", default=[], metavar="COLUMN=FIELD", help="e.g. cust=customer_id")
    imp.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="e.g. data.currency=USD")
    imp.add_argument("--format", choices=["csv", "jsonl"], help="default: from the file name")
    imp.add_argument("--import-id", help="stable identity of the file (default: hash of its first 64 KiB)")
    connection_arguments(imp)
    imp.set_defaults(handler=import_command)

    rep = commands.add_parser("replay", help="re-publish an event-time range of ingest's event log")
    rep.add_argument("--from", dest="start", required=True, help="RFC 3339, inclusive")
    rep.add_argument("--to", dest="end", required=True, help="RFC 3339, exclusive")
    rep.add_argument("--type", action="append", dest="types", help="only these event types (repeatable)")
    connection_arguments(rep)
    rep.set_defaults(handler=replay_command)


def connection_arguments(parser: argparse.ArgumentParser) -> None:
    port = os.environ.get("RETAIN_INGEST_PORT", "8001")
    parser.add_argument("--url", default=os.environ.get("RETAIN_INGEST_URL", f"http://127.0.0.1:{port}"))
    parser.add_argument("--key", help="API key (default: $RETAIN_API_KEY, then .data/dev-api-key)")


def api_key(explicit: str | None) -> str:
    if explicit:
        return explicit
    if os.environ.get("RETAIN_API_KEY"):
        return os.environ["RETAIN_API_KEY"]
    dev_key = Path(".data") / "dev-api-key"
    if dev_key.exists():
        return dev_key.read_text().strip()
    raise SystemExit("no API key: pass --key, set RETAIN_API_KEY, or run `retain run` once to create .data/dev-api-key")


def file_identity(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.sha256(handle.read(IDENTITY_BYTES)).hexdigest()[:32]


def _chunks(path: Path, progress: Any) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            progress.update(len(chunk))
            yield chunk


def import_command(args: argparse.Namespace) -> int:
    import httpx
    from tqdm import tqdm

    path: Path = args.file
    fmt = args.format or ("jsonl" if path.suffix in (".jsonl", ".ndjson") else "csv")
    params: list[tuple[str, str | int | float | bool | None]] = [
        ("type", args.type),
        ("import_id", args.import_id or file_identity(path)),
        ("format", fmt),
        *(("map", spec) for spec in args.map),
        *(("set", spec) for spec in args.set),
    ]
    headers = {
        "Authorization": f"Bearer {api_key(args.key)}",
        "content-type": "text/csv" if fmt == "csv" else "application/x-ndjson",
    }
    with (
        tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc=f"importing {path.name}") as progress,
        httpx.Client(timeout=httpx.Timeout(30, read=None)) as client,
    ):
        # A generator body is sent chunked: the file is never held in memory, on either side.
        response = client.post(
            f"{args.url}/v1/imports", params=params, content=_chunks(path, progress), headers=headers
        )
    if response.status_code != 200:
        print(f"import failed: HTTP {response.status_code}: {response.text}", file=sys.stderr)
        return 2
    report = response.json()
    print(
        f"import {report['import_id']}: {report['rows']} rows, {report['accepted']} accepted, "
        f"{report['duplicates']} duplicates (imported before), {report['rejected']} rejected"
        + (f", {report['erased']} of erased customers (not kept)" if report.get("erased") else "")
    )
    for rejection in report["rejections"][:50]:
        reasons = "; ".join(f"{e['field']}: {e['message']}" for e in rejection["errors"])
        print(f"  line {rejection['line']}: {reasons}")
    if report["rejected"] > 50:
        print(f"  ... and {report['rejected'] - 50} more rejected rows")
    return 0


def replay_command(args: argparse.Namespace) -> int:
    import httpx

    body: dict[str, Any] = {"from": args.start, "to": args.end}
    if args.types:
        body["types"] = args.types
    with httpx.Client(timeout=httpx.Timeout(30, read=None)) as client:
        response = client.post(
            f"{args.url}/v1/replays", json=body, headers={"Authorization": f"Bearer {api_key(args.key)}"}
        )
    if response.status_code != 200:
        print(f"replay failed: HTTP {response.status_code}: {response.text}", file=sys.stderr)
        return 2
    print(f"re-published {response.json()['replayed']} events")
    return 0
