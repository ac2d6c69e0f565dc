r"""The estimator contract, written once.

An estimator turns logits and an objective f into a gradient estimate of

.. math:: L(\phi) = \frac{1}{|B|} \sum_{b \in B} \mathbb{E}_{z \sim p(z \mid \mathrm{logits}_b(\phi))}[f(z; \phi)_b]

Shapes:
    bernoulli    logits [*B, D],    samples [S, *B, D] in {0, 1}
    categorical  logits [*B, D, K], samples [S, *B, D, K], one-hot over K
    sequence     a policy (primitives/sequences.py) in place of logits, samples [S, L, K]
                 one-hot tokens (no batch axes)
    f            [S, *B, ...] -> [S, *B]   (S is the leading sample axis)

Sequences. The task hands the estimator its autoregressive policy (``start``, ``next_logits``,
``advance``) instead of a logits tensor, and ``family`` is ``"sequence"``. Local estimators
(estimators/local.py: straight-through, relaxations) act per token inside the decoding loop,
the token they emit feeding the next step; score-function estimators act on whole sequences
through ``primitives.families.sample`` / ``log_prob``, which take the policy for this family
(ancestral sampling, teacher-forced log-probability); the unordered-set estimator draws its
sequences by stochastic beam search. An estimator lists ``"sequence"`` in ``families`` only
if it acts on sequences; the others are refused before work, as for any family they lack.

``forward(logits, f, family)`` returns an :class:`Estimate`: ``surrogate`` is a scalar whose
backward gives the estimate for every parameter upstream of logits and inside f; ``value``
is the detached estimate of L; ``evaluations`` counts the samples f was run on;
``control_loss`` (estimators with learned parts, training mode only) is what those parts
minimize, e.g. the squared norm of the estimate.

Capabilities are attributes that callers check: ``families`` (``sequence`` among them for an
estimator that acts on autoregressive sequences, where ``logits`` is a policy:
primitives/sequences.py), ``unbiased``, ``vmappable`` (False sends the gradient probe to its
loop path), ``relaxed_value``, ``pathwise`` (the estimate uses f's derivative in z, so f must
be defined and differentiable on relaxed values: a task whose ``relaxable`` is False is
refused), ``learns_temperature`` and ``name`` (set by ``@register``).

Knobs and state. Knobs are constructor arguments (the estimator's Hydra node); they are frozen
and are the estimator's identity. State is what changes during a run: the temperature and
learned parameters. The run loop is its one writer: it sets the temperature through
:meth:`Estimator.set_temperature` from the temperature schedule before every probe and every
training step (starting from the estimator's own ``temperature`` knob), except for an
estimator that ``learns_temperature``; and it steps learned parameters with an optimizer it
builds (learning rate ``control_lr``) from ``Estimate.control_loss``. An estimator builds
every part in its constructor (one that needs the latent's shape takes ``latent_shape``) and
never steps an optimizer itself.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar

from torch import Tensor, nn

from primitives.families import FAMILIES, batch_shape, check_family
from primitives.registry import Named

Objective = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class Estimate:
    surrogate: Tensor  # scalar; its gradient is the estimate
    value: Tensor  # scalar, detached estimate of the objective
    evaluations: int  # samples f was evaluated on
    control_loss: Tensor | None = None  # scalar the learned parameters minimize; None: nothing to learn now


def check_temperature(value: float) -> float:
    """``value`` as a float, or a ValueError if it is not a positive number."""
    try:
        tau = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"temperature must be a positive number, got {value!r}") from None
    if not tau > 0:
        raise ValueError(f"temperature must be > 0, got {value!r}")
    return tau


def check_count(name: str, value: int, minimum: int) -> int:
    """``value`` as an int, or a ValueError naming the knob if it is below ``minimum``."""
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class Estimator(Named, nn.Module):
    """Base class: holds the capabilities and the shape checks shared by all estimators.
    ``name`` is the registry name ("" for an unregistered estimator, see ``label()``)."""

    families: ClassVar[frozenset[str]] = frozenset(FAMILIES)
    unbiased: ClassVar[bool] = False
    vmappable: ClassVar[bool] = True
    relaxed_value: ClassVar[bool] = False  # True: ``value`` is f at a relaxed sample, not at hard samples
    pathwise: ClassVar[bool] = False  # True: differentiates f in z (needs a task whose f is relaxable)
    learns_temperature: bool = False  # True: training sets the temperature; no schedule may
    control_lr: float | None = None  # learning rate of the learned parameters; None: none are learned
    temperature: float | None = None

    def set_temperature(self, value: float) -> None:
        """The one setter the run loop's temperature schedule uses."""
        if self.temperature is None:
            raise TypeError(f"estimator {self.label()!r} has no temperature")
        if self.learns_temperature:
            raise TypeError(f"estimator {self.label()!r} learns its temperature; a schedule may not set it")
        self.temperature = check_temperature(value)

    def objective_note(self) -> str | None:
        """Why ``Estimate.value`` is not an estimate of L (train.csv's objective), or None; the
        run records it as a warning in summary.json (decoupled_st at a forward temperature != 1)."""
        return None

    def learned_values(self) -> dict[str, float]:
        """The learned scalars a run records (stats.csv and train.csv columns learned_temperature,
        eta, alpha, beta: analysis.schema.LEARNED); {} for an estimator that learns nothing."""
        return {}

    def check_input(self, logits: Tensor, family: str) -> None:
        """Reject a family this estimator does not support, and logits of the wrong rank."""
        check_family(family)
        if family not in self.families:
            raise ValueError(
                f"estimator {self.label()!r} supports {', '.join(sorted(self.families))}, not {family}"
            )
        batch_shape(logits, family)

    @staticmethod
    def evaluate(f: Objective, z: Tensor, logits: Tensor, family: str) -> Tensor:
        """f(z), checked to be one value per sample and batch element: [S, *B]."""
        values = f(z)
        expected = z.shape[:1] + batch_shape(logits, family)
        if values.shape != expected:
            raise ValueError(
                f"f must map samples {tuple(z.shape)} to values {tuple(expected)}, got {tuple(values.shape)}"
            )
        return values

    def extra_repr(self) -> str:
        return "" if self.temperature is None else f"temperature={self.temperature}"
