"""Figures a test measures (mint counts, upstream ratios), printed as they come and again at the end.

The team quotes them in notes, so ``pytest -s`` shows each line and a module's summary. Use::

    report = Measurements("token-cluster")
    _summary = report.summary_fixture()
    report("cold start", mints=1)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest


class Measurements:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.lines: list[str] = []

    def __call__(self, scenario: str, **numbers: Any) -> None:
        line = f"[{self.prefix}] {scenario}: " + ", ".join(f"{key}={value}" for key, value in numbers.items())
        self.lines.append(line)
        print(line)

    def summary_fixture(self) -> Callable[[], Iterator[None]]:
        """A module-scoped autouse fixture that prints every line again when the module ends."""

        @pytest.fixture(scope="module", autouse=True)
        def _summary() -> Iterator[None]:
            yield
            if self.lines:
                print("\n" + "\n".join([f"[{self.prefix}] summary of measured numbers:", *self.lines]))

        return _summary
