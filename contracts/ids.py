"""Identifier types shared by every contract."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

__all__ = ["Id"]

Id = Annotated[str, Field(min_length=1, max_length=64)]
"""An entity id (cycle, department, employee, goal...): 1-64 characters."""
