"""The bounded, retrying, adaptive request layer, with fake calls (no sockets)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError, EventStreamError, NoCredentialsError, ReadTimeoutError

from mmrag.errors import ConfigError, ProviderError
from mmrag.providers._concurrency import (
    AdaptiveLimiter,
    CallStats,
    RetryPolicy,
    abounded_map,
    bounded_map,
    call_with_retry,
    classify_error,
)

FAST = RetryPolicy(max_retries=5, base_delay=0.001, max_delay=0.005)


def _client_error(code: str, status: int, message: str = "boom") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Converse"
    )


def _stream_error(code: str) -> EventStreamError:
    return EventStreamError({"Error": {"Code": code, "Message": "mid-stream"}}, "ConverseStream")


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (_client_error("ThrottlingException", 429), "throttle"),
        (_client_error("ModelNotReadyException", 429), "throttle"),
        (_client_error("ServiceUnavailableException", 503), "transient"),
        (_client_error("InternalServerException", 500), "transient"),
        (_client_error("ModelTimeoutException", 408), "transient"),
        (_client_error("SomethingNew", 502), "transient"),
        (_client_error("SomethingNew", 429), "throttle"),
        (_stream_error("throttlingException"), "throttle"),
        (_stream_error("serviceUnavailableException"), "transient"),
        (_stream_error("internalServerException"), "transient"),
        (_stream_error("modelStreamErrorException"), "transient"),
        (ReadTimeoutError(endpoint_url="http://x"), "transient"),
        (_client_error("ValidationException", 400), "fatal"),
        (_client_error("AccessDeniedException", 403), "fatal"),
        (_stream_error("validationException"), "fatal"),
        (ValueError("a bug"), "fatal"),
    ],
)
def test_classify(exc: BaseException, expected: str) -> None:
    assert classify_error(exc) == expected


class Flaky:
    """Fails with the given errors, then returns the number of calls."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> int:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.calls


def test_retries_throttles_and_5xx_then_succeeds() -> None:
    fn = Flaky(_client_error("ThrottlingException", 429), _client_error("InternalServerException", 500))
    limiter, stats = AdaptiveLimiter(8), CallStats()
    assert call_with_retry(fn, limiter=limiter, policy=FAST, stats=stats) == 3
    assert stats.as_dict() == {"calls": 3, "retries": 2, "throttles": 1, "failures": 0, "filtered": 0}
    assert limiter.in_flight == 0 and limiter.min_limit_seen == 4 and limiter.decreases == 1


def test_fatal_errors_raise_at_once_with_model_and_message() -> None:
    fn = Flaky(_client_error("ValidationException", 400, "Malformed input request: dims"))
    with pytest.raises(ProviderError) as excinfo:
        call_with_retry(fn, policy=FAST, model_id="amazon.titan-embed-text-v2:0")
    assert fn.calls == 1 and not excinfo.value.is_retryable
    assert str(excinfo.value) == (
        "Bedrock call to amazon.titan-embed-text-v2:0 failed: ValidationException: Malformed input request: dims"
    )
    assert isinstance(excinfo.value.__cause__, ClientError)


def test_exhausted_retries_are_retryable_errors() -> None:
    fn = Flaky(*[_client_error("ThrottlingException", 429)] * 10)
    with pytest.raises(ProviderError) as excinfo:
        call_with_retry(fn, policy=FAST, max_retries=2)
    assert fn.calls == 3 and excinfo.value.is_retryable


def test_bugs_and_credentials() -> None:
    with pytest.raises(KeyError):  # not an AWS error: propagates unchanged, never retried
        call_with_retry(Flaky(KeyError("x")), policy=FAST)
    with pytest.raises(ConfigError, match="aws configure"):
        call_with_retry(Flaky(NoCredentialsError()), policy=FAST)


def test_backoff_is_full_jitter_and_capped() -> None:
    policy = RetryPolicy(base_delay=0.1, max_delay=0.5)
    delays = [policy.delay(n) for n in range(10) for _ in range(20)]
    assert all(0 <= d <= 0.5 for d in delays) and max(delays) > 0.25
    assert all(policy.delay(0) <= 0.1 for _ in range(50))


def test_limiter_aimd() -> None:
    limiter = AdaptiveLimiter(16)
    tickets = [limiter.acquire() for _ in range(4)]
    for t in tickets:  # one wave of throttles counts once
        limiter.release(t, outcome="throttle")
    assert limiter.limit == 8 and limiter.decreases == 1
    limiter.release(limiter.acquire(), outcome="throttle")
    assert limiter.limit == 4
    for _ in range(3):
        limiter.release(limiter.acquire(), outcome="throttle")
    assert limiter.limit == 1 and limiter.min_limit_seen == 1  # never below 1
    for _ in range(200):
        limiter.release(limiter.acquire(), outcome="ok")
    assert limiter.limit == 16  # additive recovery, capped at the maximum
    limiter.release(limiter.acquire(), outcome="error")
    assert limiter.limit == 16


def test_limiter_caps_in_flight() -> None:
    limiter = AdaptiveLimiter(3)
    current = peak = 0
    lock = threading.Lock()

    def work(i: int) -> int:
        def call() -> int:
            nonlocal current, peak
            with lock:
                current += 1
                peak = max(peak, current)
            time.sleep(0.01)
            with lock:
                current -= 1
            return i * 2

        return call_with_retry(call, limiter=limiter, policy=FAST)

    assert bounded_map(work, range(30), limiter=limiter, max_workers=10) == [i * 2 for i in range(30)]
    assert peak == 3 and limiter.peak_in_flight == 3


def test_bounded_map_keeps_order_and_raises_the_first_error() -> None:
    limiter = AdaptiveLimiter(4)
    assert bounded_map(lambda x: x + 1, [3, 1, 2], limiter=limiter) == [4, 2, 3]
    assert bounded_map(lambda x: x, [], limiter=limiter) == []

    def fail_on_two(x: int) -> int:
        if x == 2:
            raise ValueError("two")
        return x

    with pytest.raises(ValueError, match="two"):
        bounded_map(fail_on_two, range(10), limiter=limiter)


def test_abounded_map_runs_in_parallel_without_blocking_the_loop() -> None:
    limiter = AdaptiveLimiter(8)

    def slow(x: int) -> int:
        def call() -> int:
            time.sleep(0.05)
            return x

        return call_with_retry(call, limiter=limiter, policy=FAST)

    async def run() -> tuple[list[int], int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            for _ in range(5):
                await asyncio.sleep(0.01)
                ticks += 1

        results, _ = await asyncio.gather(abounded_map(slow, range(16), limiter=limiter), ticker())
        return results, ticks

    started = time.monotonic()
    results, ticks = asyncio.run(run())
    assert results == list(range(16)) and ticks == 5
    assert time.monotonic() - started < 0.5  # 16 x 50 ms over 8 slots, not 800 ms
    assert limiter.peak_in_flight == 8


def test_throttle_lowers_limit_under_concurrency() -> None:
    limiter = AdaptiveLimiter(8)
    errors: list[Any] = [_client_error("ThrottlingException", 429)] * 6
    lock = threading.Lock()

    def call(i: int) -> int:
        def once() -> int:
            with lock:
                error = errors.pop() if errors else None
            if error is not None:
                raise error
            time.sleep(0.002)
            return i

        return call_with_retry(once, limiter=limiter, policy=FAST)

    assert bounded_map(call, range(40), limiter=limiter) == list(range(40))
    assert limiter.min_limit_seen < 8 and limiter.in_flight == 0
