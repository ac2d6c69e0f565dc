"""Every joint configuration of a latent: what exact gradients by enumeration sum over.

One function for the ``exact`` estimator and the VAEs' exact gradient, so that both count and
order the configurations the same way (the first latent varies fastest).
"""
from __future__ import annotations

import torch
from torch import Tensor

MAX_CONFIGURATIONS = 4096


def count(latent_shape: tuple[int, ...], family: str) -> int:
    """2^D (bernoulli, latent_shape (D,)) or K^D (categorical, latent_shape (D, K))."""
    dims, base = (latent_shape[-1], 2) if family == "bernoulli" else latent_shape[-2:]
    return base**dims


def check_count(latent_shape: tuple[int, ...], family: str, who: str, limit: int = MAX_CONFIGURATIONS) -> None:
    """A ValueError naming ``who`` and the count if the latent has more than ``limit`` configurations."""
    total = count(latent_shape, family)
    if total > limit:
        dims, base = (latent_shape[-1], 2) if family == "bernoulli" else latent_shape[-2:]
        symbol = "2^D" if family == "bernoulli" else "K^D"
        shown = f"{total}" if total < 10**12 else f"{float(total):.3g}"
        raise ValueError(
            f"{who} needs at most {limit} latent configurations per batch element; "
            f"this task has {symbol} = {base}^{dims} = {shown}"
        )


def configurations(
    latent_shape: tuple[int, ...], family: str, dtype: torch.dtype = torch.float32, device: torch.device | None = None
) -> Tensor:
    """Every joint configuration [C, D] (bits) or [C, D, K] (one-hot), C = count(...)."""
    dims, base = (latent_shape[-1], 2) if family == "bernoulli" else latent_shape[-2:]
    codes = torch.arange(base**dims, device=device).unsqueeze(-1)  # [C, 1]
    digits = codes // base ** torch.arange(dims, device=device) % base  # [C, D]
    if family == "bernoulli":
        return digits.to(dtype)
    return (digits.unsqueeze(-1) == torch.arange(base, device=device)).to(dtype)  # [C, D, K]
