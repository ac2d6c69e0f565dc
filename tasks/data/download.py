r"""Download a URL to a file atomically, checking a published checksum.

The bytes go to a temporary file in the destination's folder (so the final
``os.replace`` is a rename on one file system, atomic); the checksum is computed while
streaming; the temporary file becomes the destination only if the checksum (and an
optional structural check) passes, and is removed on any failure, Ctrl-C included. An
interrupted or corrupted download therefore never leaves a file a later run would trust.

urllib (the standard library) is enough for one GET with a timeout and redirects; a
third-party HTTP client would add a dependency and buy nothing here (no sessions, retries
or resumable ranges are needed for files of at most a few hundred MB).

Checksums are written as pip writes hashes, ``"ALGORITHM:HEX"``, e.g. ``"md5:9fb6..."`` or
``"sha256:b056..."`` (any algorithm of hashlib); MD5 is kept where the dataset's
publisher gives only MD5, as MNIST's and Fashion-MNIST's do.
"""
from __future__ import annotations

import hashlib
import http.client
import logging
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from tasks.data.errors import ChecksumError, DataError, DownloadError

log = logging.getLogger(__name__)
CHUNK = 1 << 20


def new_hash(checksum: str) -> tuple["hashlib._Hash", str]:
    """The hashlib object and expected hex digest of a checksum ``"ALGORITHM:HEX"``."""
    algorithm, _, expected = checksum.partition(":")
    try:
        return hashlib.new(algorithm.lower(), usedforsecurity=False), expected.lower()
    except ValueError:
        raise DataError(f"checksum {checksum!r}: expected 'ALGORITHM:HEX' with an algorithm of hashlib, e.g. 'sha256:...'") from None


def download(
    url: str,
    path: str | Path,
    checksum: str | None,
    timeout: float = 60.0,
    validate: Callable[[Path], None] | None = None,
) -> Path:
    """Fetch ``url`` into ``path`` (creating its folder); return ``path``.

    Args:
        url: any URL urllib opens (http, https, file).
        path: the destination; replaced only by a complete, verified download.
        checksum: ``"ALGORITHM:HEX"`` of the published file, or None where the publisher
            gives none (then pass ``validate``).
        timeout: seconds to wait for the connection and for each read.
        validate: called on the downloaded temporary file before it is moved into place;
            raises (e.g. DataError) to reject it.

    Raises:
        DownloadError: the URL could not be read.
        ChecksumError: the bytes do not match ``checksum``; the message gives both digests.
    """
    path = Path(path)
    hasher, expected = new_hash(checksum) if checksum else (None, "")
    how_to = f"fetch it by hand (e.g. curl -L -o {path} {url}){', check it with ' + checksum if checksum else ''}"
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        log.info("downloading %s -> %s", url, path)
        size = _stream(url, handle, hasher, timeout, how_to)
        if hasher is not None and hasher.hexdigest() != expected:
            raise ChecksumError(
                f"{url}: {hasher.name} mismatch: expected {expected}, got {hasher.hexdigest()} ({size} bytes); "
                f"the download was discarded; retry, or {how_to}"
            )
        if validate is not None:
            validate(Path(temporary))
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide the data from other users of a shared data home
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _stream(url: str, handle: int, hasher: "hashlib._Hash | None", timeout: float, how_to: str) -> int:
    """Copy the body of ``url`` into the open file descriptor ``handle`` (closing it); the byte count.

    Network failures (HTTP errors, refused connections, DNS, timeouts, a cut connection)
    become DownloadError; a failure to write the local file stays the OSError it is.
    """
    request = urllib.request.Request(url, headers={"User-Agent": "discograd"})
    size = 0
    with os.fdopen(handle, "wb") as out:
        try:
            response = urllib.request.urlopen(request, timeout=timeout)
            with response:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    size += len(chunk)
                    if hasher is not None:
                        hasher.update(chunk)
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as error:
            raise DownloadError(url, getattr(error, "reason", None) or error, how_to) from None
    return size
