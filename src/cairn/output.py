"""Every `--json` output, one way: a dataclass whose fields are the JSON, and its version.

An output type says its `SCHEMA_VERSION` (a ClassVar) once; `to_json` writes it
as the document's first key, `json_schema` states it as a constant. A change
that breaks readers bumps the version and regenerates docs/schemas/
(python -m cairn.schemas); README's "JSON output" section says what changed.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, Protocol


class Output(Protocol):
    SCHEMA_VERSION: ClassVar[int]


def to_json(result: Output) -> dict[str, Any]:
    from pydantic import TypeAdapter

    data: dict[str, Any] = TypeAdapter(type(result)).dump_python(result, mode="json", by_alias=True)
    return {"schema_version": result.SCHEMA_VERSION, **data}


def dumps(result: Output) -> str:
    """The JSON text `--json` prints."""
    return json.dumps(to_json(result), indent=2)


def json_schema(kind: type[Output], title: str) -> dict[str, Any]:
    from pydantic import TypeAdapter

    schema: dict[str, Any] = TypeAdapter(kind).json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = title
    schema["properties"] = {
        "schema_version": {
            "const": kind.SCHEMA_VERSION,
            "description": "Version of this JSON schema.",
            "type": "integer",
        },
        **schema.get("properties", {}),
    }
    schema["required"] = ["schema_version", *schema.get("required", [])]
    return schema
