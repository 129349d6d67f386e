"""OpenAPI for routes that read their body themselves (for speed): schemas and one example per type."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import TypeAdapter

from libs.common.events import UPSTREAM_EVENT_TYPES
from services.ingest.domain.examples import flat_example, structured_example
from services.ingest.domain.incoming import FLAT_ADAPTER, STRUCTURED_ADAPTER

REF = "#/components/schemas/{model}"
_DEFS: dict[str, Any] = {}

CLOUDEVENTS_JSON = "application/cloudevents+json"
CLOUDEVENTS_BATCH_JSON = "application/cloudevents-batch+json"


def _schema(adapter: TypeAdapter[Any]) -> dict[str, Any]:
    schema = adapter.json_schema(ref_template=REF)
    _DEFS.update(schema.pop("$defs", {}))
    return schema


FLAT_SCHEMA = _schema(FLAT_ADAPTER)
STRUCTURED_SCHEMA = _schema(STRUCTURED_ADAPTER)


def _examples(make: Any) -> dict[str, Any]:
    return {name: {"summary": name, "value": make(name)} for name in UPSTREAM_EVENT_TYPES}


def single_event_body() -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": FLAT_SCHEMA, "examples": _examples(flat_example)},
                CLOUDEVENTS_JSON: {"schema": STRUCTURED_SCHEMA, "examples": _examples(structured_example)},
            },
        }
    }


def batch_body(max_items: int) -> dict[str, Any]:
    mixed = [flat_example(name, f"evt-{n}") for n, name in enumerate(UPSTREAM_EVENT_TYPES)]
    mixed_ce = [structured_example(name, f"evt-{n}") for n, name in enumerate(UPSTREAM_EVENT_TYPES)]
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["events"],
                        "additionalProperties": False,
                        "properties": {"events": {"type": "array", "maxItems": max_items, "items": FLAT_SCHEMA}},
                    },
                    "examples": {"every_type": {"summary": "one event of every type", "value": {"events": mixed}}},
                },
                CLOUDEVENTS_BATCH_JSON: {
                    "schema": {"type": "array", "maxItems": max_items, "items": STRUCTURED_SCHEMA},
                    "examples": {"every_type": {"summary": "one event of every type", "value": mixed_ce}},
                },
            },
        }
    }


def import_body() -> dict[str, Any]:
    csv_example = "customer_id,date,amount\nc-1,1997-01-01T00:00:00Z,11.77\n"
    return {
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string"}, "example": csv_example},
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        }
    }


def install(app: FastAPI) -> None:
    """Adds the event schemas' definitions to components, where the request bodies above refer."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original()
            schema.setdefault("components", {}).setdefault("schemas", {}).update(_DEFS)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
