"""The chaos suite, short: each fault once under a light steady load, then the books must balance.

`make chaos` runs the same cases longer and heavier and prints the table (python -m tests.chaos).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.stack import Stack
from tests.chaos.scenario import Chaos, cases
from tests.conftest import PostgresDatabases, started_stack

pytestmark = pytest.mark.e2e

RATE, SECONDS = 6.0, 6.0
CASES = [name for name, _ in cases(None)]  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def chaos(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresDatabases,
          postgres_server: str) -> Iterator[Chaos]:
    urls = {name: postgres.new(f"chaos_{name}") for name in ("triage", "coordination", "billing_shadow")}
    stack: Iterator[Stack] = started_stack(tmp_path_factory, "chaos", database_urls=urls)
    running = next(stack)
    yield Chaos(running, postgres_server)
    next(stack, None)


@pytest.mark.parametrize("case", CASES)
async def test_nothing_lost_nothing_twice(chaos: Chaos, case: str) -> None:
    fault = dict(cases(chaos))[case]
    result = await chaos.run_case(case, fault, rate=RATE, seconds=SECONDS)

    assert result.accepted == round(RATE * SECONDS), result.driver_errors[:3]
    assert result.driver_errors == []
    assert result.books.clean, result.books.problems()
    assert (result.lost, result.duplicated) == (0, 0)
