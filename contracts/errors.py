"""The validation error every contract raises for a broken rule: its message is shown as is."""

from __future__ import annotations

from pydantic_core import PydanticCustomError

__all__ = ["rule"]


def rule(message: str) -> PydanticCustomError:
    """A validation error whose message is shown to the user as is (it names the field)."""
    return PydanticCustomError("template_rule", message)
