"""`retain run` itself: Ctrl-C under backlog loses nothing, and nothing it started outlives it."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from retain_cli.pidfiles import PidFiles
from tests.faults.harness import AUTH, after_opening, assert_exact, customers, open_accounts, post_until_accepted
from tests.faults.running import RetainRun, alive, mentioning
from tests.waiting import eventually

CUSTOMERS = 24


async def test_ctrl_c_twice_under_backlog_then_the_next_start_recovers_everything(tmp_path: Path) -> None:
    run = RetainRun(tmp_path / "data")
    people = customers(CUSTOMERS, "cc")
    run.start()
    try:
        await run.running()
        started = run.started_processes()
        async with httpx.AsyncClient(timeout=10, headers=AUTH) as client:
            await open_accounts(client, run.ingest_url, run.urls(), people)
            await post_until_accepted(client, run.ingest_url, after_opening(people))
        run.interrupt()
        await asyncio.sleep(0.5)
        run.interrupt()  # do not wait: whatever the consumers had not committed is gone with the broker
        assert await run.exited() == 0
        assert "stopping without waiting for consumers" in run.output(), run.output()
        assert not alive(started) and not mentioning(run.data_dir)

        run.start()
        await run.running()
        async with httpx.AsyncClient(timeout=10, headers=AUTH) as client:
            await assert_exact(client, run.urls(), people)
        run.interrupt()
        assert await run.exited() == 0
        assert "every consumer has drained its lag" in run.output(), run.output()
    finally:
        if run.process is not None and run.process.poll() is None:
            run.process.kill()
            await run.exited()


async def test_sigkill_of_retain_run_takes_everything_with_it_and_a_stale_broker_is_stopped(tmp_path: Path) -> None:
    run = RetainRun(tmp_path / "data")
    # An earlier run's broker still holding the port: recorded in the pid files, so this run may stop it.
    holder = hold_port(run.ports["broker"])
    PidFiles(run.data_dir / "run").record("broker", holder.pid)
    run.start()
    try:
        await run.running()
        assert f"stopped broker (pid {holder.pid}), left running by an earlier run" in run.output()
        assert holder.wait(5) is not None
        started = run.started_processes()
        assert len(started) >= 8, started  # broker, PostgreSQL, five services and ingest's workers at least
        assert run.process is not None
        run.process.send_signal(signal.SIGKILL)
        await run.exited()

        async def all_gone() -> bool:
            return not alive(started) and not run.ports_in_use()

        await eventually(all_gone, timeout_s=60)
    finally:
        holder.kill()
        for process in alive(run.started_processes()):
            process.kill()


async def test_a_taken_port_stops_the_start_before_anything_runs(tmp_path: Path) -> None:
    run = RetainRun(tmp_path / "data")
    holder = hold_port(run.ports["scoring"])  # some other program, not ours to stop
    try:
        run.start()
        assert await run.exited(60) == 3
        assert f"port {run.ports['scoring']} (scoring) already in use" in run.output()
        assert not (run.data_dir / "postgres").exists()  # nothing was started
        assert not mentioning(run.data_dir)
        assert holder.poll() is None
    finally:
        holder.kill()


async def test_a_failed_broker_start_stops_the_postgres_it_started(tmp_path: Path) -> None:
    run = RetainRun(tmp_path / "data")
    run.start(CALF_TANSU_BIN="/bin/false")
    assert await run.exited(120) == 3
    assert "the embedded broker did not start" in run.output()
    assert "stopping PostgreSQL" in run.output()
    assert (run.data_dir / "postgres" / "PG_VERSION").exists()  # it had started
    assert not (run.data_dir / "postgres" / "postmaster.pid").exists()
    assert not mentioning(run.data_dir)


def hold_port(port: int) -> subprocess.Popen[bytes]:
    """A process of its own session listening on `port` until killed."""
    code = (
        "import socket, time\n"
        "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        f"s.bind(('127.0.0.1', {port})); s.listen(); print('ok', flush=True)\n"
        "time.sleep(3600)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, start_new_session=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == b"ok"
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) == 0
    return holder
