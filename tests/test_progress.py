"""Progress in a log file: lines, the first at once, then at most one every 30 s."""

from __future__ import annotations

import io

import pytest

from fer_pipeline.progress import ProgressLines, clock, track


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_lines_come_at_once_then_at_most_every_30_s_and_at_the_end():
    out, now = io.StringIO(), Clock()
    lines = ProgressLines("crop", total=100, unit="images", stream=out, now=now)
    now.t += 2
    lines.update(10)  # the first: at once
    for _ in range(5):
        now.t += 5
        lines.update(10)  # 27 s since the first line: none
    now.t += 5
    lines.update(10, suffix=lambda: "; loss 1.2")  # 32 s: one
    now.t += 1
    lines.update(30)  # the total: one
    lines.close()  # finished: nothing more
    assert out.getvalue().splitlines() == [
        "crop: 10/100 images (10 %), 5.0 images/s, elapsed 0:02, ETA 0:18",
        "crop: 70/100 images (70 %), 2.2 images/s, elapsed 0:32, ETA 0:14; loss 1.2",
        "crop: 100/100 images (100 %), 3.0 images/s, elapsed 0:33, ETA 0:00",
    ]


def test_the_end_is_printed_and_a_task_short_of_its_total_says_it_stopped():
    out, now = io.StringIO(), Clock()
    with ProgressLines("predict", unit="images", stream=out, now=now) as lines:  # no total
        now.t += 4
        lines.update(2)
        now.t += 1
        lines.update(3)
    with ProgressLines("crop", total=10, unit="images", stream=out, now=now) as lines:
        lines.update(4)
        now.t += 2
        lines.update(2)
    assert out.getvalue().splitlines() == [
        "predict: 2 images, 0.5 images/s, elapsed 0:04",
        "predict: 5 images, 1.0 images/s, elapsed 0:05",
        "crop: 4/10 images (40 %), 0.0 images/s, elapsed 0:00",
        "crop: 6/10 images (60 %), 3.0 images/s, elapsed 0:02, ETA 0:01 (stopped)",
    ]


def test_track_yields_every_item_and_reports_in_a_log(capsys):
    assert list(track(range(3), "evaluate: bootstrap", unit="steps")) == [0, 1, 2]
    out = capsys.readouterr().out.splitlines()  # pytest's capture is no terminal
    assert out[0].startswith("evaluate: bootstrap: 1/3 steps (33 %)")
    assert out[-1].startswith("evaluate: bootstrap: 3/3 steps (100 %)")


@pytest.mark.parametrize("seconds, text", [(0, "0:00"), (65.4, "1:05"), (3725, "1:02:05")])
def test_clock(seconds, text):
    assert clock(seconds) == text
