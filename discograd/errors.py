"""The errors a run ends with: ConfigError (exit 2), Diverged (exit 3), Interrupted (130/143)."""
import signal


class ConfigError(ValueError):
    """Bad user input: an unknown name, a value out of range, an unsupported combination."""


class Diverged(RuntimeError):
    """The objective, a gradient or a probe estimate became NaN or infinite."""

    def __init__(self, step: int, what: str) -> None:
        super().__init__(f"{what} is not finite at step {step}")
        self.step = step


class Interrupted(Exception):
    """The run was stopped from outside (Ctrl-C, SIGTERM, a scheduler's time limit) at ``step``
    (None: before the first step) by ``stop``, the KeyboardInterrupt or SystemExit (the CLI
    turns SIGTERM into SystemExit(128 + 15)), to be raised again once the run is recorded."""

    def __init__(self, step: int | None, stop: BaseException) -> None:
        if isinstance(stop, KeyboardInterrupt):
            what = "Ctrl-C (SIGINT)"
        elif isinstance(stop.code, int) and stop.code > 128:
            what = signal.Signals(stop.code - 128).name
        else:
            what = f"exit {stop.code}"
        where = "before the first step" if step is None else f"at step {step}"
        super().__init__(f"interrupted by {what} {where}")
        self.step, self.stop = step, stop
