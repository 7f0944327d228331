"""How many cores the local models size their thread pools for (mmrag.providers.local._cpu)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def _cores_in_child(env_value: str | None) -> int:
    env = {k: v for k, v in os.environ.items() if k != "MMRAG_LOCAL_THREADS"}
    if env_value is not None:
        env["MMRAG_LOCAL_THREADS"] = env_value
    code = "from mmrag.providers.local._cpu import CORES, PASSES; print(CORES, PASSES._initial_value)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    cores, passes = map(int, out.split())
    assert cores == passes  # the forward-pass semaphore follows the same budget
    return cores


def test_the_whole_machine_by_default() -> None:
    assert _cores_in_child(None) == (os.cpu_count() or 1)


def test_a_ray_worker_budget_is_honoured() -> None:
    assert _cores_in_child("1") == 1


@pytest.mark.parametrize("bad", ["", "0", "-2", "two"])
def test_a_meaningless_budget_falls_back_to_the_machine(bad: str) -> None:
    assert _cores_in_child(bad) == (os.cpu_count() or 1)
