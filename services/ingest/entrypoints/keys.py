"""`GET /v1/keys/{customer_id}`: the key service of crypto-shredding (libs.common.personal).

Only services holding the master key can use an answer (the key comes wrapped), and only they can present the
credential derived from it; API keys of people and upstream systems are not accepted here.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from libs.common.problems import problem_response
from services.ingest.entrypoints.common import deps_of
from services.ingest.handlers.keys import credential_valid, wrapped_key

router = APIRouter(prefix="/v1/keys", tags=["keys"])


@router.get("/{customer_id}", summary="A customer's data key, wrapped by the master key (services only)")
async def get_key(customer_id: str, request: Request) -> JSONResponse:
    ctx = deps_of(request)
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credential_valid(ctx, presented):
        return problem_response(
            401, "Unauthorized", "the key service answers services holding the master key", instance=request.url.path
        )
    found = await wrapped_key(ctx, customer_id)
    if found is None:
        return problem_response(404, "Not Found", f"no data key for customer {customer_id}", instance=request.url.path)
    return JSONResponse(found)
