"""Checkpoints in the safetensors format, read and written with NumPy (lesson 07).

A safetensors file is deliberately simple, and, unlike pickle, it can only hold data, never code:

    8 bytes     little-endian unsigned integer N, the size of the header
    N bytes     a JSON header: {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
                ..., "__metadata__": {"key": "string value", ...}}
    the rest    the raw little-endian bytes of every tensor, at its offsets from here

Loading reads each tensor straight from the file into a new array of its own, so reading a
checkpoint costs about the size of the weights, with no intermediate copies, and the arrays stay
valid whatever later happens to the file. (``mmap=True`` hands out views into the mapped file
instead: no copy at all, but the process dies with SIGBUS if the file is truncated or overwritten
in place while a view is alive.) Writing goes through ``core.files.atomic_write``, so an
interrupted save never leaves half a checkpoint.

Before any byte of data is read, the header is checked against the rules of the reference
implementation: a JSON object without duplicate names; every tensor a known dtype, a shape of
non-negative integers and ``data_offsets`` [begin, end] whose length is the shape's element count
times the dtype's size; sorted by offset, the tensors tile the data exactly (no overlap, so no two
tensors alias the same bytes, no gap, nothing after the last one); ``__metadata__`` maps strings
to strings. Every violation is a ``CheckpointError`` naming the file and the tensor.
"""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path

import numpy as np

from ..core.files import atomic_write

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

    with atomic_write(path, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for array in arrays:
            f.write(memoryview(array.reshape(-1)).cast("B") if array.size else b"")


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict:
    names = [name for name, _ in pairs]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise CheckpointError(f"names given twice: {', '.join(map(repr, repeated))}")
    return dict(pairs)


def read_safetensors_header(path: str | os.PathLike) -> tuple[dict, dict[str, str], int]:
    """(tensor entries, metadata, byte offset of the data) after checking the header (see the
    module docstring for the rules)."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder, not a checkpoint file")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            prefix = f.read(8)
            if len(prefix) < 8:
                raise CheckpointError(f"{path}: truncated, not a safetensors file (only {size} bytes)")
            (length,) = struct.unpack("<Q", prefix)
            if length > min(_MAX_HEADER, size - 8):
                raise CheckpointError(f"{path}: header length {length} does not fit in a file of {size} "
                                      f"bytes (truncated or not a safetensors file)")
            raw = f.read(length)
    except OSError as error:
        raise CheckpointError(f"{path}: cannot read the file ({error.strerror or error})") from None
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError:
        raise CheckpointError(f"{path}: corrupt safetensors header (not UTF-8 text)") from None
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{path}: corrupt safetensors header (not valid JSON at byte "
                              f"{error.pos})") from None
    except CheckpointError as error:
        raise CheckpointError(f"{path}: corrupt safetensors header ({error})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: corrupt safetensors header (not a JSON object)")
    metadata = header.pop("__metadata__", None)
    metadata = {} if metadata is None else metadata
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CheckpointError(f"{path}: corrupt safetensors header "
                              f"(__metadata__ must map strings to strings)")
    data_start = 8 + length
    spans = [(*_check_entry(path, name, entry), name) for name, entry in header.items()]
    # sorted by offset, the tensors must tile [0, data size) exactly, as the reference demands
    position, previous = 0, None
    for begin, end, name in sorted(spans):
        if begin != position:
            what = (f"overlaps tensor {previous!r}" if begin < position else
                    f"leaves a gap of {begin - position} bytes after "
                    f"{repr(previous) if previous else 'the header'}")
            raise CheckpointError(f"{path}: tensor {name!r} (data offsets {begin}..{end}) {what} "
                                  f"(corrupt file)")
        position, previous = end, name
    if position != size - data_start:
        problem = ("the file is truncated" if position > size - data_start else
                   f"{size - data_start - position} stray bytes follow the last tensor")
        raise CheckpointError(f"{path}: the header describes {position} bytes of tensor data, which do "
                              f"not fit the file's {size - data_start}: {problem} (truncated or corrupt)")
    return header, metadata, data_start


def _check_entry(path: Path, name: str, entry) -> tuple[int, int]:
    """(begin, end) of one tensor's header entry, after checking its dtype, shape and size."""
    if not isinstance(entry, dict) or set(entry) - {"dtype", "shape", "data_offsets"} \
            or not {"dtype", "shape", "data_offsets"} <= set(entry):
        raise CheckpointError(f"{path}: tensor {name!r} has a malformed header entry "
                              f"(expected dtype, shape and data_offsets)")
    dtype_name, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not (isinstance(shape, list) and all(type(n) is int and n >= 0 for n in shape)
            and isinstance(offsets, list) and len(offsets) == 2
            and all(type(n) is int and n >= 0 for n in offsets)):
        raise CheckpointError(f"{path}: tensor {name!r} has a malformed header entry "
                              f"(shape and data_offsets must be lists of non-negative integers)")
    if not isinstance(dtype_name, str) or (dtype_name not in SAFETENSORS_DTYPES and dtype_name != "BF16"):
        raise CheckpointError(f"{path}: tensor {name!r} has dtype {dtype_name}, which this "
                              f"loader does not support (supported: {', '.join(SAFETENSORS_DTYPES)}, BF16)")
    begin, end = offsets
    itemsize = 2 if dtype_name == "BF16" else SAFETENSORS_DTYPES[dtype_name].itemsize
    # careful: math.prod of Python ints cannot overflow, where an int64 product wraps around
    expected = math.prod(shape) * itemsize
    if end < begin or end - begin != expected:
        raise CheckpointError(f"{path}: tensor {name!r} (shape {shape}, {dtype_name}) has data offsets "
                              f"{begin}..{end} that do not fit the file: its shape needs {expected} bytes "
                              f"(truncated or corrupt)")
    return begin, end


def load_safetensors(path: str | os.PathLike, mmap: bool = False) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read a safetensors file: (name -> array, metadata). bfloat16 tensors are converted to
    float32 (NumPy has no bfloat16).

    Each array is read into memory of its own, so it outlives any change to the file. With
    ``mmap=True`` the arrays are read-only views into the mapped file instead (no copy); then the
    file must not be truncated or rewritten in place while they are alive (replacing it with
    ``save_safetensors``, which renames a new file over it, is safe)."""
    header, metadata, data_start = read_safetensors_header(path)
    if not header:
        return {}, metadata
    tensors = {}
    if mmap:
        data_size = os.stat(path).st_size - data_start
        # careful: mmap refuses an empty region (a file whose tensors are all empty)
        mapped = np.memmap(path, dtype=np.uint8, mode="r", offset=data_start) if data_size else np.zeros(0, np.uint8)
        for name, entry in header.items():
            begin, end = entry["data_offsets"]
            tensors[name] = _from_file_dtype(mapped[begin:end].view(_file_dtype(entry)).reshape(entry["shape"]),
                                             entry)
        return tensors, metadata
    try:
        with open(path, "rb") as f:
            for name, entry in header.items():
                array = np.empty(entry["shape"], dtype=_file_dtype(entry))
                f.seek(data_start + entry["data_offsets"][0])
                if array.nbytes and f.readinto(memoryview(array.reshape(-1)).cast("B")) != array.nbytes:
                    raise CheckpointError(f"{path}: truncated while reading tensor {name!r}")
                tensors[name] = _from_file_dtype(array, entry)
    except OSError as error:
        raise CheckpointError(f"{path}: cannot read the file ({error.strerror or error})") from None
    return tensors, metadata


def _file_dtype(entry: dict) -> np.dtype:
    return np.dtype("<u2") if entry["dtype"] == "BF16" else SAFETENSORS_DTYPES[entry["dtype"]]


def _from_file_dtype(array: np.ndarray, entry: dict) -> np.ndarray:
    return bfloat16_to_float32(array) if entry["dtype"] == "BF16" else array


# --- from a file's tensors and metadata to a model --------------------------------------------

def metadata_json(path, metadata: dict[str, str], key: str, kind: type = dict):
    """``json.loads(metadata[key])``, which must be a ``kind``; a CheckpointError naming the file
    and the key when it is missing or damaged."""
    if key not in metadata:
        raise CheckpointError(f"{path}: the checkpoint's metadata has no {key!r} entry (corrupt file)")
    try:
        value = json.loads(metadata[key])
    except json.JSONDecodeError:
        raise CheckpointError(f"{path}: the checkpoint's {key!r} metadata is not valid JSON "
                              f"(corrupt file)") from None
    if not isinstance(value, kind):
        raise CheckpointError(f"{path}: the checkpoint's {key!r} metadata is not a JSON "
                              f"{'object' if kind is dict else kind.__name__} (corrupt file)")
    return value


def config_from_metadata(path, metadata: dict[str, str], key: str, config_class: type,
                         convert: dict | None = None):
    """A config dataclass (``GPTConfig``, ``TrainConfig``) built from the JSON object stored under
    ``key``; unknown fields or values the config refuses raise a CheckpointError naming the file.
    ``convert`` maps field names to functions applied first (JSON has lists where tuples were)."""
    import dataclasses
    fields = metadata_json(path, metadata, key)
    # a config may still read the names older versions wrote (``legacy_fields``, its ``from_dict``)
    known = {f.name for f in dataclasses.fields(config_class)} | set(getattr(config_class, "legacy_fields", ()))
    unknown = sorted(set(fields) - known)
    if unknown:
        raise CheckpointError(f"{path}: the checkpoint's {key!r} has fields {', '.join(unknown)} that "
                              f"{config_class.__name__} does not know (written by another version?)")
    try:
        for name, function in (convert or {}).items():
            if name in fields:
                fields[name] = function(fields[name])
        build = getattr(config_class, "from_dict", None)
        return build(fields) if build is not None else config_class(**fields)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: the checkpoint's {key!r} is invalid ({error})") from None


def check_state(path, tensors: dict[str, np.ndarray], expected: dict[str, np.ndarray],
                what: str = "the model") -> None:
    """Check that ``tensors`` read from ``path`` fit ``expected`` (a model's ``state_dict()``):
    the same names, the same shapes, and floating-point data where the model holds floats (an
    integer tensor would be cast silently). One CheckpointError names the file and the problems."""
    missing = [name for name in expected if name not in tensors]
    extra = [name for name in tensors if name not in expected]
    misshaped = [f"{name!r} {tensors[name].shape} (expected {target.shape})"
                 for name, target in expected.items()
                 if name in tensors and tensors[name].shape != target.shape]
    not_float = [f"{name!r} ({tensors[name].dtype})" for name, target in expected.items()
                 if name in tensors and target.dtype.kind == "f" and tensors[name].dtype.kind != "f"]
    problems = []
    if missing:
        problems.append(f"missing tensors {_first(missing)}")
    if extra:
        problems.append(f"unexpected tensors {_first(extra)}")
    if misshaped:
        problems.append(f"tensors of the wrong shape {_first(misshaped, quote=False)}")
    if not_float:
        problems.append(f"integer or bool data where the weights are floating point "
                        f"{_first(not_float, quote=False)}")
    if problems:
        raise CheckpointError(f"{path}: does not fit {what}: " + "; ".join(problems))


def _first(names: list[str], limit: int = 3, quote: bool = True) -> str:
    shown = ", ".join(repr(name) if quote else name for name in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
