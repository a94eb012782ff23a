"""Reader for the IDX files of MNIST-style datasets (optionally gzipped), e.g. the Debian package
``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist/*-ubyte.gz``)."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from bayesncl.data.errors import DataFileError

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_GZIP_MAGIC = b"\x1f\x8b"


def _gunzip(path: Path, raw: bytes) -> bytes:
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:  # BadGzipFile is an OSError
        raise DataFileError(
            f"{path}: corrupt or truncated gzip file ({type(err).__name__}: {err}); "
            "download it again"
        ) from None


def read_idx(path: str | Path) -> np.ndarray:
    """Array stored in an IDX file: magic 0x0000TTNN (T = dtype code, N = number of dims), then
    N big-endian uint32 sizes, then the data. Gzip-compressed files (``.gz``, recognised by
    their content) are decompressed. Errors (:class:`DataFileError`) name the file: a ``.gz``
    name on a file that is not gzip, a broken or truncated gzip stream, a wrong magic, a header
    cut short, or data shorter or longer than the header says."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        raw = _gunzip(path, raw)
    elif path.suffix == ".gz":
        raise DataFileError(
            f"{path}: named .gz but not gzip-compressed (starts with {raw[:4].hex() or 'nothing'}"
            "): download it again (a plain IDX file must not be named .gz)"
        )
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES or raw[3] == 0:
        raise DataFileError(
            f"{path} is not an IDX file (magic {raw[:4].hex() or 'missing'}, expected "
            "0000TTNN with type TT in 08 09 0b 0c 0d 0e and N >= 1 dimensions)"
        )
    ndim, header = raw[3], 4 + 4 * raw[3]
    if len(raw) < header:
        raise DataFileError(
            f"{path}: IDX header of {ndim} dimensions cut short ({len(raw)} bytes; truncated?)"
        )
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_DTYPES[raw[2]])
    want, have = int(np.prod(shape)) * dtype.itemsize, len(raw) - header
    if have < want:
        raise DataFileError(
            f"{path}: header says shape {shape} ({want} bytes of data) but the file holds "
            f"{have} (truncated?): download it again"
        )
    if have > want:
        raise DataFileError(
            f"{path}: header says shape {shape} ({want} bytes of data) but the file holds "
            f"{have - want} bytes more: not an IDX file of that shape"
        )
    return np.frombuffer(raw, dtype=dtype, count=int(np.prod(shape)), offset=header).reshape(shape)


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file (gzipped if the name ends in .gz); for tests and tools."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(s).to_bytes(4, "big") for s in array.shape
    )
    payload = header + array.tobytes()
    path = Path(path)
    path.write_bytes(gzip.compress(payload) if path.suffix == ".gz" else payload)
