"""Bounded, retrying, adaptive model requests: the one retry layer of every Bedrock call mmrag makes itself.

Three pieces, used together by the Bedrock providers:

- :class:`AdaptiveLimiter` caps the requests in flight. Throttling halves the allowed concurrency (at most once per
  "round": only a request that started after the last decrease can lower it again, so one burst of 429s from
  the same wave counts once); every success adds ``1 / limit``, i.e. about +1 per full window of successes
  (AIMD, as in TCP congestion avoidance). The limit never goes below 1 nor above the configured maximum.
- :func:`call_with_retry` runs one request through the limiter and retries throttling, 5xx, model-not-ready,
  model timeouts, read timeouts and mid-stream exceptions with exponential backoff and full jitter. The slot is
  released while sleeping, so other requests go on. With ``RetryPolicy.attempt_timeout`` an attempt that takes
  longer is given up by the caller but not by the connection: it keeps its slot until the service has answered,
  so a timed-out request still counts against the limit while the service works on it.
- :func:`bounded_map` / :func:`abounded_map` run a function over many items on a thread pool sized to the
  limiter's maximum, keeping order.

botocore's own retries are switched off for clients mmrag wraps (``make_bedrock_client``), so attempts never
multiply (botocore x ours) and the limiter sees every throttle.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from mmrag.errors import ProviderError
from mmrag.providers._attempt import AttemptTimeout, run_attempt
from mmrag.providers._aws_errors import (
    ErrorClass,
    backoff_floor,
    classify_error,
    error_code,
    is_client_timeout,
    retry_limit,
    to_mmrag_error,
)

__all__ = [
    "AdaptiveLimiter",
    "CallStats",
    "AttemptTimeout",
    "ErrorClass",
    "RetryPolicy",
    "abounded_map",
    "bounded_map",
    "call_with_retry",
    "classify_error",
    "error_code",
    "is_client_timeout",
    "to_mmrag_error",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

@dataclass(frozen=True)
class RetryPolicy:
    """How :func:`call_with_retry` retries.

    Attributes:
        max_retries: retries after the first attempt (``Settings.max_retries``).
        base_delay: first backoff ceiling in seconds; attempt ``n`` sleeps ``uniform(0, base * 2**n)``.
        max_delay: cap of the backoff ceiling in seconds.
        attempt_timeout: seconds the caller waits for one attempt before retrying (``Settings.request_timeout``);
            None waits as long as the client's own read timeout. An attempt given up this way runs on until the
            service answers (or the connection's read timeout, set longer, ends it) and holds its limiter slot
            until then.
    """

    max_retries: int = 8
    base_delay: float = 0.2
    max_delay: float = 20.0
    attempt_timeout: float | None = None

    def delay(self, attempt: int) -> float:
        """Full-jitter backoff for the 0-based retry ``attempt``."""
        return random.uniform(0.0, min(self.max_delay, self.base_delay * (2.0**attempt)))


@dataclass
class CallStats:
    """Thread-safe counters of model calls: attempts sent, retries, throttles seen, calls that finally failed."""

    calls: int = 0
    retries: int = 0
    throttles: int = 0
    failures: int = 0
    filtered: int = 0  # answered, but blocked by a content filter or guardrail (final, not retried)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, *, calls: int = 0, retries: int = 0, throttles: int = 0, failures: int = 0,
            filtered: int = 0) -> None:
        with self._lock:
            self.calls += calls
            self.retries += retries
            self.throttles += throttles
            self.failures += failures
            self.filtered += filtered

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return {"calls": self.calls, "retries": self.retries, "throttles": self.throttles,
                    "failures": self.failures, "filtered": self.filtered}


class AdaptiveLimiter:
    """At most ``limit`` calls in flight; the limit adapts to throttling (AIMD).

    Thread-safe. The same limiter can gate sync and async callers, because async callers run the blocking call
    in a worker thread (:func:`abounded_map`).

    Args:
        max_limit: the configured maximum (``Settings.max_concurrency``).
        decrease: factor applied to the limit on throttling.
        increase: amount added per full window of successes (``increase / limit`` per success).
        hold_after_timeout: seconds a slot stays taken after its request timed out on the client side. The
            service keeps working on a request whose client gave up (it still counts against the account's
            quota), so the slot is counted until that request is over, taken to last at most as long again as
            the client waited (``Settings.request_timeout``); 0 releases at once.
    """

    def __init__(
        self, max_limit: int, *, decrease: float = 0.5, increase: float = 1.0, hold_after_timeout: float = 0.0
    ) -> None:
        if max_limit < 1:
            raise ValueError("max_limit must be >= 1")
        if not 0.0 < decrease < 1.0:
            raise ValueError("decrease must be between 0 and 1")
        self.max_limit = max_limit
        self.hold_after_timeout = hold_after_timeout
        self._decrease = decrease
        self._increase = increase
        self._limit = float(max_limit)
        self._epoch = 0
        self._in_flight = 0
        self._cond = threading.Condition()
        self.min_limit_seen = max_limit
        self.decreases = 0
        self.peak_in_flight = 0

    @property
    def limit(self) -> int:
        """Calls allowed in flight right now."""
        with self._cond:
            return int(self._limit)

    @property
    def in_flight(self) -> int:
        with self._cond:
            return self._in_flight

    def acquire(self) -> int:
        """Wait for a free slot; returns a ticket to hand back to :meth:`release`."""
        with self._cond:
            while self._in_flight >= int(self._limit):
                self._cond.wait()
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
            return self._epoch

    def release(self, ticket: int, *, outcome: Literal["ok", "throttle", "error"] = "ok") -> None:
        """Free a slot and adapt: ``throttle`` lowers the limit, ``ok`` raises it slowly, ``error`` leaves it."""
        with self._cond:
            self._in_flight -= 1
            if outcome == "throttle":
                if ticket >= self._epoch:  # one decrease per round: requests of an older round do not count
                    self._limit = max(1.0, float(int(self._limit * self._decrease)))
                    self._epoch += 1
                    self.decreases += 1
                    self.min_limit_seen = min(self.min_limit_seen, int(self._limit))
            elif outcome == "ok" and self._limit < self.max_limit:
                self._limit = min(float(self.max_limit), self._limit + self._increase / self._limit)
            self._cond.notify_all()

    def release_later(self, ticket: int, seconds: float) -> None:
        """:meth:`release` (outcome ``error``) after ``seconds``, on a daemon timer; at once when ``seconds <= 0``."""
        if seconds <= 0:
            self.release(ticket, outcome="error")
            return
        timer = threading.Timer(seconds, self.release, args=(ticket,), kwargs={"outcome": "error"})
        timer.daemon = True
        timer.start()

    def stats(self) -> dict[str, int]:
        """Current limit, lowest limit seen, number of decreases and peak calls in flight."""
        with self._cond:
            return {
                "limit": int(self._limit),
                "max_limit": self.max_limit,
                "min_limit_seen": self.min_limit_seen,
                "decreases": self.decreases,
                "peak_in_flight": self.peak_in_flight,
            }


def call_with_retry(
    fn: Callable[[], T],
    *,
    limiter: AdaptiveLimiter | None = None,
    max_retries: int | None = None,
    classify: Callable[[BaseException], ErrorClass] = classify_error,
    policy: RetryPolicy | None = None,
    model_id: str = "model",
    stats: CallStats | None = None,
) -> T:
    """Call ``fn`` inside a limiter slot, retrying retryable failures with backoff.

    Args:
        fn: one complete request (for a stream: open it and read it to the end inside ``fn``).
        limiter: the concurrency gate; None calls without one.
        max_retries: overrides ``policy.max_retries``.
        classify: maps an exception to ``throttle`` / ``transient`` / ``fatal``.
        policy: backoff settings (default :class:`RetryPolicy`).
        model_id: named in error messages.
        stats: counters to update.

    Raises:
        ProviderError: ``is_retryable=False`` at once for a non-retryable AWS error (validation, access denied);
            ``is_retryable=True`` when retries ran out. Carries the model id and the AWS message.
        ConfigError: credentials or region are missing.
    """
    policy = policy or RetryPolicy()
    retries = policy.max_retries if max_retries is None else max_retries
    attempt = 0
    while True:
        ticket = limiter.acquire() if limiter is not None else 0
        if stats is not None:
            stats.add(calls=1)
        try:
            if policy.attempt_timeout is None:
                result = fn()
            else:
                result = run_attempt(fn, policy.attempt_timeout, _late_release(limiter, ticket))
        except AttemptTimeout as exc:
            # The request is still running on the service: its thread releases the slot when it ends.
            if attempt >= retries:
                raise ProviderError(f"{model_id} did not answer within {policy.attempt_timeout:g} s "
                                    f"(gave up after {attempt + 1} attempts)", is_retryable=True) from exc
            delay = policy.delay(attempt)
            logger.debug("%s: %s, retry %d/%d in %.3fs", model_id, exc, attempt + 1, retries, delay)
            if stats is not None:
                stats.add(retries=1)
            attempt += 1
            time.sleep(delay)
            continue
        except Exception as exc:
            kind = classify(exc)
            if limiter is not None and is_client_timeout(exc):
                limiter.release_later(ticket, limiter.hold_after_timeout)
            elif limiter is not None:
                limiter.release(ticket, outcome="throttle" if kind == "throttle" else "error")
            if stats is not None and kind == "throttle":
                stats.add(throttles=1)
            if kind == "fatal" or attempt >= retry_limit(exc, retries):
                error = to_mmrag_error(exc, model_id, retryable=kind != "fatal")
                if error is exc:
                    raise
                raise error from exc
            delay = max(policy.delay(attempt), backoff_floor(exc, attempt))
            logger.debug("%s: %s, retry %d/%d in %.3fs", model_id, error_code(exc) or type(exc).__name__,
                         attempt + 1, retries, delay)
            if stats is not None:
                stats.add(retries=1)
            attempt += 1
            time.sleep(delay)
            continue
        if limiter is not None:
            limiter.release(ticket, outcome="ok")
        return result


def _late_release(limiter: AdaptiveLimiter | None, ticket: int) -> Callable[[], None]:
    def release() -> None:
        if limiter is not None:
            limiter.release(ticket, outcome="error")

    return release


def bounded_map(
    fn: Callable[[T], R], items: Iterable[T], *, limiter: AdaptiveLimiter | None = None, max_workers: int | None = None
) -> list[R]:
    """``[fn(x) for x in items]`` on a thread pool sized to the limiter's maximum; order is kept.

    ``fn`` should gate its own request with :func:`call_with_retry` and the same limiter: the pool only
    supplies threads. The first exception (in item order) is raised after cancelling calls not yet started.
    """
    values: Sequence[T] = items if isinstance(items, Sequence) else list(items)
    if not values:
        return []
    workers = min(len(values), max_workers or (limiter.max_limit if limiter is not None else 8))
    if workers <= 1:
        return [fn(v) for v in values]
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mmrag-model")
    futures: list[Future[R]] = [pool.submit(fn, v) for v in values]
    try:
        return [f.result() for f in futures]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


async def abounded_map(
    fn: Callable[[T], R], items: Iterable[T], *, limiter: AdaptiveLimiter | None = None, max_workers: int | None = None
) -> list[R]:
    """Async :func:`bounded_map`: runs the blocking ``fn`` on a dedicated pool (not asyncio's small default one).

    The event loop never blocks: limiter waits happen in the worker threads.
    """
    values = list(items)
    if not values:
        return []
    workers = min(len(values), max_workers or (limiter.max_limit if limiter is not None else 8))
    loop = asyncio.get_running_loop()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mmrag-model")
    try:
        futures = [loop.run_in_executor(pool, fn, v) for v in values]
        try:
            return list(await asyncio.gather(*futures))
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
