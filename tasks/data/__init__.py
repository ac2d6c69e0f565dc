"""The data of the VAE tasks: binarized image data sets, found locally or downloaded with checksums.

    from tasks.data import load_splits
    splits = load_splits("digits", binarize="dynamic")      # {"train", "valid", "test"} -> Dataset
    for x in splits["train"].batches(100, torch.Generator().manual_seed(0)):   # x: [100, 64] in {0, 1}
        ...

sources.py lists the data sets and their splits, dataset.py the binarizations, download.py
the atomic, checksummed downloads, idx.py the IDX format.
"""
from tasks.data.dataset import BINARIZATIONS, Dataset
from tasks.data.download import download
from tasks.data.errors import ChecksumError, DataError, DownloadError
from tasks.data.idx import read_idx, write_idx
from tasks.data.sources import DATASETS, HOME_VARIABLE, SPLITS, check_options, data_home, load, load_splits

__all__ = [
    "BINARIZATIONS",
    "ChecksumError",
    "DATASETS",
    "DataError",
    "Dataset",
    "DownloadError",
    "HOME_VARIABLE",
    "SPLITS",
    "check_options",
    "data_home",
    "download",
    "load",
    "load_splits",
    "read_idx",
    "write_idx",
]
