"""The ground floor: what estimators, tasks, analysis and discograd share, importing none of them.

    families.py     the two families' math (sample, log_prob, relaxed sample, soft, harden)
    sampling.py     Gumbel and logistic noise, Gumbel-max, Gumbel-top-k, Perturb-and-MAP
    enumeration.py  every joint configuration of a latent (exact gradients by enumeration)
    registry.py     registries by name (``@register``) with errors that list the valid names
    io.py           atomic file writing
"""
