"""Access control on the running platform: every route of every service refuses a call without a key (401) and a
key lacking its scope (403); a revoked or expired managed key is refused by every service; key changes are audited."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from retain_cli.main import main
from retain_cli.supervisor import SERVICES
from tests.conftest import ADMIN_KEY
from tests.platform.conftest import Platform

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
# Answered without an API key: operations, and the customers' own pages and answers (a signed token is their
# credential).
PUBLIC = re.compile(r"^/(healthz|readyz|metrics|unsubscribe|surveys/)|^/v1/surveys/\{[^}]+\}/responses$")
# Any valid key may ask who it is.
ANY_KEY = {"/v1/auth/whoami"}
# Answer only services holding the master key, with a credential derived from it: every API key is refused.
SERVICES_ONLY = {"/v1/keys/{customer_id}", "/v1/keys"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def create_key(client: httpx.AsyncClient, base: str, **body: Any) -> dict[str, Any]:
    response = await client.post(f"{base}/v1/api-keys", json={"source": "access-test", **body}, headers=ADMIN)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def operations(spec: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"} and not PUBLIC.search(path)
    ]


async def call(client: httpx.AsyncClient, base: str, method: str, path: str, headers: dict[str, str]) -> int:
    url = base + re.sub(r"\{[^}]+\}", "x", path)
    body: dict[str, Any] | None = {} if method in {"POST", "PUT", "PATCH"} else None
    return (await client.request(method, url, json=body, headers=headers)).status_code


async def test_every_route_wants_a_key_and_its_scope(shared_platform: Platform) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        writer = await create_key(client, shared_platform.url("profile"), scopes=["events:write"])
        reader = await create_key(client, shared_platform.url("profile"), scopes=["customers:read"])
        walked = 0
        failures: list[str] = []
        for service in SERVICES:
            base = shared_platform.url(service)
            spec = (await client.get(f"{base}/openapi.json")).json()
            for method, path in operations(spec):
                walked += 1
                where = f"{service} {method} {path}"
                if (status := await call(client, base, method, path, {})) != 401:
                    failures.append(f"{where} without a key: {status}")
                if (status := await call(client, base, method, path, bearer("rk_nosuch_key"))) != 401:
                    failures.append(f"{where} with an unknown key: {status}")
                if path in ANY_KEY:
                    continue
                answers = {
                    await call(client, base, method, path, bearer(writer["token"])),
                    await call(client, base, method, path, bearer(reader["token"])),
                }
                # Each route needs one scope (or admin): at least one of the two keys lacks it.
                if path in SERVICES_ONLY:
                    if answers != {401}:
                        failures.append(f"{where} accepted an API key: {answers}")
                elif 403 not in answers:
                    failures.append(f"{where} with keys lacking scopes: {answers}")
        assert failures == [], "\n".join(failures)
        assert walked > 6 * len(SERVICES)


async def refused_everywhere(client: httpx.AsyncClient, platform: Platform, token: str) -> dict[str, int]:
    answers = {}
    for service in SERVICES:
        answers[service] = (
            await client.get(f"{platform.url(service)}/v1/auth/whoami", headers=bearer(token))
        ).status_code
    return answers


async def test_a_revoked_key_is_refused_by_every_service_within_seconds(shared_platform: Platform) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        key = await create_key(client, shared_platform.url("scoring"), scopes=["customers:read"])
        # A key created on one service works on every other one (the miss reloads their cache).
        assert set((await refused_everywhere(client, shared_platform, key["token"])).values()) == {200}
        revoked = await client.delete(f"{shared_platform.url('campaign')}/v1/api-keys/{key['key_id']}", headers=ADMIN)
        assert revoked.status_code == 204
        deadline = asyncio.get_running_loop().time() + 10
        answers = await refused_everywhere(client, shared_platform, key["token"])
        while set(answers.values()) != {401} and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.2)
            answers = await refused_everywhere(client, shared_platform, key["token"])
        assert set(answers.values()) == {401}, answers
        trail = await client.get(
            f"{shared_platform.url('insights')}/v1/audit", params={"actor": ADMIN_KEY[:6]}, headers=ADMIN
        )
        actions = {(row["action"], row["target"]) for row in trail.json()["items"]}
        assert {("key.created", key["key_id"]), ("key.revoked", key["key_id"])} <= actions


async def test_an_expired_key_is_refused_by_every_service(shared_platform: Platform) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        expired_at = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
        expired = await create_key(client, shared_platform.url("feedback"), scopes=["admin"], expires_at=expired_at)
        assert set((await refused_everywhere(client, shared_platform, expired["token"])).values()) == {401}
        later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        valid = await create_key(client, shared_platform.url("feedback"), scopes=["admin"], expires_at=later)
        assert set((await refused_everywhere(client, shared_platform, valid["token"])).values()) == {200}
        # A tampered secret with a real key id is refused too.
        assert set((await refused_everywhere(client, shared_platform, valid["token"] + "x")).values()) == {401}


async def test_reads_searches_and_erasures_of_a_customer_are_audited(shared_platform: Platform) -> None:
    profile = shared_platform.url("profile")
    async with httpx.AsyncClient(timeout=10) as client:
        reader = await create_key(client, profile, scopes=["customers:read"])
        await client.get(f"{profile}/v1/customers/c-audited", headers=bearer(reader["token"]))
        searched = await client.get(
            f"{profile}/v1/customers", params={"email": "audited@example.com"}, headers=bearer(reader["token"])
        )
        assert searched.status_code == 200
        assert (await client.delete(f"{profile}/v1/customers/c-audited", headers=ADMIN)).status_code == 200
        trail = await client.get(f"{profile}/v1/audit", params={"customer_id": "c-audited"}, headers=ADMIN)
        rows = trail.json()["items"]
        assert [(r["action"], r["key_id"]) for r in rows] == [
            ("customer.viewed", reader["key_id"]),
            ("customer.erased", ADMIN_KEY[:6]),
        ]
        assert all(r["address"] and r["service"] == "profile" for r in rows)
        by_reader = await client.get(f"{profile}/v1/audit", params={"actor": reader["key_id"]}, headers=ADMIN)
        search = [r for r in by_reader.json()["items"] if r["action"] == "customer.searched"]
        # The criterion is recorded, never the email searched for.
        assert search and search[0]["details"] == {"criteria": ["email"]}
        assert "audited@example.com" not in by_reader.text
        later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        none_yet = await client.get(f"{profile}/v1/audit", params={"from": later}, headers=ADMIN)
        assert none_yet.json()["items"] == []


def retain_keys(capsys: pytest.CaptureFixture[str], url: str, *arguments: str) -> str:
    assert main(["keys", *arguments, "--url", url, "--key", ADMIN_KEY]) == 0
    return capsys.readouterr().out


async def test_retain_keys_creates_lists_rotates_and_revokes(
    shared_platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    ingest = shared_platform.url("ingest")
    created = await asyncio.to_thread(
        retain_keys, capsys, ingest, "create", "--source", "cli-test", "--scope", "customers:read"
    )
    key_id, token = created.split()[0], created.rsplit(" ", 1)[-1].strip()
    async with httpx.AsyncClient(timeout=10) as client:
        assert set((await refused_everywhere(client, shared_platform, token)).values()) == {200}
        listed = await asyncio.to_thread(retain_keys, capsys, ingest, "list")
        assert any(line.startswith(key_id) and "customers:read" in line for line in listed.splitlines())
        assert token not in listed
        rotated = await asyncio.to_thread(retain_keys, capsys, ingest, "rotate", key_id)
        new_token = rotated.rsplit(" ", 1)[-1].strip()
        assert new_token != token
        assert (await client.get(f"{ingest}/v1/auth/whoami", headers=bearer(new_token))).status_code == 200
        new_id = rotated.split()[0]
        await asyncio.to_thread(retain_keys, capsys, ingest, "revoke", new_id)
        deadline = asyncio.get_running_loop().time() + 10
        while asyncio.get_running_loop().time() < deadline:
            answers = await refused_everywhere(client, shared_platform, new_token)
            if set(answers.values()) == {401}:
                break
            await asyncio.sleep(0.2)
        assert set(answers.values()) == {401}, answers
