r"""Decoupled straight-through Gumbel-softmax: one temperature for the sample, one for the backward.

With g Gumbel(0, 1) noise (bernoulli: logistic), forward temperature tau_f and backward
temperature tau_b (the ``temperature`` knob, the one the schedule sets):

.. math::
    z = \mathrm{hard}\big(\ell / \tau_f + g\big) \sim p(z \mid \ell / \tau_f), \qquad
    y = \mathrm{softmax}\big(\ell / \tau_b + g\big), \qquad
    \tilde z = z + y - \mathrm{sg}(y), \quad \hat g = \nabla_\phi f(\tilde z; \phi)

(bernoulli: sigmoid and the threshold at 0), one noise g for both. The temperatures divide
the logits, not the perturbed logits: [1] writes the Gumbel-softmax as softmax(l / tau + g)
(a footnote says so), so at tau_f = tau_b = tau the estimator is ST-GS on the logits l / tau
at temperature 1, and tau_f = tau_b = 1 is st_gumbel_softmax at temperature 1 draw for draw.
The sample comes from the tempered distribution softmax(l / tau_f) (sigmoid(l / tau_f)):
tau_f < 1 explores less, tau_f > 1 more, the "forward-pass stochasticity" of [1]. Where
tau_f != tau_b, y need not round to z.

Where this reading comes from. [1]'s abstracts (arXiv 2410.13331 v1 and v2) decouple the
forward temperature from the backward one; its method section and any code of the authors
were not found. The form above is the one a published review of v1 describes (the paper's
Gumbel-softmax softmax(l / tau + g), a separate backward sample with the same g, an
Algorithm 1); read as such, not from the paper's text. Were the forward the hard argmax of
softmax((l + g) / tau_f), tau_f would change nothing (an argmax does not move when its
scores are divided by tau_f > 0), so the forward temperature acts on the distribution
sampled, as above.

``value`` is f at z ~ p(z | l / tau_f): an estimate of L only at tau_f = 1; at other values
it estimates the objective of the tempered distribution, which the run records as a warning
in summary.json (``objective_note``). Biased (its gradient too, as ST-GS).
Cost: 1 evaluation of f.

References:
    [1] R. Shah, M. Yan, M. C. Mozer, D. Liu (2024). Improving discrete optimisation via
        decoupled straight-through Gumbel-softmax. arXiv:2410.13331.
    [2] E. Jang, S. Gu, B. Poole (2017). Categorical reparameterization with Gumbel-softmax.
"""
from __future__ import annotations

from torch import Tensor

from estimators.base import check_temperature
from estimators.registry import register
from estimators.st_gumbel_softmax import StraightThroughGumbelSoftmax
from primitives.families import soft
from primitives.sampling import gumbel_noise, logistic_noise, one_hot_argmax


def check_forward_temperature(value: float) -> float:
    """``value`` as a float, or a ValueError naming the knob if it is not a positive number."""
    try:
        return check_temperature(value)
    except ValueError as error:
        raise ValueError(f"decoupled_st forward_{error}") from None


@register("decoupled_st")
class DecoupledStraightThroughGumbelSoftmax(StraightThroughGumbelSoftmax):
    def __init__(self, temperature: float = 1.0, forward_temperature: float = 1.0) -> None:
        super().__init__(temperature)
        self.forward_temperature = check_forward_temperature(forward_temperature)

    def objective_note(self) -> str | None:
        if self.forward_temperature == 1:
            return None
        return (f"decoupled_st samples p(z | logits / {self.forward_temperature:g}), so train.csv's objective "
                "estimates the tempered distribution's, not L")

    def sample(self, logits: Tensor, family: str) -> Tensor:
        noise = (logistic_noise if family == "bernoulli" else gumbel_noise)((1,) + logits.shape, logits)
        forward = logits.detach() / self.forward_temperature + noise  # [1, *B, D(, K)]
        z = (forward > 0).to(logits.dtype) if family == "bernoulli" else one_hot_argmax(forward)
        y = soft(logits / self.temperature + noise, family, 1.0)
        return z + (y - y.detach())  # exactly the hard values forward

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, forward_temperature={self.forward_temperature}"
