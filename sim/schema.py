"""Base model for everything a user writes in a scenario file."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["StrictModel"]


class StrictModel(BaseModel):
    """Pydantic model that rejects unknown keys (a typo is an error, never ignored)."""

    model_config = ConfigDict(extra="forbid", validate_default=True)
