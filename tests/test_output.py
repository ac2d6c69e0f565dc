"""What a run prints when its output is not a terminal (a log file, CI, a sweep's stdout):

- a step line at step 0, at the first logged step at or past each ``progress_every`` of the
  steps, and at the last, while train.csv keeps every ``log_every`` row (discograd/run.py);
- a probe that runs long logs its progress (draws done, rate, ETA) and its total time, one
  that ends within QUIET_SECONDS logs nothing (discograd/probe.py ``Progress``).

The CLI runs as subprocesses (their stdout and stderr are pipes, so tqdm's bars are off);
the line schedule is checked in-process with a fake clock and a bar forced off.
"""
from __future__ import annotations

import logging
import re

import pytest

from discograd import run as run_module
from discograd.config import check_knobs
from discograd.errors import ConfigError
from discograd.probe import QUIET_SECONDS, Progress, duration
from discograd.run import run
from test_cli import in_parallel, read_csv
from test_run import config

STEP_LINE = re.compile(r"\bstep (\d+)/\d+: ")  # discograd/run.py's "step S/N: metrics"
# a 2000-coordinate toy probed 70000 times: 3 to 6 s of draws on the shared 2-core machine
SLOW_PROBE = ["task=toy_quadratic", "task.dims=2000", "probe.samples=70000", "steps=0"]


def step_lines(text: str) -> list[int]:
    return [int(m.group(1)) for m in map(STEP_LINE.search, text.splitlines()) if m]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 200-step run logging every step, and a run whose one probe takes seconds."""
    tmp = tmp_path_factory.mktemp("output")
    steps = ["steps=200", "log_every=1", "probe.every=0", f"hydra.run.dir={tmp / 'steps'}"]
    slow = [*SLOW_PROBE, f"hydra.run.dir={tmp / 'slow'}"]
    quick, long = in_parallel((steps, tmp), (slow, tmp))
    assert quick.rc == 0, str(quick)
    assert long.rc == 0, str(long)
    return {"steps": (quick, tmp / "steps"), "slow": (long, tmp / "slow")}


def test_a_run_prints_a_step_line_every_tenth_of_its_steps(runs):
    result, run_dir = runs["steps"]
    assert step_lines(result.output) == list(range(0, 201, 20)), str(result)
    assert len(read_csv(run_dir / "train.csv")[1]) == 201  # the file keeps every logged step
    assert "[discograd.probe]" not in result.output, str(result)  # quick probes: no progress lines


def test_a_long_probe_logs_its_progress_and_total_time(runs):
    result, _ = runs["slow"]
    desc = r"\[discograd\.probe\]\[INFO\] - probe step 0 \(reinforce\): "
    progress = desc + r"\d+/70000 draws \(\d+%\), \S+/s, ETA \d.* s$"
    assert re.search(progress, result.output, re.M), str(result)
    assert re.search(desc + r"70000 draws in \d.* s \(\S+/s\)$", result.output, re.M), str(result)


def logged_steps(tmp_path, monkeypatch, caplog, *overrides: str) -> list[int]:
    """The steps of the step lines of an in-process run with the bar off (as off a terminal)."""
    bar = run_module.tqdm
    monkeypatch.setattr(run_module, "tqdm", lambda **kwargs: bar(**{**kwargs, "disable": True}))
    with caplog.at_level(logging.INFO, logger="discograd.run"):
        run(config("probe.every=0", *overrides), tmp_path)
    messages = [r.getMessage() for r in caplog.records if r.name == run_module.log.name]
    return step_lines("\n".join(messages))


@pytest.mark.parametrize(
    "overrides, expected",
    [
        # marks every ceil(0.25 x 95) = 24 steps; logged steps 0, 10, ..., 90, 95
        (["steps=95", "log_every=10", "progress_every=0.25"], [0, 30, 50, 80, 95]),
        # 0.1 x 30 is 3.0000000000000004 in floats: still every 3 steps
        (["steps=30", "log_every=1", "progress_every=0.1"], list(range(0, 31, 3))),
        (["steps=7", "log_every=1", "progress_every=0.1"], list(range(8))),
        (["steps=50", "log_every=5", "progress_every=1"], [0, 50]),
    ],
    ids=["coarse-log", "float-marks", "few-steps", "ends-only"],
)
def test_step_lines_follow_progress_every(tmp_path, monkeypatch, caplog, overrides, expected):
    assert logged_steps(tmp_path, monkeypatch, caplog, *overrides) == expected
    steps, log_every = (int(o.split("=")[1]) for o in overrides[:2])
    assert len(read_csv(tmp_path / "train.csv")[1]) == len(range(0, steps, log_every)) + 1


@pytest.mark.parametrize("value", ["0", "1.5", "-0.1", "true", "'often'"])
def test_progress_every_must_be_a_fraction(value):
    message = r"progress_every must be a fraction of the steps in \(0, 1\], got"
    with pytest.raises(ConfigError, match=message):
        check_knobs(config(f"progress_every={value}"))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def progress_lines(caplog, total: int, chunk: int, seconds_per_chunk: float) -> list[str]:
    """The log lines of a stream of ``total`` draws in chunks taking ``seconds_per_chunk`` each."""
    clock = Clock()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="discograd.probe"):
        with Progress(total, "probe step 5 (st)", disable=True, clock=clock) as progress:
            for _ in range(0, total, chunk):
                clock.now += seconds_per_chunk
                progress.update(chunk)
    return [r.getMessage() for r in caplog.records if r.name == "discograd.probe"]


def test_a_quick_stream_logs_nothing(caplog):
    assert progress_lines(caplog, 100_000, 1000, QUIET_SECONDS / 101) == []  # under QUIET_SECONDS


def test_a_long_stream_logs_at_most_every_10_s_and_every_quarter(caplog):
    """100 s of draws, 1 s per chunk of 10: a first line at 2 s, then one when 10 s and 25%
    have both passed since the last (every 25 s here: the quarters are the rarer), a last line."""
    lines = progress_lines(caplog, 1000, 10, 1.0)
    assert lines == [
        "probe step 5 (st): 20/1000 draws (2%), 10/s, ETA 1 min 38 s",
        "probe step 5 (st): 270/1000 draws (27%), 10/s, ETA 1 min 13 s",
        "probe step 5 (st): 520/1000 draws (52%), 10/s, ETA 48 s",
        "probe step 5 (st): 770/1000 draws (77%), 10/s, ETA 23 s",
        "probe step 5 (st): 1000 draws in 1 min 40 s (10/s)",
    ]
    # 20 s of draws, 0.5 s per chunk of 1 of 40: now 10 s is the rarer (a quarter is 5 s)
    assert progress_lines(caplog, 40, 1, 0.5) == [
        "probe step 5 (st): 4/40 draws (10%), 2/s, ETA 18 s",
        "probe step 5 (st): 24/40 draws (60%), 2/s, ETA 8 s",
        "probe step 5 (st): 40 draws in 20 s (2/s)",
    ]


def test_duration_reads_well():
    seconds = (0.5, 8.24, 42.4, 845, 12_000)
    assert [duration(s) for s in seconds] == ["0.5 s", "8.2 s", "42 s", "14 min 5 s", "3 h 20 min"]
