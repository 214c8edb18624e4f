"""Storing pruned weights sparsely: CSR and bitmap layouts, their sizes, and sparse files (lesson 14).

Unlike ``pruning``, which decides which weights become zero, this module decides how to keep the
rest: values plus column indices per row (CSR) or values plus one bit per entry (a bitmap), the
sparsity at which each starts to beat dense storage, and a safetensors file that holds only the
kept values and the mask.
"""


from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, is_dataclass

import numpy as np

from ..model.state import CheckpointError, check_state, load_safetensors, save_safetensors
from ..model.nn import Module
from .pruning import PruningMask

SPARSE_FORMAT = "tinygrad_llm.sparse/1"  # written into the metadata of every sparse file


def index_dtype(n_columns: int) -> np.dtype:
    """The smallest index type for column numbers: uint16 below 65,536 columns, else int32."""
    return np.dtype(np.uint16) if n_columns <= 1 << 16 else np.dtype(np.int32)


@dataclass(frozen=True)
class CSRMatrix:
    """Compressed sparse rows: the kept entries row by row (``values``), their column numbers
    (``col_indices``) and where each row starts (``row_ptr``: row i is entries row_ptr[i] to
    row_ptr[i+1])."""

    values: np.ndarray        # (nnz,) float
    col_indices: np.ndarray   # (nnz,) uint16 or int32 (index_dtype)
    row_ptr: np.ndarray       # (rows + 1,) int32
    shape: tuple[int, int]

    @property
    def nnz(self) -> int:
        return int(self.values.size)

    @property
    def nbytes(self) -> int:
        return self.values.nbytes + self.col_indices.nbytes + self.row_ptr.nbytes

    def to_dense(self) -> np.ndarray:
        dense = np.zeros(self.shape, dtype=self.values.dtype)
        rows = np.repeat(np.arange(self.shape[0]), np.diff(self.row_ptr))
        dense[rows, self.col_indices.astype(np.int64)] = self.values
        return dense


def to_csr(dense: np.ndarray, keep: np.ndarray | None = None) -> CSRMatrix:
    """The entries of a 2-D array where ``keep`` is True (default: where it is nonzero)."""
    dense = np.asarray(dense)
    if dense.ndim != 2:
        raise ValueError(f"CSR stores 2-D matrices, got shape {dense.shape}")
    keep = dense != 0 if keep is None else np.asarray(keep, dtype=bool)
    if keep.shape != dense.shape:
        raise ValueError(f"mask of shape {keep.shape} for a matrix of shape {dense.shape}")
    rows, columns = np.nonzero(keep)  # row-major order, as CSR needs
    row_ptr = np.zeros(dense.shape[0] + 1, dtype=np.int32)
    np.cumsum(np.bincount(rows, minlength=dense.shape[0]), out=row_ptr[1:])
    return CSRMatrix(dense[rows, columns], columns.astype(index_dtype(dense.shape[1])), row_ptr, dense.shape)


def csr_bytes(shape: tuple[int, int], nnz: int, value_bytes: int = 4) -> int:
    """nnz (value + column index) + (rows + 1) int32 row starts."""
    return nnz * (value_bytes + index_dtype(shape[1]).itemsize) + (shape[0] + 1) * 4


def bitmap_bytes(shape: tuple[int, int], nnz: int, value_bytes: int = 4) -> int:
    """One bit per position (kept or not), then the kept values: ceil(rows cols / 8) + nnz values."""
    return math.ceil(shape[0] * shape[1] / 8) + nnz * value_bytes


def break_even_sparsity(shape: tuple[int, int], format: str = "csr", value_bytes: int = 4) -> float:
    """The smallest sparsity at which the sparse format takes fewer bytes than the dense matrix
    (rows cols value_bytes): sparse is smaller exactly when (n - nnz) / n >= this. CSR with uint16
    indices and float32 values needs 6 nnz + 4 (rows + 1) < 4 n, sparsity above about 1/3; a
    bitmap n / 8 + 4 nnz < 4 n, above about 1/32.

    >>> round(break_even_sparsity((384, 128)), 4), round(break_even_sparsity((384, 128), "bitmap"), 4)
    (0.3386, 0.0313)
    """
    size = {"csr": csr_bytes, "bitmap": bitmap_bytes}.get(format)
    if size is None:
        raise ValueError(f"unknown sparse format {format!r}; choose 'csr' or 'bitmap'")
    n = shape[0] * shape[1]
    dense = n * value_bytes
    per_entry = value_bytes + (index_dtype(shape[1]).itemsize if format == "csr" else 0)
    fixed = size(shape, 0, value_bytes)
    # fixed + per_entry nnz < dense holds for nnz up to ceil((dense - fixed) / per_entry) - 1
    nnz = min(n, max(0, math.ceil((dense - fixed) / per_entry) - 1))
    return 1.0 - nnz / n


def storage_bytes(model: Module, mask: PruningMask | None = None, format: str = "csr") -> int:
    """Bytes of every parameter and persistent buffer, the masked weights stored in ``format``
    ("dense", "csr" or "bitmap") and everything else dense. Each shared array counts once."""
    sizes = {"csr": csr_bytes, "bitmap": bitmap_bytes}
    if format != "dense" and format not in sizes:
        raise ValueError(f"unknown storage format {format!r}; choose 'dense', 'csr' or 'bitmap'")
    sparse_ids = set() if mask is None or format == "dense" else {id(p.data) for p in mask.params.values()}
    total = sum(a.nbytes for a in model.state_dict().values() if id(a) not in sparse_ids)
    if sparse_ids:
        for name, p in mask.params.items():
            total += sizes[format](p.shape, int(np.count_nonzero(mask.keep[name])), p.data.itemsize)
    return total


def save_sparse(model: Module, mask: PruningMask, path: str | os.PathLike) -> None:
    """Write the model to a safetensors file with the masked weights in CSR form (``<name>.values``,
    ``.col_indices``, ``.row_ptr``) and everything else dense; the metadata lists the sparse
    weights and their shapes (and the model's config when it has one)."""
    sparse = set(mask.params)
    tensors = {name: array for name, array in model.state_dict().items() if name not in sparse}
    for name, p in mask.params.items():
        csr = to_csr(p.data, mask.keep[name])
        tensors.update({f"{name}.values": csr.values, f"{name}.col_indices": csr.col_indices,
                        f"{name}.row_ptr": csr.row_ptr})
    shapes = {name: list(p.shape) for name, p in mask.params.items()}
    metadata = {"format": SPARSE_FORMAT, "sparse": json.dumps(shapes)}
    config = getattr(model, "config", None)
    if is_dataclass(config):
        metadata["model_config"] = json.dumps(asdict(config))
    save_safetensors(path, tensors, metadata)


def load_sparse(model: Module, path: str | os.PathLike) -> PruningMask:
    """Load a file written by ``save_sparse`` into ``model`` (same architecture) and return its
    mask (the stored positions are the kept ones). Corrupt or mismatched files raise
    CheckpointError naming the problem."""
    tensors, metadata = load_safetensors(path)
    if metadata.get("format") != SPARSE_FORMAT:
        raise CheckpointError(f"{path}: not a sparse model file (format {metadata.get('format')!r}, "
                              f"expected {SPARSE_FORMAT!r})")
    try:
        shapes = {name: tuple(shape) for name, shape in json.loads(metadata["sparse"]).items()}
    except (KeyError, json.JSONDecodeError, AttributeError, TypeError) as error:
        raise CheckpointError(f"{path}: corrupt sparse metadata ({error})") from None
    parts = {f"{name}.{part}" for name in shapes for part in ("values", "col_indices", "row_ptr")}
    state = {name: array for name, array in tensors.items() if name not in parts}
    keeps = {}
    for name, shape in shapes.items():
        try:
            csr = CSRMatrix(tensors[f"{name}.values"], tensors[f"{name}.col_indices"],
                            tensors[f"{name}.row_ptr"], shape)
        except KeyError as error:
            raise CheckpointError(f"{path}: sparse weight {name} is missing {error}") from None
        ptr = csr.row_ptr.astype(np.int64)
        if len(shape) != 2 or ptr.shape != (shape[0] + 1,) or ptr[0] != 0 or np.any(np.diff(ptr) < 0) \
                or ptr[-1] != csr.nnz or csr.col_indices.shape != (csr.nnz,) \
                or (csr.nnz and int(csr.col_indices.max()) >= shape[1]):
            raise CheckpointError(f"{path}: sparse weight {name} of shape {shape} has inconsistent "
                                  f"CSR arrays (row_ptr {ptr.shape}, {csr.nnz} values)")
        state[name] = csr.to_dense()
        keep = np.zeros(shape, dtype=bool)
        keep[np.repeat(np.arange(shape[0]), np.diff(ptr)), csr.col_indices.astype(np.int64)] = True
        keeps[name] = keep
    check_state(path, state, model.state_dict(), what=type(model).__name__)
    model.load_state_dict(state)
    mask = PruningMask(model, [name.removesuffix(".weight") for name in shapes])
    mask.keep = keeps
    return mask
