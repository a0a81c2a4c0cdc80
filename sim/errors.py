"""Exceptions users see. Each message names the field, the value and what is allowed."""

from __future__ import annotations

__all__ = ["HcsimError", "ScenarioError"]


class HcsimError(Exception):
    """Base class of every error hcsim raises on purpose."""


class ScenarioError(HcsimError):
    """A scenario file or override is invalid; raised before anything runs or is written.

    Attributes:
        problems: one line per problem, each naming the dotted field, the value and
            what is allowed.
        source: the file (or "<overrides>") the scenario came from.
    """

    def __init__(self, problems: list[str], source: str = "<scenario>") -> None:
        self.problems = problems
        self.source = source
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid scenario {source}:\n{lines}")
