"""The VAE data layer (tasks/data): IDX files, atomic checksummed downloads, the data sets' splits
and binarizations.

Nothing here needs the internet: downloads are tested against an HTTP server on 127.0.0.1
serving small IDX files written by the test, and an unreachable URL is a closed port there.
Fashion-MNIST is read from Debian's dataset-fashion-mnist when installed (skipped otherwise).

The statistical test of dynamic binarization uses ALPHA = 1e-4 (tests/helpers.py), with
Bonferroni over the grey levels it checks; its sample sizes make the broken binarizations it
also runs (a fixed threshold, one draw reused every pass) fail by more than 50 standard errors.
"""
import dataclasses
import functools
import hashlib
import io
import os
import socket
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import scipy.io
import torch

from helpers import z_crit
from tasks.data import (
    DATASETS, HOME_VARIABLE, ChecksumError, DataError, Dataset, DownloadError, download, load, load_splits, read_idx, write_idx,
)  # fmt: skip
from tasks.data.sources import IDX

FASHION_MNIST_DEBIAN = "/usr/share/datasets/fashion-mnist"


def idx_bytes(array: np.ndarray, tmp_path, name="x.idx.gz") -> bytes:
    return write_idx(tmp_path / name, array).read_bytes()


def md5(data: bytes) -> str:
    return "md5:" + hashlib.md5(data).hexdigest()


# ----------------------------------------------------------------------------- IDX files


@pytest.mark.parametrize("name,compress", [("a.idx", None), ("a.idx.gz", None), ("gzipped-but-named-plain", True)])
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float64])
def test_idx_round_trip(tmp_path, name, compress, dtype):
    array = np.arange(30).reshape(2, 3, 5).astype(dtype)
    if dtype != np.uint8:
        array -= 7  # negative numbers too
    back = read_idx(write_idx(tmp_path / name, array, compress))
    assert back.dtype == array.dtype and back.shape == (2, 3, 5)
    np.testing.assert_array_equal(back, array)


def test_idx_is_big_endian_as_published(tmp_path):
    """Header and data as the format fixes them: 0000, type 0x0B (int16), 1 dim, size 2, big-endian data."""
    raw = write_idx(tmp_path / "a.idx", np.array([1, 258], dtype=np.int16)).read_bytes()
    assert raw == bytes([0, 0, 0x0B, 1, 0, 0, 0, 2, 0, 1, 1, 2])


@pytest.mark.parametrize(
    "raw,message",
    [
        (b"\x00\x01\x08\x01\x00\x00\x00\x01\x07", "not an IDX file"),  # second byte not zero
        (b"\x00\x00\x07\x01\x00\x00\x00\x01\x07", "not an IDX file"),  # unknown type code
        (b"\x00\x00\x08\x03\x00\x00\x00\x02", "promises 3 dimensions"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x05\x01\x02", "truncated or corrupted"),
        (b"\x1f\x8b\x08\x00garbage", "not a valid gzip file"),
    ],
)
def test_a_malformed_idx_file_is_a_clear_error(tmp_path, raw, message):
    path = tmp_path / "bad.idx"
    path.write_bytes(raw)
    with pytest.raises(DataError, match=message) as error:
        read_idx(path)
    assert str(path) in str(error.value)


# ----------------------------------------------------------------------------- downloads


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path, monkeypatch):
    """(folder, base URL): an HTTP server on 127.0.0.1 serving the files put in folder."""
    monkeypatch.setenv("no_proxy", "127.0.0.1")  # a proxy in the environment must not intercept
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    folder = tmp_path / "www"
    folder.mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)  # poll fast: quick shutdown
    thread.start()
    yield folder, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def unreachable():
    """A base URL on 127.0.0.1 where nothing listens: connections are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.mark.parametrize("algorithm", ["md5", "sha256"])
def test_download_with_the_right_checksum_puts_the_file_in_place(tmp_path, server, algorithm):
    www, url = server
    images = np.arange(4 * 28 * 28, dtype=np.uint8).reshape(4, 28, 28)
    data = write_idx(www / "images.gz", images).read_bytes()
    checksum = f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"
    target = tmp_path / "home" / "images.gz"
    assert download(url + "images.gz", target, checksum) == target
    assert target.read_bytes() == data
    np.testing.assert_array_equal(read_idx(target), images)
    assert os.listdir(target.parent) == ["images.gz"]  # no temporary file left


def test_a_corrupted_download_is_a_clear_error_and_leaves_no_file(tmp_path, server):
    www, url = server
    good = idx_bytes(np.zeros((3, 28, 28), np.uint8), tmp_path)
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0xFF
    (www / "images.gz").write_bytes(bytes(bad))
    folder = tmp_path / "home"
    with pytest.raises(ChecksumError) as error:
        download(url + "images.gz", folder / "images.gz", md5(good))
    message = str(error.value)
    for part in (url + "images.gz", md5(good)[4:], hashlib.md5(bad).hexdigest(), "discarded", "by hand"):
        assert part in message
    assert os.listdir(folder) == []  # neither the file nor a temporary one


def test_an_interrupted_download_leaves_no_file(tmp_path, server):
    """Ctrl-C (a BaseException) after the bytes arrived: the temporary file is removed too."""
    www, url = server
    data = idx_bytes(np.zeros((1, 2), np.uint8), tmp_path)
    (www / "f.gz").write_bytes(data)

    def interrupt(path):
        assert path.exists() and path.parent == tmp_path / "home"  # the temporary file, beside the target
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        download(url + "f.gz", tmp_path / "home" / "f.gz", md5(data), validate=interrupt)
    assert os.listdir(tmp_path / "home") == []


@pytest.mark.parametrize("missing", ["refused", "404"])
def test_an_unreachable_url_is_a_download_error_naming_it(tmp_path, server, unreachable, missing):
    url = unreachable + "f.gz" if missing == "refused" else server[1] + "absent.gz"
    with pytest.raises(DownloadError, match="could not download " + url) as error:
        download(url, tmp_path / "home" / "f.gz", "md5:" + "0" * 32, timeout=5)
    assert "\n" not in str(error.value)
    assert os.listdir(tmp_path / "home") == []


def test_a_checksum_must_name_its_algorithm(tmp_path):
    with pytest.raises(DataError, match="ALGORITHM:HEX"):
        download("http://127.0.0.1:9/f", tmp_path / "f", "nohash:00")


# ----------------------------------------------------------------------------- finding and fetching a data set


@pytest.fixture
def tiny(tmp_path, server, unreachable, monkeypatch):
    """A registered IDX data set 'tiny' of 3 x 2 images (7 training, 3 test), served on 127.0.0.1;
    returns a function registering it with the given mirrors, and the images."""
    www, url = server
    rng = np.random.default_rng(0)
    train, test = rng.integers(0, 256, (7, 3, 2), dtype=np.uint8), rng.integers(0, 256, (3, 3, 2), dtype=np.uint8)
    files = {"train.gz": md5(write_idx(www / "train.gz", train).read_bytes()),
             "test.gz": md5(write_idx(www / "test.gz", test).read_bytes())}  # fmt: skip

    def register(*mirrors):
        monkeypatch.setitem(DATASETS, "tiny", IDX(name="tiny", files=files, mirrors=mirrors, shape=(3, 2), valid=2))

    register(unreachable, url)  # the first mirror refuses: the second one serves
    return register, train, test


def test_load_downloads_the_missing_files_then_finds_them(tmp_path, tiny):
    register, train, test = tiny
    home = tmp_path / "home"
    splits = load_splits("tiny", "threshold", root=home)
    assert sorted(os.listdir(home / "tiny")) == ["test.gz", "train.gz"]
    expected = {"train": train[:5], "valid": train[5:], "test": test}
    for split, dataset in splits.items():
        assert dataset.images.dtype == torch.float32 and dataset.shape == (3, 2) and dataset.pixels == 6
        np.testing.assert_allclose(dataset.images.numpy(), expected[split].reshape(-1, 6) / 255, rtol=1e-6)
    register()  # no mirror at all: only what is on disk now
    assert torch.equal(load("tiny", "valid", root=home, download=False).images, splits["valid"].images)


def test_the_environment_variable_names_the_data_home(tmp_path, tiny, monkeypatch):
    register, _, _ = tiny
    load_splits("tiny", root=tmp_path / "elsewhere")
    register()
    monkeypatch.setenv(HOME_VARIABLE, str(tmp_path / "elsewhere"))
    assert len(load("tiny", "train", download=False)) == 5


def test_files_unpacked_by_hand_are_found(tmp_path, tiny):
    register, train, test = tiny
    register()
    (tmp_path / "tiny").mkdir()
    write_idx(tmp_path / "tiny" / "train", train, compress=False)  # train.gz unpacked: named without .gz
    write_idx(tmp_path / "tiny" / "test", test, compress=False)
    assert len(load("tiny", "test", root=tmp_path, download=False)) == 3


def test_missing_data_that_cannot_be_downloaded_is_one_line_saying_how_to_get_it(tmp_path, tiny, unreachable):
    register, _, _ = tiny
    register(unreachable)
    home = tmp_path / "home"
    with pytest.raises(DataError) as error:
        load("tiny", "train", root=home)
    message = str(error.value)
    assert "\n" not in message
    for part in ("not found in", str(home / "tiny"), "download failed", unreachable + "train.gz", "to get it", HOME_VARIABLE):
        assert part in message
    assert not (home / "tiny").exists() or os.listdir(home / "tiny") == []
    with pytest.raises(DataError, match="download=false"):
        load("tiny", "train", root=home, download=False)


def test_the_debian_package_is_named_in_the_how_to(tmp_path):
    without_debian = dataclasses.replace(DATASETS["fashion_mnist"], system=())
    with pytest.raises(DataError, match="install it with `apt-get install dataset-fashion-mnist`, or download http"):
        without_debian.paths(tmp_path, download=False)


@pytest.mark.parametrize("option,value", [("name", "cifar"), ("split", "training"), ("binarize", "stochastic")])
def test_unknown_options_list_the_valid_ones(option, value):
    arguments = {"name": "digits", "split": "train", "binarize": "dynamic", option: value}
    with pytest.raises(ValueError, match=f"unknown .*{value}.*; valid: "):
        load(**arguments)


# ----------------------------------------------------------------------------- the data sets


@pytest.fixture(scope="module")
def digits():
    return load_splits("digits")


def test_digits_splits_partition_the_1797_images(digits):
    from sklearn.datasets import load_digits

    assert {s: len(d) for s, d in digits.items()} == {"train": 1300, "valid": 200, "test": 297}
    for d in digits.values():
        assert d.images.shape[1:] == (64,) and d.shape == (8, 8) and d.images.dtype == torch.float32
        assert 0 <= d.images.min() and d.images.max() <= 1
    together = torch.cat([d.images for d in digits.values()]).numpy()
    original = load_digits().data.astype(np.float32) / 16
    assert sorted(row.tobytes() for row in together) == sorted(row.tobytes() for row in original)  # the same rows


def test_train_mean_is_the_mean_binary_training_image(digits):
    train = digits["train"].images
    assert torch.allclose(digits["valid"].train_mean, train.mean(0), atol=1e-6)
    assert torch.allclose(load("digits", "test", "threshold").train_mean, (train > 0.5).float().mean(0), atol=1e-6)


def level_z(passes: torch.Tensor, grey: torch.Tensor) -> np.ndarray:
    """Per grey level 0 < p < 1: the z-score of the frequency of ones over every pixel and pass at that level.

    passes: [K, N, P] binary images of K passes; grey: [N, P] their grey levels.
    """
    ones = passes.sum(0)  # [N, P]
    z = []
    for p in grey.unique().tolist():
        if 0 < p < 1:
            at = grey == p
            n = passes.shape[0] * int(at.sum())
            assert n >= 1000  # the normal approximation of the pooled binomial is then good to far below ALPHA
            z.append((ones[at].sum().item() / n - p) / np.sqrt(p * (1 - p) / n))
    return np.abs(z)


def fresh_z(first: torch.Tensor, second: torch.Tensor, grey: torch.Tensor) -> float:
    """z-score of the fraction of pixels that differ between two passes, against independent draws."""
    q = 2 * grey * (1 - grey)  # P(two independent Bernoulli(p) draws differ)
    expected, sd = q.mean().item(), (q * (1 - q)).sum().sqrt().item() / q.numel()
    return abs((first != second).float().mean().item() - expected) / sd


def test_dynamic_binarization_draws_fresh_pixels_with_the_grey_levels_as_means(digits):
    """20 passes over the 1300 x 64 training pixels; grey levels k / 16, each of the 15 inner ones
    pooled over >= 1000 draws. Broken variants under the same statistics: a fixed threshold is
    off by > 50 sd at every level, and reusing one draw makes two passes agree everywhere."""
    train, generator = digits["train"], torch.Generator().manual_seed(0)
    passes = torch.stack([next(train.batches(len(train), generator, shuffle=False)) for _ in range(20)])  # [20, N, P]
    grey = train.images
    assert ((passes == 0) | (passes == 1)).all()
    assert (passes[:, grey == 0] == 0).all() and (passes[:, grey == 1] == 1).all()
    z = level_z(passes, grey)
    assert len(z) == 15 and z.max() < z_crit(len(z))
    assert fresh_z(passes[0], passes[1], grey) < z_crit(1)
    threshold = (grey > 0.5).float().expand_as(passes)
    assert level_z(threshold, grey).min() > 50
    assert fresh_z(passes[0], passes[0], grey) > 50


def test_batches_are_reproducible_cover_the_split_and_end_short(digits):
    valid = digits["valid"]
    first = list(valid.batches(64, torch.Generator().manual_seed(3)))
    again = list(valid.batches(64, torch.Generator().manual_seed(3)))
    assert [len(b) for b in first] == [64, 64, 64, 8]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    threshold = Dataset("digits", "valid", valid.images, (8, 8), "threshold", valid.train_mean)
    ordered = torch.cat(list(threshold.batches(64, shuffle=False)))
    assert torch.equal(ordered, (valid.images > 0.5).float())  # deterministic: the same every pass
    shuffled = torch.cat(list(threshold.batches(64, torch.Generator().manual_seed(0))))
    assert not torch.equal(shuffled, ordered) and torch.equal(shuffled.sum(0), ordered.sum(0))  # a permutation of the rows


def test_omniglot_reads_chardata_column_major_and_splits_as_iwae(tmp_path):
    """A small chardata.mat in Burda et al.'s layout: one image per column, each column-major."""
    rng = np.random.default_rng(0)
    train = rng.random((1350, 28, 28)).astype(np.float32)  # [N, row, col]
    test = np.zeros((4, 28, 28), np.float32)
    test[0, 0, 5] = 1.0  # one pixel, row 0, column 5: a transposed reader puts it at row 5, column 0
    column_major = lambda images: images.transpose(0, 2, 1).reshape(len(images), 784).T  # noqa: E731  [784, N]
    (tmp_path / "omniglot").mkdir()
    scipy.io.savemat(tmp_path / "omniglot" / "chardata.mat", {"data": column_major(train), "testdata": column_major(test)})
    splits = load_splits("omniglot", root=tmp_path, download=False)
    assert {s: len(d) for s, d in splits.items()} == {"train": 5, "valid": 1345, "test": 4}
    assert splits["test"].images[0].reshape(28, 28)[0, 5] == 1 and splits["test"].images.sum() == 1
    order = np.random.RandomState(123).permutation(1350)
    np.testing.assert_array_equal(splits["valid"].images.numpy(), train[order[-1345:]].reshape(-1, 784))


@pytest.mark.parametrize("content,message", [({"data": np.zeros((10, 3))}, r"expected 'data' of shape \[784, N\]"),
                                             (b"<html>Not Found</html>", "not a readable MATLAB file")])  # fmt: skip
def test_a_wrong_chardata_file_is_a_clear_error(tmp_path, content, message):
    (tmp_path / "omniglot").mkdir()
    buffer = io.BytesIO()
    if isinstance(content, dict):
        scipy.io.savemat(buffer, content)
    (tmp_path / "omniglot" / "chardata.mat").write_bytes(buffer.getvalue() or content)
    with pytest.raises(DataError, match=message):
        load("omniglot", "train", root=tmp_path, download=False)


@pytest.mark.skipif(not os.path.isdir(FASHION_MNIST_DEBIAN), reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_loads_from_the_debian_package(tmp_path):
    splits = load_splits("fashion_mnist", root=tmp_path, download=False)  # an empty home: only Debian's copy
    assert {s: len(d) for s, d in splits.items()} == {"train": 50_000, "valid": 10_000, "test": 10_000}
    for d in splits.values():
        assert d.pixels == 784 and d.images.shape == (len(d), 784) and 0 <= d.images.min() and d.images.max() <= 1
    assert 0.2 < splits["train"].train_mean.mean() < 0.4  # Fashion-MNIST's mean grey level is about 0.29
