"""Input and output of the stack probe workflow that ``tandem status`` runs."""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["ProbeInput", "ProbeResult"]


class ProbeInput(BaseModel):
    nonce: str = Field(description="Echoed back by the activity, proving a round trip.")


class ProbeResult(BaseModel):
    nonce: str
    worker_identity: str
