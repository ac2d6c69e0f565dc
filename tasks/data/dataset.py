r"""One split of a binarized image data set, and its batches.

Images are stored as grey levels x in [0, 1], float32, flattened row-major to
[N, P] (P = height x width); a model sees binary images, drawn in one of two ways:

- ``dynamic``: each pixel a fresh Bernoulli(x) draw every time it is used, so each pass
  over the data sees new binary images (the "stochastically binarized" MNIST of
  Burda et al. [1], Tucker et al. [2] and Grathwohl et al. [3]);
- ``threshold``: pixel = 1 where x > 0.5, the same images every pass.

``train_mean`` is the per-pixel mean of the binary training images a model sees (the grey
levels for dynamic binarization, whose expectation they are; the thresholded images
otherwise): VAEs set their decoder's output bias to its logit [1].

References:
    [1] Y. Burda, R. Grosse, R. Salakhutdinov (2016). Importance weighted autoencoders.
    [2] G. Tucker et al. (2017). REBAR: low-variance, unbiased gradient estimates for
        discrete latent variable models.
    [3] W. Grathwohl et al. (2018). Backpropagation through the void: optimizing control
        variates for black-box gradient estimation.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import Tensor

BINARIZATIONS = ("dynamic", "threshold")


@dataclass(frozen=True)
class Dataset:
    """One split (train, valid or test) of a named data set.

    Attributes:
        name: the data set's name (``digits``, ``fashion_mnist``, ...).
        split: ``train``, ``valid`` or ``test``.
        images: [N, P] float32 grey levels in [0, 1].
        shape: (height, width) of one image; P = height * width.
        binarize: ``dynamic`` or ``threshold``.
        train_mean: [P] float32, the mean binary training image (see the module docstring).
    """

    name: str
    split: str
    images: Tensor
    shape: tuple[int, int]
    binarize: str
    train_mean: Tensor

    def __post_init__(self) -> None:
        if self.binarize not in BINARIZATIONS:
            raise ValueError(f"binarize must be one of {', '.join(BINARIZATIONS)}, got {self.binarize!r}")

    @property
    def pixels(self) -> int:
        return self.shape[0] * self.shape[1]

    def __len__(self) -> int:
        return self.images.shape[0]

    def binary(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Binary images [B, P] from grey levels [B, P], by this split's binarization.

        ``generator`` (on the images' device) drives the dynamic draws; None uses torch's
        global generator. Threshold binarization ignores it.
        """
        if self.binarize == "threshold":
            return (images > 0.5).to(images.dtype)
        return torch.bernoulli(images, generator=generator)

    def batches(self, batch_size: int, generator: torch.Generator | None = None, shuffle: bool = True) -> Iterator[Tensor]:
        """One pass over the split: binary batches [B, P], B = ``batch_size`` (the last may be smaller).

        With ``shuffle`` the order is a fresh permutation drawn from ``generator`` each
        pass; dynamic binarization draws fresh pixels each pass from the same generator,
        so a seeded generator makes every pass reproducible.
        """
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        n = len(self)
        device = self.images.device
        order = torch.randperm(n, generator=generator, device=device) if shuffle else torch.arange(n, device=device)
        for start in range(0, n, batch_size):
            yield self.binary(self.images.index_select(0, order[start : start + batch_size]), generator)  # [B, P]

    def to(self, device: torch.device | str) -> "Dataset":
        """This split with its tensors on ``device``."""
        return dataclasses.replace(self, images=self.images.to(device), train_mean=self.train_mean.to(device))
