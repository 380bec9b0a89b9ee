"""What every Python fuzz target shares: its settings, its registry and its counter.

A target is a hypothesis test decorated with @target(NAME). Under pytest (`make test`) it
runs a few examples (PYWG_FUZZ_EXAMPLES, default QUICK_EXAMPLES) so that the harness stays
alive; tests/fuzz/python/run.py (`make fuzz-python`) runs it for as long as it is given,
driven by atheris (coverage-guided, through hypothesis's fuzz_one_input) or by hypothesis
alone, and reads EXECUTED for the number of inputs it tried.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings

QUICK_EXAMPLES = 150
EXAMPLES = int(os.environ.get("PYWG_FUZZ_EXAMPLES", QUICK_EXAMPLES))

# Inputs run per target, whatever drives them.
EXECUTED: Counter[str] = Counter()
# name -> the hypothesis test (run.py finds the targets here).
TARGETS: dict[str, Any] = {}

F = TypeVar("F", bound=Callable[..., None])

fuzz_settings = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
if "PYWG_FUZZ_EXAMPLES" in os.environ:
    # Long runs want fresh inputs, not the failures of the last run replayed first.
    fuzz_settings = settings(fuzz_settings, database=None)


def target(name: str) -> Callable[[F], F]:
    """Register a hypothesis test as the fuzz target NAME, counting every input it runs.
    Put it above @given (and @example): it wraps the test hypothesis made."""
    def register(test: F) -> F:
        inner = test.hypothesis.inner_test  # type: ignore[attr-defined]

        def counted(*args: Any, **kwargs: Any) -> None:
            EXECUTED[name] += 1
            inner(*args, **kwargs)

        test.hypothesis.inner_test = counted  # type: ignore[attr-defined]
        TARGETS[name] = test
        return test
    return register
