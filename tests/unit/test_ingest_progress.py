"""The ingest progress display: totals known or shown as unknown, an ETA for the whole job, the running stage.

Was: the caption/embed and write bars set their total to what was done so far (N/N: looked finished), and once
parsing ended every bar looked complete and the ETA vanished while OCR ran for minutes (issue 25, item 3).
"""

from __future__ import annotations

from mmrag._cli_render import JobProgress


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_model_and_write_totals_are_unknown_until_every_source_is_parsed() -> None:
    job = JobProgress(_Clock())
    job.update("sources", 0, 10)
    job.update("sources", 1, None)
    job.update("planned", 16, None)
    job.update("models", 16, None)
    job.update("write", 16, None)
    assert job.total("sources") == 10
    assert job.total("models") is None and job.total("write") is None  # not 16/16: more sources are coming
    for _ in range(9):
        job.update("sources", 1, None)
    job.update("planned", 30, None)
    assert job.total("models") == 46 and job.total("write") == 46  # known now: every source is parsed
    assert job.done["models"] == 16


def test_the_running_stage_is_visible_after_parsing_ends() -> None:
    job = JobProgress(_Clock())
    job.update("sources", 0, 2)
    assert job.running() == ["sources"]
    job.update("sources", 2, None)
    job.update("planned", 40, None)
    job.update("models", 10, None)
    assert job.running() == ["models"]  # OCR still going: not "all done"
    job.update("models", 30, None)
    job.update("write", 40, None)
    assert job.running() == []


def test_the_eta_covers_the_whole_job_and_does_not_vanish_when_parsing_ends() -> None:
    clock = _Clock()
    job = JobProgress(clock)
    job.update("sources", 0, 10)
    assert job.eta() is None  # nothing to go on yet
    clock.now = 10.0
    job.update("sources", 2, None)  # parse: 5 s a source, 8 left -> 40 s
    job.update("planned", 20, None)  # projected over 10 sources: 100 elements
    job.update("models", 0, None)
    clock.now = 12.0
    job.update("models", 2, None)  # first model tick at 12 s
    clock.now = 22.0
    job.update("models", 10, None)  # 10 more in 10 s -> ~1 a second from the first tick
    eta = job.eta()
    assert eta is not None and eta > 40  # the model stage, not parsing, decides: ~88 elements left
    # Parsing ends; the model stage still has work: the ETA stays, and it is the model stage's.
    job.update("sources", 8, None)
    job.update("planned", 80, None)
    clock.now = 30.0
    left = job.eta()
    assert left is not None and left > 0
    job.update("models", 88, None)
    assert job.eta() == 0.0
