r"""Where each data set comes from, how it is split, and ``load``.

==============  =======  ================================  ==================================================
name            image    train / valid / test              source
==============  =======  ================================  ==================================================
digits          8 x 8    1300 / 200 / 297                  scikit-learn's bundled copy of the UCI digits [1]
                         (a fixed permutation of 1797)     (grey levels 0..16, scaled by 1/16): no download
fashion_mnist   28 x 28  first 50,000 / last 10,000 of     Debian's dataset-fashion-mnist, or downloaded from
                         the 60,000 training images /      the publisher [2] (MD5s as published)
                         the 10,000 test images
mnist           28 x 28  as fashion_mnist                  downloaded from the mirror torchvision uses [3]
                                                           (MD5s as torchvision's)
omniglot        28 x 28  23,000 / 1,345 / 8,070            Burda et al.'s chardata.mat [4], downloaded from
                         (the IWAE code's split)           the IWAE repository (no published checksum: its
                                                           structure is checked instead)
==============  =======  ================================  ==================================================

The 50,000 / 10,000 split of the training file is the papers' (REBAR [5], RELAX [6]);
omniglot's is the IWAE code's: the 24,345 training images permuted by
``numpy.random.RandomState(123)``, the last 1,345 held out. numpy's RandomState streams
are frozen, so these permutations are the same on every numpy. Labels are not read: the
VAEs model images only.

Files are looked for in the data home's ``NAME/`` folder (the ``root`` argument, else
$DISCOGRAD_DATA, else $XDG_CACHE_HOME/discograd, i.e. ~/.cache/discograd), then in the
folders a system package installs them into (/usr/share/datasets/fashion-mnist for
Debian's dataset-fashion-mnist). A folder is used only when it holds every file of the
data set; a ``.gz`` file may also be there unpacked, under its name without ``.gz``.
Otherwise, with ``download=True``, the missing files are downloaded (download.py) into the
data home's ``NAME/`` folder, each from the first mirror that answers; if none does, the
error is one line saying where it looked and how to get the files by hand.

References:
    [1] E. Alpaydin, C. Kaynak (1998). Optical recognition of handwritten digits, UCI.
    [2] H. Xiao, K. Rasul, R. Vollgraf (2017). Fashion-MNIST: a novel image dataset for
        benchmarking machine learning algorithms. github.com/zalandoresearch/fashion-mnist
    [3] Y. LeCun, C. Cortes, C. J. C. Burges. The MNIST database of handwritten digits;
        torchvision.datasets.MNIST for the mirror and checksums.
    [4] Y. Burda, R. Grosse, R. Salakhutdinov (2016). Importance weighted autoencoders.
        github.com/yburda/iwae (datasets.py, datasets/OMNIGLOT/chardata.mat)
    [5] G. Tucker et al. (2017). REBAR.  [6] W. Grathwohl et al. (2018). RELAX.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Protocol

import numpy as np
import scipy.io
import torch

from tasks.data.dataset import BINARIZATIONS, Dataset
from tasks.data.download import download as fetch
from tasks.data.errors import DataError, DownloadError
from tasks.data.idx import read_idx

HOME_VARIABLE = "DISCOGRAD_DATA"
SPLITS = ("train", "valid", "test")


def data_home(root: str | Path | None = None) -> Path:
    """The folder holding one ``NAME/`` folder per data set: ``root``, $DISCOGRAD_DATA, or the user cache."""
    if root is not None:
        return Path(root).expanduser()
    if os.environ.get(HOME_VARIABLE):
        return Path(os.environ[HOME_VARIABLE]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "discograd"


class Source(Protocol):
    """A data set: its image shape and its splits as [N, P] float32 grey levels in [0, 1]."""

    name: str
    shape: tuple[int, int]

    def arrays(self, home: Path, download: bool) -> dict[str, np.ndarray]: ...


def _present(folder: Path, file: str) -> Path | None:
    """``folder/file``, or its unpacked twin without ``.gz``, if either exists."""
    for candidate in (folder / file, folder / file.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


@dataclass(frozen=True, kw_only=True)
class Files:
    """The files of a data set and where to find or fetch them.

    Attributes:
        name: the data set, also its folder's name under the data home.
        files: file name -> published checksum ``"ALGORITHM:HEX"``, or None where the
            publisher gives none (then ``check`` must reject a wrong file).
        mirrors: base URLs tried in order (the file name is appended).
        system: folders a system package installs the files into, and that package.
    """

    name: str
    files: Mapping[str, str | None]
    mirrors: tuple[str, ...]
    system: tuple[str, ...] = ()
    package: str = ""

    def check(self, path: Path) -> None:
        """Raise DataError if the downloaded ``path`` is not this data set's file (default: accept)."""

    def paths(self, home: Path, download: bool) -> dict[str, Path]:
        """file name -> the path holding it, found or downloaded."""
        folders = [home / self.name, *map(Path, self.system)]
        for folder in folders:
            found = {file: _present(folder, file) for file in self.files}
            if all(found.values()):
                return found
        if not download:
            raise DataError(self._missing(folders, "download=false"))
        return {file: _present(folders[0], file) or self._download(file, folders) for file in self.files}

    def _download(self, file: str, folders: list[Path]) -> Path:
        failures = []
        for mirror in self.mirrors:
            try:
                return fetch(mirror + file, folders[0] / file, self.files[file], validate=self.check)
            except DownloadError as error:
                failures.append(f"{error.url}: {error.reason}")
        raise DataError(self._missing(folders, "the download failed: " + "; ".join(failures)))

    def _missing(self, folders: list[Path], why: str) -> str:
        """The one-line error: what is missing, where it was looked for, and how to get it."""
        where = ", ".join(str(folder) for folder in folders)
        files = ", ".join(self.files)
        fetch = f"download {' '.join(self.mirrors[0] + file for file in self.files)}" if self.mirrors else f"put {files}"
        package = f"install it with `apt-get install {self.package}`, or " if self.package else ""
        return (
            f"{self.name}: {files} not found in {where} ({why}); to get it, {package}"
            f"{fetch} into {folders[0]} (or set ${HOME_VARIABLE} to a folder holding {self.name}/)"
        )


@dataclass(frozen=True, kw_only=True)
class IDX(Files):
    """A data set published as MNIST is: a training and a test IDX file of uint8 images [N, H, W]."""

    shape: tuple[int, int] = (28, 28)
    valid: int = 10_000

    def arrays(self, home: Path, download: bool) -> dict[str, np.ndarray]:
        train_file, test_file = self.files  # in this order
        paths = self.paths(home, download)
        train, test = (self._images(paths[file]) for file in (train_file, test_file))
        if len(train) <= self.valid:
            raise DataError(f"{paths[train_file]}: {len(train)} training images, need more than the {self.valid} held out")
        return {"train": train[: -self.valid], "valid": train[-self.valid :], "test": test}

    def _images(self, path: Path) -> np.ndarray:
        images = read_idx(path)
        if images.dtype != np.uint8 or images.shape[1:] != self.shape:
            raise DataError(
                f"{path}: expected uint8 images of shape [N, {self.shape[0]}, {self.shape[1]}], "
                f"got {images.dtype} {list(images.shape)}"
            )
        return images.reshape(len(images), -1).astype(np.float32) / 255  # [N, P]


def read_chardata(path: Path) -> tuple[np.ndarray, np.ndarray]:
    r"""Omniglot's training and test images [N, 784] from Burda et al.'s chardata.mat.

    'data' and 'testdata' are [784, N] (one image per column), each column an image stored
    column-major: pixel (r, c) is entry r + 28 c, as the IWAE code's reshape to 28 x 28 and
    back in Fortran order reads it. The result is row-major, pixel (r, c) at 28 r + c.
    """
    try:
        mat = scipy.io.loadmat(path)
    except (ValueError, IndexError, scipy.io.matlab.MatReadError) as error:  # what scipy raises on non-MAT files
        raise DataError(f"{path}: not a readable MATLAB file ({error}); Burda et al.'s chardata.mat is needed") from None
    arrays = []
    for key in ("data", "testdata"):
        columns = mat.get(key)
        if columns is None or columns.ndim != 2 or columns.shape[0] != 784:
            got = "missing" if columns is None else f"shape {list(columns.shape)}"
            raise DataError(f"{path}: expected '{key}' of shape [784, N] (Burda et al.'s chardata.mat), got {got}")
        if not (0 <= columns.min() and columns.max() <= 1):
            raise DataError(f"{path}: '{key}' has values outside [0, 1]")
        images = columns.T.reshape(-1, 28, 28).transpose(0, 2, 1)  # [N, 28 (r), 28 (c)]
        arrays.append(images.reshape(-1, 784).astype(np.float32))
    return arrays[0], arrays[1]


@dataclass(frozen=True, kw_only=True)
class Chardata(Files):
    """Omniglot as Burda et al. published it for generative models: one chardata.mat."""

    shape: tuple[int, int] = (28, 28)
    valid: int = 1345
    seed: int = 123

    def check(self, path: Path) -> None:
        read_chardata(path)

    def arrays(self, home: Path, download: bool) -> dict[str, np.ndarray]:
        (path,) = self.paths(home, download).values()
        train, test = read_chardata(path)
        train = train[np.random.RandomState(self.seed).permutation(len(train))]
        return {"train": train[: -self.valid], "valid": train[-self.valid :], "test": test}


@dataclass(frozen=True)
class Digits:
    """scikit-learn's bundled 8 x 8 digits: 1797 images, split by a fixed permutation."""

    name: str = "digits"
    shape: tuple[int, int] = (8, 8)
    sizes: tuple[int, int, int] = (1300, 200, 297)
    seed: int = 0

    def arrays(self, home: Path, download: bool) -> dict[str, np.ndarray]:
        from sklearn.datasets import load_digits  # here, not at the top: importing sklearn takes a second

        images = load_digits().data.astype(np.float32) / 16  # [1797, 64], grey levels 0..16
        images = images[np.random.RandomState(self.seed).permutation(len(images))]
        bounds = np.cumsum(self.sizes)
        return dict(zip(SPLITS, np.split(images, bounds[:-1])))


FASHION_MNIST = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
DATASETS: dict[str, Source] = {
    "digits": Digits(),
    "fashion_mnist": IDX(
        name="fashion_mnist",
        files={
            "train-images-idx3-ubyte.gz": "md5:8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "t10k-images-idx3-ubyte.gz": "md5:bef4ecab320f06d8554ea6380940ec79",
        },
        mirrors=(FASHION_MNIST, "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"),
        system=("/usr/share/datasets/fashion-mnist",),
        package="dataset-fashion-mnist",
    ),
    "mnist": IDX(
        name="mnist",
        files={
            "train-images-idx3-ubyte.gz": "md5:f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "t10k-images-idx3-ubyte.gz": "md5:9fb629c4189551a2d022fa330f9573f3",
        },
        mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/",),
    ),
    "omniglot": Chardata(
        name="omniglot",
        files={"chardata.mat": None},
        mirrors=("https://raw.githubusercontent.com/yburda/iwae/master/datasets/OMNIGLOT/",),
    ),
}


def check_options(name: str, binarize: str = "dynamic", split: str = "train") -> None:
    """Reject an unknown data set, binarization or split (cheap: reads nothing)."""
    for what, value, valid in (("dataset", name, DATASETS), ("binarize", binarize, BINARIZATIONS), ("split", split, SPLITS)):
        if value not in valid:
            raise ValueError(f"unknown {what} {value!r}; valid: {', '.join(valid)}")


def load_splits(
    name: str, binarize: str = "dynamic", root: str | Path | None = None, download: bool = True
) -> dict[str, Dataset]:
    """The train, valid and test splits of data set ``name`` (see the module docstring).

    Args:
        name: a key of DATASETS.
        binarize: ``dynamic`` (fresh Bernoulli draws each pass) or ``threshold`` (x > 0.5).
        root: the data home (default $DISCOGRAD_DATA, else ~/.cache/discograd).
        download: fetch missing files (False: only look for them).

    Raises:
        DataError: the files are missing and cannot be downloaded, or are malformed; one line.
    """
    check_options(name, binarize)
    source = DATASETS[name]
    images = {split: torch.from_numpy(array) for split, array in source.arrays(data_home(root), download).items()}
    train = images["train"].double()  # [N, P]; float64 for an exact mean over 50,000 images
    train_mean = ((train > 0.5).double() if binarize == "threshold" else train).mean(0).float()  # [P]
    return {split: Dataset(name, split, x, source.shape, binarize, train_mean) for split, x in images.items()}


def load(
    name: str, split: str, binarize: str = "dynamic", root: str | Path | None = None, download: bool = True
) -> Dataset:
    """One split (``train``, ``valid`` or ``test``) of data set ``name``; the arguments as load_splits'."""
    check_options(name, binarize, split)
    return load_splits(name, binarize, root, download)[split]
