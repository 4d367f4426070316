"""Queue pools (airtasks.pools, airtasks.policy): which pool a task lands in, and the variable's form."""

from __future__ import annotations

import pytest

from airtasks.pools import POOLS_ENV, PoolsError, format_pools, parse_pools, pool_for, pool_name

ENV = {POOLS_ENV: "default=40 heavy=8"}


def test_a_task_of_a_pooled_queue_without_a_pool_goes_to_its_queue_pool() -> None:
    assert pool_for("default", "default_pool", ENV) == "airtasks-default"
    assert pool_for("heavy", "default_pool", ENV) == pool_name("heavy") == "airtasks-heavy"


def test_a_pool_the_author_chose_and_an_unpooled_queue_are_left_alone() -> None:
    assert pool_for("default", "licences", ENV) == "licences"
    assert pool_for("manager", "default_pool", ENV) == "default_pool"
    assert pool_for("default", "default_pool", {}) == "default_pool"


def test_the_variable_round_trips_and_a_bad_one_names_the_fix() -> None:
    assert parse_pools(format_pools({"default": 40, "gpu-a": 0})) == {"default": 40, "gpu-a": 0}
    assert parse_pools("") == {}
    with pytest.raises(PoolsError, match=r"'default:40' is not QUEUE=SLOTS.*airtasks stack render"):
        parse_pools("default:40")


def test_the_policy_hook_sets_the_pool_on_the_task(monkeypatch: pytest.MonkeyPatch) -> None:
    from airtasks.policy import task_policy  # noqa: PLC0415 (imports Airflow)

    class Task:
        queue = "heavy"
        pool = "default_pool"

    monkeypatch.setenv(POOLS_ENV, ENV[POOLS_ENV])
    task = Task()
    task_policy(task)
    assert task.pool == "airtasks-heavy"
