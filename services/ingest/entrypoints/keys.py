"""`GET /v1/keys/{customer_id}` and `POST /v1/keys` (many at once): the key service of crypto-shredding
(libs.common.personal).

Only services holding the master key can use an answer (the key comes wrapped), and only they can present the
credential derived from it; API keys of people and upstream systems are not accepted here.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StringConstraints

from libs.common.problems import Problem, problem_response
from services.ingest.entrypoints.common import deps_of
from services.ingest.handlers.keys import credential_valid, wrapped_key, wrapped_keys


def service_credential(request: Request) -> None:
    """A dependency, so that a caller without the credential is refused before its body is even read."""
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credential_valid(deps_of(request), presented):
        raise Problem(401, "Unauthorized", "the key service answers services holding the master key")


router = APIRouter(prefix="/v1/keys", tags=["keys"], dependencies=[Depends(service_credential)])

CustomerId = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class KeysRequest(BaseModel):
    customer_ids: list[CustomerId] = Field(max_length=1000)
    # True: a customer without a key gets one (services keeping personal data at rest under that id).
    create: bool = False


@router.post("", summary="Many customers' data keys, wrapped by the master key (services only)")
async def post_keys(body: KeysRequest, request: Request) -> JSONResponse:
    """Customers without a key are left out of `keys`, unless `create` asked for one."""
    keys = await wrapped_keys(deps_of(request), body.customer_ids, body.create)
    return JSONResponse({"keys": keys})


@router.get("/{customer_id}", summary="A customer's data key, wrapped by the master key (services only)")
async def get_key(customer_id: str, request: Request) -> JSONResponse:
    found = await wrapped_key(deps_of(request), customer_id)
    if found is None:
        return problem_response(404, "Not Found", f"no data key for customer {customer_id}", instance=request.url.path)
    return JSONResponse(found)
