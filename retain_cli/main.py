"""The `retain` command-line tool."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from retain_cli.dlq import add_dlq_commands
from retain_cli.ingest_commands import add_ingest_commands
from retain_cli.keys import add_key_commands
from retain_cli.status import add_status_command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="retain", description="Retain: event-driven customer retention.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the whole platform (embedded PostgreSQL and broker by default)")
    run.add_argument("--data-dir", type=Path, default=Path(".data"), help="where embedded data and logs live")
    add_ingest_commands(commands)
    add_status_command(commands)
    add_dlq_commands(commands)
    add_key_commands(commands)
    args = parser.parse_args(argv)
    if hasattr(args, "handler"):
        return int(args.handler(args))
    if args.command == "run":
        from retain_cli.run import run as run_platform

        return asyncio.run(run_platform(args.data_dir.resolve()))
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
