"""What a test reads from `cairn COMMAND --json` is first checked against the committed
schema of that command, by jsonschema: the schema is the contract, not the test's guess."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

SCHEMAS = Path(__file__).parents[1] / "docs" / "schemas"
# commands whose output shares another's schema file
FILE_OF = {"analyze": "analysis", "unbundle": "push"}


@cache
def schema(command: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (SCHEMAS / f"{FILE_OF.get(command, command)}.schema.json").read_text()
    )
    return data


def validated(command: str, text: str) -> Any:
    """The JSON `cairn COMMAND --json` printed, once its schema accepts it."""
    data = json.loads(text)
    jsonschema.validate(data, schema(command))
    return data
