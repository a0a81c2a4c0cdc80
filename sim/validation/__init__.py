"""The validation suite: the simulator against theory and published results.

Each case states what is configured, the reference value and its source, the
tolerance and why, the simulated value, and pass or fail. ``hcsim validate``
prints the table and exits non-zero if any case fails; the test suite runs it.
Case modules live beside this file and register with :func:`case`.
"""

from sim.validation.cases import CASES, CaseResult, ValidationCase, case, run_validation

__all__ = ["CASES", "CaseResult", "ValidationCase", "case", "run_validation"]
