"""The two HTTP APIs: their routes, declared once (`routes`), and their OpenAPI 3 documents,
kept beside the code as JSON.

Each HTTP function serves its API's document at GET .../openapi.json (see `shopcore.platform.http`).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from shopcore.openapi import routes

HERE = Path(__file__).resolve().parent

# Which API each HTTP function belongs to: the command API or the query API.
API_OF = {function.name: function.api for function in routes.HTTP_FUNCTIONS}


@cache
def document(api: str) -> dict[str, Any]:
    """The OpenAPI document of `api` ("command" or "query"), read once per process."""
    if api not in (routes.COMMAND, routes.QUERY):
        raise ValueError(f"no OpenAPI document for {api!r}")
    loaded: dict[str, Any] = json.loads((HERE / f"{api}.json").read_text(encoding="utf-8"))
    return loaded
