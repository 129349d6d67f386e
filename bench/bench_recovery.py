"""How `retain run` recovers when the in-memory broker forgets: times and counts, on a fresh data directory.

    python -m bench.bench_recovery [--customers N]

(a) SIGKILL of `retain run` right after a backlog was posted: how long until its processes are gone, and how long
    the next start takes until every service holds exactly the truth (nothing replayed by hand).
(b) kill -9 of the embedded broker under a running `retain run`: it starts a new, empty broker; how long until every
    service holds the truth again.
(c) Ctrl-C with nothing left to consume: how long the orderly stop takes.
Each customer posts four purchases and a ticket (tests/faults/harness.py); half of them cross into the top tier.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import tempfile
import time
from pathlib import Path

import httpx

from tests.faults.harness import AUTH, after_opening, assert_exact, customers, open_accounts, post_until_accepted
from tests.faults.running import RetainRun, alive
from tests.waiting import eventually


async def main(count: int) -> None:
    people = customers(count, "bench")
    with tempfile.TemporaryDirectory(prefix="retain-recovery-") as directory:
        run = RetainRun(Path(directory) / "data")
        try:
            run.start()
            await run.running()
            async with httpx.AsyncClient(timeout=30, headers=AUTH) as client:
                await open_accounts(client, run.ingest_url, run.urls(), people)
                await post_until_accepted(client, run.ingest_url, after_opening(people))
            started = run.started_processes()
            assert run.process is not None
            killed = time.monotonic()
            run.process.send_signal(signal.SIGKILL)

            async def all_gone() -> bool:
                return not alive(started) and not run.ports_in_use()

            await eventually(all_gone, timeout_s=60)
            print(
                f"(a) SIGKILL of retain run: {len(started)} processes gone, ports free after "
                f"{time.monotonic() - killed:.1f}s"
            )

            restarted = time.monotonic()
            run.start()
            await run.running()
            ready = time.monotonic()
            async with httpx.AsyncClient(timeout=30, headers=AUTH) as client:
                await assert_exact(client, run.urls(), people)
            exact = time.monotonic() - 2.0  # assert_exact waits 2 s after reaching the truth
            print(
                f"(a) next start: ready after {ready - restarted:.1f}s, every service exact "
                f"{exact - ready:.1f}s later ({count} customers, {5 * count} events)"
            )

            broker_pid = int((run.data_dir / "run" / "broker.pid").read_text().split()[0])
            broken = time.monotonic()
            os.kill(broker_pid, signal.SIGKILL)
            async with httpx.AsyncClient(timeout=30, headers=AUTH) as client:
                await asyncio.sleep(1.0)
                more = customers(count, "bench2")
                await open_accounts(client, run.ingest_url, run.urls(), more)
                await post_until_accepted(client, run.ingest_url, after_opening(more))
                await assert_exact(client, run.urls(), people + more)
            print(
                f"(b) kill -9 of the broker, {count} more customers posted: every service exact "
                f"{time.monotonic() - 2.0 - broken:.1f}s after the kill"
            )

            stopping = time.monotonic()
            run.interrupt()
            await run.exited()
            print(f"(c) Ctrl-C, nothing left to consume: stopped after {time.monotonic() - stopping:.1f}s")
            resent = [line for line in run.output().splitlines() if "re-send" in line]
            print("\n".join(resent))
        finally:
            if run.process is not None and run.process.poll() is None:
                run.process.kill()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=200)
    asyncio.run(main(parser.parse_args().customers))
