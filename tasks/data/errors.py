"""The errors of the data layer: each message is one line naming the file or URL and how to fix it.

DataError subclasses ValueError, as the project's other bad-input errors do, so a caller
that reports ValueError as one line reports these too.
"""


class DataError(ValueError):
    """Data that is missing, malformed or cannot be fetched."""


class DownloadError(DataError):
    """A URL that could not be read (no network, refused, timed out, HTTP error)."""

    def __init__(self, url: str, reason: object, how_to: str) -> None:
        self.url, self.reason = url, " ".join(str(reason).split())
        super().__init__(f"could not download {url} ({self.reason}); {how_to}")


class ChecksumError(DataError):
    """A download whose checksum differs from the published one; the file was discarded."""
