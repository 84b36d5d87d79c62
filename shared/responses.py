"""FHIR JSON responses."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from shared.fhir import FHIR_JSON, dumps


class FhirJSONResponse(JSONResponse):
    """JSON that keeps FHIR decimals exact."""

    media_type = FHIR_JSON

    def render(self, content: object) -> bytes:
        return dumps(content).encode()
