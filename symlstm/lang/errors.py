"""The error every stage raises for a spec it cannot use, and how messages name an equation."""

from __future__ import annotations


class SpecError(ValueError):
    """A spec that cannot be turned into a cell; the message says where and why."""


def equation_label(target: str, text: str, limit: int = 160) -> str:
    """How messages name an equation: ``equation h = 'o * tanh(c)'`` (long text shortened)."""
    shown = text if len(text) <= limit else text[:limit] + " ..."
    return f"equation {target} = {shown!r}"
