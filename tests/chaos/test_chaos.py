"""The chaos suite, short: each fault once under a light steady load, then the books must balance.

`make chaos` runs the same cases longer and heavier and prints the table (python -m tests.chaos).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.stack import Stack
from tests.chaos.scenario import TWO_INSTANCES, Chaos, cases, two_instance_cases
from tests.conftest import PostgresDatabases, free_port, started_stack

pytestmark = pytest.mark.e2e

RATE, SECONDS = 6.0, 6.0
CASES = [name for name, _ in cases(None)]  # type: ignore[arg-type]
TWO_INSTANCE_CASES = [name for name, _ in two_instance_cases(None)]
# Short here: the killed instance is back before the broker would have given up on it (`make chaos`: 12 s, longer
# than the consumers' session timeout, so that the survivor takes over its partitions).
DOWN_SECONDS = 3.0


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


@pytest.fixture(scope="module")
def chaos_two(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresDatabases,
              postgres_server: str) -> Iterator[Chaos]:
    urls = {name: postgres.new(f"chaos2_{name}") for name in ("triage", "coordination", "billing_shadow")}
    stack = Stack(data_dir=tmp_path_factory.mktemp("stack-chaos-two"),
                  ports={"triage": free_port(), "coordination": free_port(), "billing_shadow": free_port()},
                  broker_port=free_port(), database_urls=urls, instances=TWO_INSTANCES)
    try:
        stack.start()
        yield Chaos(stack, postgres_server)
    finally:
        stack.stop()


@pytest.mark.parametrize("case", TWO_INSTANCE_CASES)
async def test_nothing_lost_nothing_twice_with_two_instances(chaos_two: Chaos, case: str) -> None:
    fault = dict(two_instance_cases(chaos_two, DOWN_SECONDS))[case]
    result = await chaos_two.run_case(case, fault, rate=RATE, seconds=SECONDS)

    assert result.accepted == round(RATE * SECONDS), result.driver_errors[:3]
    assert result.driver_errors == []
    # Depends on the outbox relay and notification sender being safe with two instances (issue #17, point 4).
    assert result.books.clean, result.books.problems()
    assert (result.lost, result.duplicated) == (0, 0)
