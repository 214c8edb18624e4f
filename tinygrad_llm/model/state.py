"""Checkpoints in the safetensors format, read and written with NumPy (lesson 07).

A safetensors file is deliberately simple, and, unlike pickle, it can only hold data, never code:

    8 bytes     little-endian unsigned integer N, the size of the header
    N bytes     a JSON header: {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
                ..., "__metadata__": {"key": "string value", ...}}
    the rest    the raw little-endian bytes of every tensor, at its offsets from here

Loading maps the file into memory (``np.memmap``) and hands out views, so reading a checkpoint
costs about the size of the weights, with no intermediate copies. Writing goes to a temporary file
that replaces the target only once complete, so an interrupted save never leaves half a checkpoint.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from pathlib import Path

import numpy as np

# safetensors dtype names <-> NumPy dtypes (always little-endian on disk); gpt2 reads files lazily with it
SAFETENSORS_DTYPES = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"), "U32": np.dtype("<u4"), "U16": np.dtype("<u2"), "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_NAMES = {dtype: name for name, dtype in SAFETENSORS_DTYPES.items()}
_MAX_HEADER = 100 * 1024 * 1024  # the reference implementation's limit; a larger one is corrupt


class CheckpointError(ValueError):
    """A checkpoint file is missing, truncated, corrupt, or does not fit the model."""


def bfloat16_to_float32(bits: np.ndarray) -> np.ndarray:
    """bfloat16 is the top 16 bits of a float32: shift them back into place."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


def save_safetensors(path: str | os.PathLike, tensors: dict[str, np.ndarray],
                     metadata: dict[str, str] | None = None) -> None:
    """Write ``tensors`` (name -> array) and string ``metadata`` to ``path`` atomically."""
    header: dict = {}
    if metadata:
        bad = [k for k, v in metadata.items() if not isinstance(k, str) or not isinstance(v, str)]
        if bad:
            raise TypeError(f"safetensors metadata maps strings to strings; not so for {bad}")
        header["__metadata__"] = dict(metadata)
    arrays = []
    offset = 0
    for name, array in tensors.items():
        array = np.asarray(array)
        dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
        if dtype not in _NAMES:
            raise TypeError(f"cannot store tensor {name!r} of dtype {array.dtype} in safetensors")
        # careful: ascontiguousarray returns at least 1-D, so a 0-d array needs its shape back
        array = np.ascontiguousarray(array, dtype=dtype).reshape(array.shape)
        header[name] = {"dtype": _NAMES[dtype], "shape": list(array.shape),
                        "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
        arrays.append(array)
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)  # pad so the data starts 8-byte aligned

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(struct.pack("<Q", len(encoded)))
            f.write(encoded)
            for array in arrays:
                f.write(memoryview(array.reshape(-1)).cast("B") if array.size else b"")
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def read_safetensors_header(path: str | os.PathLike) -> tuple[dict, dict[str, str], int]:
    """(tensor entries, metadata, byte offset of the data) after checking the header's sanity."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    size = path.stat().st_size
    with open(path, "rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise CheckpointError(f"{path}: truncated, not a safetensors file (only {size} bytes)")
        (length,) = struct.unpack("<Q", prefix)
        if length > min(_MAX_HEADER, size - 8):
            raise CheckpointError(f"{path}: header length {length} does not fit in a file of {size} "
                                  f"bytes (truncated or not a safetensors file)")
        raw = f.read(length)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: corrupt safetensors header ({error})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: corrupt safetensors header (not a JSON object)")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CheckpointError(f"{path}: corrupt safetensors header "
                              f"(__metadata__ must map strings to strings)")
    data_start = 8 + length
    data_size = size - data_start
    for name, entry in header.items():
        try:
            dtype_name, shape, (begin, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(f"{path}: tensor {name!r} has a malformed header entry") from None
        if not (isinstance(shape, list) and all(type(n) is int and n >= 0 for n in shape)
                and type(begin) is int and type(end) is int):
            raise CheckpointError(f"{path}: tensor {name!r} has a malformed header entry "
                                  f"(shape and offsets must be non-negative integers)")
        if dtype_name not in SAFETENSORS_DTYPES and dtype_name != "BF16":
            raise CheckpointError(f"{path}: tensor {name!r} has dtype {dtype_name}, which this "
                                  f"loader does not support (supported: {', '.join(SAFETENSORS_DTYPES)}, BF16)")
        itemsize = 2 if dtype_name == "BF16" else SAFETENSORS_DTYPES[dtype_name].itemsize
        expected = int(np.prod(shape, dtype=np.int64)) * itemsize
        if not (0 <= begin <= end <= data_size) or end - begin != expected:
            raise CheckpointError(f"{path}: tensor {name!r} (shape {shape}, {dtype_name}) has data "
                                  f"offsets {begin}..{end} that do not fit the file (truncated or corrupt)")
    return header, metadata, data_start


def load_safetensors(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read a safetensors file: (name -> read-only array view into the mapped file, metadata).

    bfloat16 tensors are converted to float32 (NumPy has no bfloat16)."""
    header, metadata, data_start = read_safetensors_header(path)
    if not header:
        return {}, metadata
    data_size = Path(path).stat().st_size - data_start
    # careful: mmap refuses an empty region (a file whose tensors are all empty)
    mapped = np.memmap(path, dtype=np.uint8, mode="r", offset=data_start) if data_size else np.zeros(0, np.uint8)
    tensors = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        if entry["dtype"] == "BF16":
            bits = mapped[begin:end].view(np.dtype("<u2")).reshape(entry["shape"])
            tensors[name] = bfloat16_to_float32(bits)
        else:
            tensors[name] = mapped[begin:end].view(SAFETENSORS_DTYPES[entry["dtype"]]).reshape(entry["shape"])
    return tensors, metadata
