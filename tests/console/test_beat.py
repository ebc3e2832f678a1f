"""Beat's scheduler: the sweep goes out every second, and beat sleeps in between."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from console.celery import PunctualScheduler, app


class RecordingScheduler(PunctualScheduler):
    """Records what it would send instead of publishing it (the test is about timing)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.applied: list[str] = []
        super().__init__(*args, **kwargs)

    def apply_entry(self, entry: Any, producer: Any = None) -> None:
        self.applied.append(entry.name)


def run_beat(scheduler: PunctualScheduler, seconds: float) -> int:
    """Beat's own loop (``celery.beat.Service.start``) for ``seconds``; how many ticks it took."""
    ticks = 0
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        interval = scheduler.tick()
        ticks += 1
        if interval and interval > 0:
            time.sleep(min(interval, left))
    return ticks


def test_beat_is_the_punctual_scheduler() -> None:
    assert app.conf.beat_scheduler == "console.celery:PunctualScheduler"


def test_it_sends_the_sweep_every_second_without_a_busy_wait(tmp_path: Path) -> None:
    scheduler = RecordingScheduler(app, schedule_filename=str(tmp_path / "beat"), lazy=False)
    try:
        ticks = run_beat(scheduler, 3.5)
    finally:
        scheduler.close()

    # Due a second after start and every second after that (three in 3.5 s when the machine
    # keeps up; one fewer if a busy CI machine delays beat by half a second).
    assert 2 <= scheduler.applied.count("sweep-propagation-outbox") <= 4
    # About two ticks a sweep (one that sends, one that sleeps until the next). Celery's own
    # scheduler ticks hundreds of times a second in the 10 ms before each run.
    assert ticks < 30
