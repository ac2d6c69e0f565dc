"""Errors the CLI turns into one line on stderr and exit code 2."""


class ConfigError(ValueError):
    """Bad user input: an unknown name, a value out of range, an unsupported combination."""


class Diverged(RuntimeError):
    """The objective, a gradient or a probe estimate became NaN or infinite."""

    def __init__(self, step: int, what: str) -> None:
        super().__init__(f"{what} is not finite at step {step}")
        self.step = step
