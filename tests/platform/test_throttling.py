"""SlidingWindowBudget: at most ``limit`` uses in any window, atomically across threads and processes
(one Lua script on the shared Redis), with the wait until the oldest use leaves the window."""

import threading
import time
import uuid

from nexa.platform.redis import get_redis
from nexa.platform.throttling import SlidingWindowBudget


def _budget(limit: int, window_seconds: int = 3600) -> SlidingWindowBudget:
    return SlidingWindowBudget(f"nexa:test-budget:{uuid.uuid4()}", limit=limit, window_seconds=window_seconds)


def test_forty_threads_at_once_take_exactly_the_limit():
    budget = _budget(limit=10)
    start = threading.Barrier(40)
    outcomes: list[bool] = []

    def take(index: int) -> None:
        start.wait(timeout=10)
        outcomes.append(budget.take(f"use-{index}")[0])

    threads = [threading.Thread(target=take, args=(index,)) for index in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == [False] * 30 + [True] * 10
    assert get_redis().zcard(budget.key) == 10


def test_a_refusal_says_when_the_oldest_use_leaves_the_window_and_a_given_back_use_frees_a_slot():
    budget = _budget(limit=2, window_seconds=600)
    assert budget.take("a") == (True, 0)
    assert budget.take("b") == (True, 0)
    taken, retry_after = budget.take("c")
    assert not taken and 595 <= retry_after <= 600
    budget.give_back("b")
    assert budget.take("c") == (True, 0)
    assert get_redis().ttl(budget.key) > 0  # the key expires with the window


def test_uses_older_than_the_window_no_longer_count():
    budget = _budget(limit=1, window_seconds=1)
    assert budget.take("a")[0]
    assert not budget.take("b")[0]
    time.sleep(1.05)
    assert budget.take("c")[0]


def test_a_zero_limit_refuses_everything():
    assert _budget(limit=0).take("a") == (False, 3600)
