"""JSON and FHIR JSON responses, written by shared.jsontext straight to bytes."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse as _StarletteJSONResponse

from shared.fhir import FHIR_JSON
from shared.jsontext import dump_bytes


class JSONResponse(_StarletteJSONResponse):
    """JSON as Starlette writes it (compact, UTF-8 as is), by orjson, with Decimals exact.

    A route that returns one is not validated again by FastAPI: the content is written as it is given.
    """

    def render(self, content: Any) -> bytes:
        return dump_bytes(content)


class FhirJSONResponse(JSONResponse):
    """FHIR JSON (`application/fhir+json`): decimals keep the precision they were sent with."""

    media_type = FHIR_JSON
