"""Per-request checks shared by ingest's routes: API key and scope, rate limit, body size."""

from __future__ import annotations

import time

from fastapi import Request

from libs.common.auth import Principal, authenticate_request
from libs.common.problems import Problem
from libs.common.ratelimit import TokenBucket, retry_after_header
from libs.common.settings import Scope
from services.ingest.entrypoints.common import deps_of
from services.ingest.metrics import RATE_LIMITED


async def authorize(request: Request, scope: Scope = "events:write") -> Principal:
    """Checked inline rather than as a FastAPI dependency: this is on every event's hot path."""
    ctx = deps_of(request)
    principal = await authenticate_request(request)
    if not principal.has(scope):
        raise Problem(403, "Forbidden", f"this API key lacks the '{scope}' scope", missing_scope=scope)
    presented = principal.bucket
    rate = principal.rate_limit_per_s or ctx.settings.ingest_rate_limit_per_s
    if rate:
        now = time.monotonic()
        bucket = ctx.buckets.get(presented)
        if bucket is None:
            # Each worker process holds its own buckets: together they never let more than `rate` through.
            share = rate / ctx.settings.http_workers
            bucket = ctx.buckets[presented] = TokenBucket.full(share, ctx.settings.ingest_rate_burst_s, now)
        wait = bucket.take(now)
        if wait > 0:
            RATE_LIMITED.labels(principal.source).inc()
            raise Problem(
                429,
                "Too Many Requests",
                f"rate limit of {rate:g} requests/s for this API key exceeded",
                headers={"Retry-After": retry_after_header(wait)},
            )
    return principal


async def events_writer(request: Request) -> Principal:
    return await authorize(request)


async def administrator(request: Request) -> Principal:
    return await authorize(request, "admin")


async def read_body(request: Request, limit: int) -> bytes:
    """Enforces the limit on chunked bodies too, which carry no Content-Length to check up front."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise Problem(413, "Payload Too Large", f"body exceeds {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, "Payload Too Large", f"body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "application/json").split(";", 1)[0].strip().lower()
