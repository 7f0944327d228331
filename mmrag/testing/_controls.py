"""What tests set on the emulator: scripted chat replies, latency rules and armed faults (thread-safe)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mmrag.testing._records import Fault, RecordedRequest, matches

if TYPE_CHECKING:
    from mmrag.testing._chat import Reply

__all__ = ["Controls", "Responder"]

Responder = Callable[[RecordedRequest], "Reply | None"]


@dataclass
class _Armed:
    fault: Fault
    remaining: int | None


def _model_matches(pattern: str, record: RecordedRequest) -> bool:
    return matches(pattern, record.model_id, record.base_model_id)


class Controls:
    """Scripts, latency rules and faults, shared by the server threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[_Armed] = []
        self._latency: list[tuple[str, str, float]] = []
        self._queues: list[tuple[str, deque[Reply]]] = []
        self._responders: list[tuple[str, Responder]] = []

    def script(self, replies: Iterable[Reply] | Responder, model: str) -> None:
        """Queue replies, or set the responder, for models matching ``model``."""
        with self._lock:
            if callable(replies):
                self._responders = [(p, r) for p, r in self._responders if p != model] + [(model, replies)]
            else:
                self._queues.append((model, deque(replies)))

    def add_latency(self, seconds: float, model: str, operation: str) -> None:
        """Add a latency rule; the newest matching rule wins."""
        with self._lock:
            self._latency.append((model, operation, seconds))

    def add_fault(self, fault: Fault) -> None:
        """Arm a fault for its next ``times`` matching requests."""
        with self._lock:
            self._faults.append(_Armed(fault, fault.times))

    def clear(self) -> None:
        """Drop every script, latency rule and fault."""
        with self._lock:
            self._faults.clear()
            self._latency.clear()
            self._queues.clear()
            self._responders.clear()

    def take_fault(self, record: RecordedRequest) -> Fault | None:
        """The first armed fault matching the request, consumed; stream faults only match ConverseStream."""
        with self._lock:
            for armed in self._faults:
                fault = armed.fault
                if armed.remaining == 0 or not _model_matches(fault.model, record):
                    continue
                if not matches(fault.operation, record.operation):
                    continue
                if fault.kind.startswith("stream_") and record.operation != "ConverseStream":
                    continue
                if armed.remaining is not None:
                    armed.remaining -= 1
                return fault
        return None

    def latency_for(self, record: RecordedRequest) -> float:
        """Seconds to delay the answer to this request."""
        with self._lock:
            for model, operation, seconds in reversed(self._latency):
                if _model_matches(model, record) and matches(operation, record.operation):
                    return seconds
        return 0.0

    def next_reply(self, record: RecordedRequest) -> Reply | None:
        """The next queued reply for this model, else the responder's reply, else None (default echo)."""
        with self._lock:
            for pattern, queue in self._queues:
                if queue and _model_matches(pattern, record):
                    return queue.popleft()
            responder = next((r for p, r in reversed(self._responders) if _model_matches(p, record)), None)
        return responder(record) if responder is not None else None  # outside the lock: it may be slow
