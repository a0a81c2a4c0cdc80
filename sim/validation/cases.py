"""Validation case registry and runner."""

from __future__ import annotations

import importlib
import math
import pkgutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd

__all__ = ["CASES", "CaseResult", "ValidationCase", "case", "run_validation"]


@dataclass(frozen=True)
class CaseResult:
    """What one case measured.

    Attributes:
        reference: the value theory or the publication gives.
        simulated: the value the simulator produced.
        tolerance: largest accepted ``|simulated - reference|`` (0 for exact cases).
        unit: unit of both values.
    """

    reference: float
    simulated: float
    tolerance: float
    unit: str

    @property
    def passed(self) -> bool:
        return math.isfinite(self.simulated) and abs(self.simulated - self.reference) <= self.tolerance + 1e-12


@dataclass(frozen=True)
class ValidationCase:
    """One check of the simulator against an external reference."""

    name: str
    group: str
    configured: str
    reference: str
    source: str
    tolerance_why: str
    compute: Callable[[bool], CaseResult]


#: name -> case, filled by the case modules when they are imported
CASES: dict[str, ValidationCase] = {}


def case(
    name: str, group: str, configured: str, reference: str, source: str, tolerance_why: str
) -> Callable[[Callable[[bool], CaseResult]], Callable[[bool], CaseResult]]:
    """Decorator registering ``compute(quick) -> CaseResult`` as a validation case."""

    def register(compute: Callable[[bool], CaseResult]) -> Callable[[bool], CaseResult]:
        CASES[name] = ValidationCase(name, group, configured, reference, source, tolerance_why, compute)
        return compute

    return register


def _load_cases() -> None:
    import sim.validation as package

    for module in pkgutil.iter_modules(package.__path__):
        if module.name != "cases":
            importlib.import_module(f"sim.validation.{module.name}")


def run_validation(quick: bool = False, names: Sequence[str] | None = None) -> pd.DataFrame:
    """Run the validation cases (all, or ``names``) and return one row per case.

    Args:
        quick: shorter runs with proportionally wider tolerances (for notebooks' quick mode).
        names: case names to run; None runs every case.

    Raises:
        KeyError: an unknown case name, listing the known ones.
    """
    _load_cases()
    chosen = list(CASES) if names is None else list(names)
    unknown = [n for n in chosen if n not in CASES]
    if unknown:
        raise KeyError(f"unknown validation cases {unknown}; known: {', '.join(sorted(CASES))}")
    rows = []
    for name in chosen:
        c = CASES[name]
        started = time.perf_counter()
        r = c.compute(quick)
        rows.append(
            {
                "case": c.name,
                "group": c.group,
                "configured": c.configured,
                "reference": c.reference,
                "source": c.source,
                "reference_value": r.reference,
                "simulated_value": r.simulated,
                "tolerance": r.tolerance,
                "unit": r.unit,
                "tolerance_why": c.tolerance_why,
                "verdict": "pass" if r.passed else "FAIL",
                "wall_s": time.perf_counter() - started,
            }
        )
    return pd.DataFrame(rows)
