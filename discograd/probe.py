r"""The gradient probe: N independent gradient estimates of the task's estimand on a fixed batch.

The vectorized path maps ``torch.func.grad`` of the estimator's surrogate over a chunk of
draws with ``torch.func.vmap(..., randomness="different")``, so every draw has its own noise;
``functional_call`` swaps in the estimand's parameters. Estimators whose class says
``vmappable = False`` (or ``vectorize=False``) go through a plain loop of autograd calls.
Both paths draw from the same distribution (tests/test_probe.py checks it).
"""
from __future__ import annotations

import hashlib
import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap
from tqdm.auto import tqdm

from estimators import Estimator
from tasks import Task

log = logging.getLogger(__name__)
QUIET_SECONDS = 2.0  # off a terminal, a stream of draws that ends sooner logs nothing
LINE_SECONDS = 10.0  # then a progress line at most this often
LINE_FRACTION = 0.25  # and at most every this fraction of the draws


@dataclass(frozen=True)
class Cost:
    """What a stream of estimates cost."""

    evaluations: int  # evaluations of f per estimate
    seconds_per_estimate: float  # warm: the draws after the untimed first part
    warmup_seconds: float  # wall time of that first part (torch.func's tracing, caches)


@dataclass(frozen=True)
class Draws:
    """Estimates held in memory (for tests and for users who want them; the run's probe streams)."""

    estimates: np.ndarray  # [N, P], the estimand's gradients flattened in estimand() order
    evaluations: int
    seconds_per_estimate: float
    warmup_seconds: float


class Surrogate(nn.Module):
    """task + estimator as one module whose forward is the estimator's surrogate, so that
    functional_call can substitute the estimand (named ``task.<name>``)."""

    def __init__(self, task: Task, estimator: Estimator) -> None:
        super().__init__()
        self.task = task.parameters
        self.estimator = estimator
        self._task = task
        self.evaluations = 0

    def forward(self, batch: Any) -> Tensor:
        task = self._task
        logits = task.logits(batch)
        estimate = self.estimator(logits, task.bind(batch, logits), task.family)
        self.evaluations = estimate.evaluations  # a Python int cannot leave vmap as an output
        return estimate.surrogate


def flatten(grads: dict[str, Tensor], names: list[str]) -> np.ndarray:
    """[P]: the gradients of ``names`` flattened and concatenated, in that order."""
    return torch.cat([grads[n].reshape(-1) for n in names]).detach().cpu().numpy()


def _vectorized(module: Surrogate, params: dict[str, Tensor], batch: Any) -> Callable[[int], Tensor]:
    """draw(n) -> [n, P]: n estimates from one vmapped function."""
    draw = vmap(grad(lambda p, _: functional_call(module, p, (batch,))), in_dims=(None, 0), randomness="different")

    def estimates(size: int) -> Tensor:
        with torch.no_grad():  # no outer graph: torch.func.grad differentiates regardless
            grads = draw(params, torch.arange(size))
        return torch.cat([grads[key].reshape(size, -1) for key in params], 1)

    return estimates


def _loop(module: Surrogate, params: dict[str, Tensor], batch: Any) -> Callable[[int], Tensor]:
    """draw(n) -> [n, P]: one autograd call per row."""
    originals = dict(module.named_parameters())
    leaves = [originals[k] for k in params]

    def estimates(size: int) -> Tensor:
        rows = []
        for _ in range(size):
            grads = torch.autograd.grad(module(batch), leaves, allow_unused=True)
            rows.append(torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for p, g in zip(leaves, grads)]))
        return torch.stack(rows)

    return estimates


def warmup_size(samples: int, chunk: int, vectorized: bool) -> int:
    """Draws of the untimed first part: one loop draw, or a first vmapped chunk of about a
    tenth of the draws (it pays torch.func's one-time tracing; at least 1, leaving >= 1)."""
    return 1 if not vectorized else max(1, min(chunk, samples // 10))


def stream_seed(seed: int, step: int, label: str) -> int:
    """The seed of the probe's draws of ``label`` at ``step`` of the run seeded ``seed``: a
    stable 63-bit hash (hashlib, not hash(), which Python salts per process)."""
    digest = hashlib.blake2b(f"{seed}/{step}/{label}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


@contextmanager
def own_stream(seed: int, step: int, label: str, device: torch.device) -> Iterator[None]:
    """Random draws inside come from their own stream, seeded by ``stream_seed``; the global
    streams (cpu, and ``device``'s) are saved before and restored after (torch.random.fork_rng).

    So what a run trains does not depend on what or how much it probes (probe.samples, the
    basket, probe.every), one estimator's probe does not depend on which others are probed
    beside it, and a probe is reproducible from (seed, step, label) alone."""
    accelerator = [device] if device.type != "cpu" else []
    kind = device.type if accelerator else "cuda"  # fork_rng's default kind; unused with no devices
    with torch.random.fork_rng(devices=accelerator, device_type=kind):
        torch.manual_seed(stream_seed(seed, step, label))
        yield


def dims(task: Task) -> int:
    """P: the number of coordinates of one estimate (the estimand's parameters)."""
    return sum(p.numel() for p in task.estimand().values())


def duration(seconds: float) -> str:
    """``seconds`` for a log line: 8.2 s, 14 min 5 s, 3 h 20 min."""
    if seconds < 60:
        return f"{seconds:.2g} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


class Progress:
    """The progress of a stream of ``total`` draws: tqdm's bar on a terminal. Off one (the bar
    disabled, or ``disable=True``), log lines, and only for a stream still running after
    QUIET_SECONDS: a first line then, one more whenever LINE_SECONDS and LINE_FRACTION of the
    draws have both passed since the last (draws done, rate, ETA), and a last line with the
    total time. ``clock`` (seconds) is for tests."""

    def __init__(self, total: int, desc: str, disable: bool | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:  # fmt: skip
        self.bar = tqdm(total=total, desc=desc, leave=False, disable=disable)
        self.total, self.desc, self.clock = total, desc, clock
        self.done, self.start = 0, clock()
        self.last: tuple[float, int] | None = None  # (clock, draws done) at the last line, if any

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()
        seconds = self.clock() - self.start
        if self.bar.disable and exc[0] is None and seconds >= QUIET_SECONDS:
            rate = self.done / seconds
            log.info("%s: %d draws in %s (%.3g/s)", self.desc, self.done, duration(seconds), rate)

    def update(self, size: int) -> None:
        self.bar.update(size)
        self.done += size
        now = self.clock()
        if not self.bar.disable or self.done >= self.total or now - self.start < QUIET_SECONDS:
            return  # a bar, the last chunk (the last line says it), or too soon to say anything
        if self.last is not None:
            seconds, draws = now - self.last[0], self.done - self.last[1]
            if seconds < LINE_SECONDS or draws < LINE_FRACTION * self.total:
                return
        rate = self.done / (now - self.start)
        eta = duration((self.total - self.done) / rate)
        share = 100 * self.done / self.total
        log.info("%s: %d/%d draws (%.0f%%), %.3g/s, ETA %s",
                 self.desc, self.done, self.total, share, rate, eta)  # fmt: skip
        self.last = (now, self.done)


def stream_estimates(
    task: Task,
    estimator: Estimator,
    batch: Any,
    samples: int,
    consume: Callable[[Tensor], None],
    chunk: int = 1000,
    vectorize: bool = True,
    desc: str = "probe",
) -> Cost:
    """``samples`` independent estimates of the gradient of the task's estimand, handed to
    ``consume`` chunk by chunk ([n, P] tensors on the task's device, n <= chunk); nothing is kept.

    The estimator runs in eval mode (no baseline or other state is updated); the task's
    parameters are not changed. The first ``warmup_size`` draws are timed apart
    (``warmup_seconds``), so ``seconds_per_estimate`` is the warm rate; ``consume``'s own time
    is not counted, nor is the progress it shows (``Progress``).
    """
    module = Surrogate(task, estimator)
    params = {f"task.{name}": p.detach() for name, p in task.estimand().items()}
    chunk = min(chunk, task.probe_chunk)
    was_training = estimator.training
    estimator.eval()
    use_vmap = vectorize and estimator.vmappable
    cuda = next(iter(params.values())).is_cuda
    warm = min(warmup_size(samples, chunk, use_vmap), samples - 1) if samples > 1 else samples
    draw = (_vectorized if use_vmap else _loop)(module, params, batch)
    timed = [0.0, 0.0]  # seconds of the warm-up part, of the rest

    def part(start: int, stop: int, which: int, progress: Progress) -> None:
        for first in range(start, stop, chunk):
            size = min(chunk, stop - first)
            began = time.perf_counter()
            out = draw(size)
            if cuda:  # the kernels are asynchronous: time them, not their launch
                torch.cuda.synchronize()
            timed[which] += time.perf_counter() - began
            consume(out)
            progress.update(size)

    try:
        with Progress(samples, f"{desc} ({estimator.label()})") as progress:
            part(0, warm, 0, progress)
            part(warm, samples, 1, progress)
    finally:
        estimator.train(was_training)
    rate = timed[1] / (samples - warm) if samples > warm else timed[0] / samples
    return Cost(module.evaluations, rate, timed[0])


def draw_estimates(
    task: Task, estimator: Estimator, batch: Any, samples: int, chunk: int = 1000, vectorize: bool = True, desc: str = "probe"
) -> Draws:
    """``stream_estimates`` collected into one [N, P] array (memory N x P: for tests and small
    probes; the run's probe streams into analysis.moments instead)."""
    first = next(iter(task.estimand().values()))
    out = torch.empty(samples, dims(task), dtype=first.dtype, device=first.device)
    filled = [0]

    def keep(rows: Tensor) -> None:
        out[filled[0] : filled[0] + rows.shape[0]] = rows
        filled[0] += rows.shape[0]

    cost = stream_estimates(task, estimator, batch, samples, keep, chunk, vectorize, desc)
    return Draws(out.cpu().numpy(), cost.evaluations, cost.seconds_per_estimate, cost.warmup_seconds)
