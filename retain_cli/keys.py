"""`retain keys create|list|rotate|revoke`: a thin HTTP client of the key administration every service answers.

Every service serves `/v1/api-keys` over the one `auth` schema, so the command talks to ingest by default; the key
it presents needs the admin scope (the bootstrap key from RETAIN_API_KEYS, or a managed admin key).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from libs.common.settings import ALL_SCOPES
from retain_cli.ingest_commands import api_key, connection_arguments


def add_key_commands(commands: Any) -> None:
    keys = commands.add_parser("keys", help="create, list, rotate and revoke managed API keys")
    actions = keys.add_subparsers(dest="keys_command", required=True)

    create = actions.add_parser("create", help="create a key; its token is printed once and never again")
    create.add_argument("--source", required=True, help="the calling system (ce_source of its events)")
    create.add_argument("--scope", action="append", dest="scopes", required=True, choices=ALL_SCOPES)
    create.add_argument("--expires-at", help="RFC 3339 with a time zone; default: never")
    create.add_argument("--rate-limit", type=float, dest="rate_limit_per_s", help="requests per second")
    create.set_defaults(handler=create_command)

    listing = actions.add_parser("list", help="one line per key (never its secret)")
    listing.add_argument("--all", action="store_true", help="include revoked keys")
    listing.set_defaults(handler=list_command)

    rotate = actions.add_parser("rotate", help="replace a key by a new one with the same rights")
    rotate.add_argument("key_id")
    rotate.add_argument("--grace", type=float, default=0, help="seconds the old key keeps working")
    rotate.set_defaults(handler=rotate_command)

    revoke = actions.add_parser("revoke", help="revoke a key: every service refuses it within seconds")
    revoke.add_argument("key_id")
    revoke.set_defaults(handler=revoke_command)

    for action in (create, listing, rotate, revoke):
        connection_arguments(action)


def _request(args: argparse.Namespace, method: str, path: str, **kwargs: Any) -> Any:
    import httpx

    with httpx.Client(timeout=30) as client:
        response = client.request(
            method, f"{args.url}{path}", headers={"Authorization": f"Bearer {api_key(args.key)}"}, **kwargs
        )
    if response.status_code >= 400:
        print(f"{method} {path} failed: HTTP {response.status_code}: {response.text}", file=sys.stderr)
        raise SystemExit(2)
    return response.json() if response.content else None


def _line(key: dict[str, Any]) -> str:
    state = f"revoked {key['revoked_at']}" if key["revoked_at"] else f"expires {key['expires_at'] or 'never'}"
    limit = f"{key['rate_limit_per_s']}/s" if key["rate_limit_per_s"] else "no limit"
    return f"{key['key_id']}  {key['source']}  {','.join(key['scopes'])}  {limit}  {state}"


def _print_issued(issued: dict[str, Any]) -> None:
    print(_line(issued))
    print(f"token (shown once): {issued['token']}")


def create_command(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"source": args.source, "scopes": args.scopes}
    if args.expires_at:
        body["expires_at"] = args.expires_at
    if args.rate_limit_per_s:
        body["rate_limit_per_s"] = args.rate_limit_per_s
    _print_issued(_request(args, "POST", "/v1/api-keys", json=body))
    return 0


def list_command(args: argparse.Namespace) -> int:
    answer = _request(args, "GET", "/v1/api-keys", params={"include_revoked": str(args.all).lower()})
    for key in answer["items"]:
        print(_line(key))
    return 0


def rotate_command(args: argparse.Namespace) -> int:
    _print_issued(_request(args, "POST", f"/v1/api-keys/{args.key_id}/rotate", json={"grace_s": args.grace}))
    return 0


def revoke_command(args: argparse.Namespace) -> int:
    _request(args, "DELETE", f"/v1/api-keys/{args.key_id}")
    print(f"revoked {args.key_id}")
    return 0
