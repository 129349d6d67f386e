"""Bulk import: rejected rows by line number, resumable without duplicates, and CDNOW through the CLI."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from httpx import AsyncClient

from bench.cdnow_to_csv import CDNOW_ROWS, IMPORT_ARGS, cdnow_source, convert
from retain_cli.embedded import free_port
from tests.conftest import REPO_ROOT, Isolation
from tests.ingest.conftest import SHOP, read_topic

CSV = (
    "cust,when,total,note,order\n"
    "c-1,2026-01-01T10:00:00Z,10.50,fine,o-1\n"
    "c-2,yesterday,5,bad time,o-2\n"
    'c-3,2026-01-02T10:00:00Z,-1,"negative,\nquoted",o-3\n'
    "c-4,2026-01-03T10:00:00Z\n"
    "c-5,2026-01-04T10:00:00+01:00,7,fine,o-5\n"
)
# Pairs, as "map" repeats; a tuple rather than a list because httpx types params as list[tuple[str, str | int | ...]]
# and a list is invariant in its item type, a tuple is not.
PARAMS = (
    ("type", "purchase"),
    ("import_id", "orders-2026"),
    ("map", "cust=customer_id"),
    ("map", "when=time"),
    ("map", "total=data.amount"),
    ("map", "order=data.order_id"),
    ("set", "data.currency=EUR"),
)


async def test_import_reports_rejected_lines_and_resumes_without_duplicates(
    client: AsyncClient, isolated: Isolation
) -> None:
    headers = {**SHOP, "content-type": "text/csv"}
    # Stop half way, as an interrupted upload would (the first two data lines only).
    partial = "".join(CSV.splitlines(keepends=True)[:3])
    first = await client.post("/v1/imports", params=PARAMS, content=partial.encode(), headers=headers)
    assert first.status_code == 200, first.text
    assert (first.json()["accepted"], first.json()["rejected"]) == (1, 1), first.text

    full = await client.post("/v1/imports", params=PARAMS, content=CSV.encode(), headers=headers)
    report = full.json()
    assert (report["rows"], report["accepted"], report["duplicates"], report["rejected"]) == (5, 1, 1, 3)
    reasons = {r["line"]: [e["field"] for e in r["errors"]] for r in report["rejections"]}
    assert reasons == {3: ["time"], 4: ["data.amount"], 6: ["row"]}

    seen = await read_topic(isolated.stack.broker.bootstrap, isolated.prefix, expect=2)
    assert sorted(e.subject for e in seen) == ["c-1", "c-5"]
    assert {e.data["currency"] for e in seen} == {"EUR"}

    lines = b'{"id": "j-1", "customer_id": "c-9", "time": "2026-01-01T00:00:00Z", "data": {"channel": "app"}}\n[]\n'
    jsonl = await client.post(
        "/v1/imports",
        params={"type": "login", "import_id": "logins"},
        content=lines,
        headers={**SHOP, "content-type": "application/x-ndjson"},
    )
    assert (jsonl.json()["accepted"], jsonl.json()["rejections"][0]["line"]) == (1, 2)


async def test_cdnow_through_retain_import_gives_one_event_per_row(isolated: Isolation, tmp_path: Path) -> None:
    csv_path = tmp_path / "cdnow.csv"
    assert convert(cdnow_source(), csv_path) == CDNOW_ROWS
    port = free_port()
    env = {**isolated.env(), "RETAIN_HTTP_PORT": str(port), "RETAIN_LOG_LEVEL": "WARNING"}
    # Popen returns at once; readiness is awaited below without blocking the loop.
    server = subprocess.Popen([sys.executable, "-m", "services.ingest"], env=env, cwd=REPO_ROOT)  # noqa: ASYNC220
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as probe:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if (await probe.get(f"{url}/readyz")).json().get("status") == "ready":
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline and server.poll() is None, "ingest did not start"
                await asyncio.sleep(0.2)
        command = [sys.executable, "-m", "retain_cli", "import", str(csv_path), *IMPORT_ARGS, "--url", url]
        command += ["--key", "test-shop-key"]
        done = await asyncio.to_thread(
            subprocess.run, command, capture_output=True, text=True, cwd=REPO_ROOT, env=os.environ, timeout=180
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert f"{CDNOW_ROWS} rows, {CDNOW_ROWS} accepted, 0 duplicates" in done.stdout
        assert "importing cdnow.csv" in done.stderr  # the tqdm progress bar

        seen = await read_topic(isolated.stack.broker.bootstrap, isolated.prefix, expect=CDNOW_ROWS, timeout_s=60)
        assert len(seen) == CDNOW_ROWS
        assert len({e.id for e in seen}) == CDNOW_ROWS

        again = await asyncio.to_thread(
            subprocess.run, command, capture_output=True, text=True, cwd=REPO_ROOT, env=os.environ, timeout=180
        )
        assert f"{CDNOW_ROWS} rows, 0 accepted, {CDNOW_ROWS} duplicates" in again.stdout
    finally:
        server.terminate()
        server.wait(30)
