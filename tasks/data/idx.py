r"""The IDX format of MNIST and Fashion-MNIST: read (gzip or plain) and write, with numpy.

An IDX file is a header and a C-order array of big-endian numbers [1]:

    bytes 0-1   zero
    byte  2     the element type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
                0x0D float32, 0x0E float64
    byte  3     the number of dimensions n
    then        n sizes, each a big-endian uint32, then prod(sizes) elements

Files are often gzipped (the published ``*-idx3-ubyte.gz``); a gzip stream is recognized
by its own magic bytes (1f 8b), not by the file name, so a file unpacked by hand under
its old name still reads.

References:
    [1] Y. LeCun, C. Cortes, C. J. C. Burges. The MNIST database of handwritten digits
        (the file format section).
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from tasks.data.errors import DataError

# element type code -> numpy dtype (big-endian), and back
TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
CODES = {np.dtype(t).newbyteorder("="): code for code, t in TYPES.items()}
GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path: str | Path) -> np.ndarray:
    """The array stored in the IDX file ``path`` (gzipped or not), in native byte order.

    Raises:
        DataError: naming the file, when the magic number, the element type or the length
            does not match the header.
    """
    raw = Path(path).read_bytes()
    if raw[:2] == GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as error:
            raise DataError(f"{path}: not a valid gzip file ({error})") from None
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in TYPES:
        raise DataError(
            f"{path}: not an IDX file (magic number {raw[:4].hex() or 'missing'}; "
            f"expected 0000 then a type code in {', '.join(f'{c:02x}' for c in TYPES)} and the number of dimensions)"
        )
    dtype, ndim = np.dtype(TYPES[raw[2]]), raw[3]
    offset = 4 + 4 * ndim
    if len(raw) < offset:
        raise DataError(f"{path}: the IDX header promises {ndim} dimensions but the file ends at byte {len(raw)}")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - offset != expected:
        raise DataError(
            f"{path}: the IDX header gives shape {list(shape)} of {dtype.name} ({expected} bytes) "
            f"but {len(raw) - offset} bytes of data follow (a truncated or corrupted file?)"
        )
    return np.frombuffer(raw, dtype=dtype, offset=offset).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: str | Path, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write ``array`` as an IDX file; gzipped if ``compress``, by default when the name ends in .gz.

    For tests and for users who convert their own images; the array's dtype must be one
    IDX has (uint8, int8, int16, int32, float32, float64).
    """
    path = Path(path)
    array = np.asarray(array)
    code = CODES.get(array.dtype.newbyteorder("="))
    if code is None:
        raise DataError(f"IDX has no element type for {array.dtype}; use one of uint8, int8, int16, int32, float32, float64")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    data = header + np.ascontiguousarray(array, dtype=TYPES[code]).tobytes()
    if compress if compress is not None else path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)
    return path
