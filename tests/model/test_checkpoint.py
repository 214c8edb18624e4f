"""safetensors files read and written with NumPy: round trips, the exact file layout, bfloat16,
corrupt files, and atomic writes."""

from __future__ import annotations

import json
import os
import struct

import numpy as np
import pytest

from tinygrad_llm.model.state import (CheckpointError, bfloat16_to_float32, load_safetensors,
                                     read_safetensors_header, save_safetensors)

DTYPES = [np.float64, np.float32, np.float16, np.int64, np.int32, np.int16, np.int8,
          np.uint64, np.uint32, np.uint16, np.uint8, np.bool_]


def sample_tensors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    tensors = {}
    for i, dtype in enumerate(DTYPES):
        shape = [(2, 3), (5,), (1, 2, 2), (3, 1)][i % 4]
        values = rng.normal(0, 50, shape)
        tensors[f"t{i}.{np.dtype(dtype).name}"] = (values > 0) if dtype is np.bool_ else values.astype(dtype)
    tensors["scalar"] = np.array(3.25, dtype=np.float32)          # 0-d
    tensors["empty"] = np.zeros((0, 4), dtype=np.float32)          # no bytes at all
    tensors["empty_1d"] = np.zeros(0, dtype=np.int64)
    tensors["transposed"] = np.arange(6.0).reshape(2, 3).T          # not contiguous
    tensors["big_endian"] = np.arange(4, dtype=">i4")               # stored little-endian
    return tensors


def write(path, prefix: bytes, header: dict | bytes, data: bytes = b"") -> None:
    """A safetensors file by hand: 8-byte little-endian header size, header, data."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(prefix if prefix else struct.pack("<Q", len(raw)) + raw + data)


# ----------------------------------------------------------------------------------------------
# Round trips and the file layout


def test_round_trip_keeps_every_dtype_shape_and_value(tmp_path):
    tensors = sample_tensors()
    path = tmp_path / "all.safetensors"
    save_safetensors(path, tensors, {"note": "hello", "config": json.dumps({"d_model": 16}), "empty": ""})
    loaded, metadata = load_safetensors(path)
    assert list(loaded) == list(tensors)
    for name, array in tensors.items():
        assert loaded[name].shape == array.shape, name
        assert loaded[name].dtype == array.dtype.newbyteorder("="), name
        np.testing.assert_array_equal(loaded[name], array, err_msg=name)
    assert metadata == {"note": "hello", "config": '{"d_model": 16}', "empty": ""}


def test_mmap_arrays_are_read_only_views_of_the_file(tmp_path):
    path = tmp_path / "a.safetensors"
    save_safetensors(path, {"w": np.ones((2, 2), np.float32)})
    loaded, metadata = load_safetensors(path, mmap=True)
    assert metadata == {}
    with pytest.raises(ValueError):
        loaded["w"][0, 0] = 5.0


def test_loaded_arrays_own_their_memory_and_survive_the_file_being_truncated(tmp_path):
    path = tmp_path / "a.safetensors"
    save_safetensors(path, {"w": np.arange(4096, dtype=np.float32)})
    loaded, _ = load_safetensors(path)
    assert loaded["w"].flags.owndata and loaded["w"].flags.writeable
    with open(path, "r+b") as f:   # in place: a mapped view would now SIGBUS on access
        f.truncate(0)
    assert float(loaded["w"].sum()) == float(np.arange(4096).sum())


def test_files_with_no_tensors_or_only_empty_tensors_round_trip(tmp_path):
    save_safetensors(tmp_path / "none.safetensors", {}, {"only": "metadata"})
    assert load_safetensors(tmp_path / "none.safetensors") == ({}, {"only": "metadata"})
    save_safetensors(tmp_path / "empty.safetensors", {"e": np.zeros((3, 0))})
    assert load_safetensors(tmp_path / "empty.safetensors")[0]["e"].shape == (3, 0)


def test_the_file_follows_the_safetensors_layout_byte_for_byte(tmp_path):
    tensors = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([1, -2], dtype=np.int16),
               "s": np.array(7.5)}
    path = tmp_path / "layout.safetensors"
    save_safetensors(path, tensors, {"format": "test"})
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    assert (8 + n) % 8 == 0  # the data start is 8-byte aligned (the header is padded with spaces)
    header = json.loads(raw[8:8 + n])
    assert header == {
        "__metadata__": {"format": "test"},
        "a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
        "b": {"dtype": "I16", "shape": [2], "data_offsets": [24, 28]},
        "s": {"dtype": "F64", "shape": [], "data_offsets": [28, 36]},
    }
    data = raw[8 + n:]
    assert data == tensors["a"].astype("<f4").tobytes() + tensors["b"].astype("<i2").tobytes() + \
        tensors["s"].astype("<f8").tobytes()


def test_the_reference_safetensors_package_reads_our_files_and_we_read_its(tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    tensors = {k: v for k, v in sample_tensors().items() if k != "big_endian"}
    ours = tmp_path / "ours.safetensors"
    save_safetensors(ours, tensors, {"k": "v"})
    theirs = safetensors_numpy.load_file(str(ours))
    for name, array in tensors.items():
        np.testing.assert_array_equal(theirs[name], array)
    path = tmp_path / "theirs.safetensors"
    safetensors_numpy.save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(path),
                                metadata={"k": "v"})
    loaded, metadata = load_safetensors(path)
    assert metadata == {"k": "v"}
    for name, array in tensors.items():
        np.testing.assert_array_equal(loaded[name], array)


def test_metadata_must_map_strings_to_strings(tmp_path):
    with pytest.raises(TypeError, match="metadata maps strings to strings"):
        save_safetensors(tmp_path / "m.safetensors", {}, {"step": 5})


# ----------------------------------------------------------------------------------------------
# bfloat16


def test_bfloat16_tensors_load_as_float32(tmp_path):
    values = np.array([[1.0, -2.5], [0.15625, 2.0 ** 127]], dtype=np.float32)  # exact in bfloat16
    bits = (values.view(np.uint32) >> 16).astype("<u2")  # bfloat16 = the top 16 bits of a float32
    assert np.array_equal(bfloat16_to_float32(bits), values)
    path = tmp_path / "bf16.safetensors"
    header = {"w": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 8]},
              "f": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}}
    write(path, b"", header, bits.tobytes() + np.float32(0.5).tobytes())
    loaded, _ = load_safetensors(path)
    assert loaded["w"].dtype == np.float32 and loaded["w"].shape == (2, 2)
    np.testing.assert_array_equal(loaded["w"], values)
    assert loaded["f"][0] == 0.5


def test_bfloat16_keeps_only_eight_bits_of_mantissa():
    x = np.array([1 + 2 ** -7, 1 + 2 ** -8], dtype=np.float32)  # the second needs 8 mantissa bits
    truncated = bfloat16_to_float32((x.view(np.uint32) >> 16).astype(np.uint16))
    np.testing.assert_array_equal(truncated, [1 + 2 ** -7, 1.0])


# ----------------------------------------------------------------------------------------------
# Corrupt files: a CheckpointError that names the file


def _good_file(path):
    save_safetensors(path, {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.ones(4)})
    return path.read_bytes()


@pytest.mark.parametrize("damage, message", [
    (lambda raw: raw[:-10], "do not fit the file"),                     # truncated data
    (lambda raw: raw[:5], "truncated, not a safetensors file"),         # not even a header size
    (lambda raw: raw[:40], "does not fit in a file"),                   # truncated header
    (lambda raw: b"", "truncated"),
    (lambda raw: struct.pack("<Q", 10) + b"not json!!" + raw[18:], "corrupt safetensors header"),
    (lambda raw: struct.pack("<Q", 4) + b"\xff\xfe\x00\x01", "corrupt safetensors header"),
    (lambda raw: struct.pack("<Q", 2) + b"[]", "not a JSON object"),
    (lambda raw: struct.pack("<Q", 2 ** 62) + raw[8:], "header length"),
], ids=["truncated-data", "tiny", "truncated-header", "empty", "garbage-json", "not-utf8", "json-list",
        "huge-header-size"])
def test_damaged_files_raise_checkpoint_error_naming_the_file(tmp_path, damage, message):
    path = tmp_path / "damaged.safetensors"
    path.write_bytes(damage(_good_file(path)))
    with pytest.raises(CheckpointError, match=message) as info:
        load_safetensors(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("entry, message", [
    ({"dtype": "F32", "shape": [2], "data_offsets": [0, 16]}, "do not fit the file"),     # past the end
    ({"dtype": "F32", "shape": [2], "data_offsets": [4, 8]}, "do not fit the file"),      # wrong length
    ({"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}, "do not fit the file"),      # reversed
    ({"dtype": "F32", "shape": [2], "data_offsets": [-8, 0]}, "malformed header entry"),  # negative
    ({"dtype": "F32", "shape": [3, 3], "data_offsets": [0, 8]}, "do not fit the file"),   # shape too big
    ({"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}, "dtype C64, which this loader does not support"),
    ({"dtype": "F8_E4M3", "shape": [8], "data_offsets": [0, 8]}, "does not support"),
    ({"dtype": "F32", "shape": [2]}, "malformed header entry"),
    ([1, 2, 3], "malformed header entry"),
    ({"dtype": "F32", "shape": "ab", "data_offsets": [0, 8]}, "malformed header entry"),
    ({"dtype": "F32", "shape": [2.0], "data_offsets": [0, 8]}, "malformed header entry"),
    ({"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}, "malformed header entry"),
    ({"dtype": "F32", "shape": [2], "data_offsets": [0.0, 8]}, "malformed header entry"),
], ids=["past-end", "wrong-length", "reversed", "negative", "shape-too-big", "complex", "fp8",
        "no-offsets", "not-an-object", "shape-string", "shape-float", "shape-negative", "offset-float"])
def test_bad_header_entries_raise_checkpoint_error_naming_file_and_tensor(tmp_path, entry, message):
    path = tmp_path / "bad.safetensors"
    write(path, b"", {"weights": entry}, bytes(8))  # 8 bytes of data
    with pytest.raises(CheckpointError, match=message) as info:
        load_safetensors(path)
    assert str(path) in str(info.value) and "'weights'" in str(info.value)


@pytest.mark.parametrize("metadata", [[1, 2], {"step": 5}, "text"], ids=["list", "number-value", "string"])
def test_metadata_that_is_not_a_string_map_raises_checkpoint_error(tmp_path, metadata):
    path = tmp_path / "meta.safetensors"
    write(path, b"", {"__metadata__": metadata})
    with pytest.raises(CheckpointError, match="__metadata__ must map strings to strings"):
        load_safetensors(path)


def test_a_missing_file_raises_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        load_safetensors(tmp_path / "nothing.safetensors")
    with pytest.raises(CheckpointError, match="is a folder, not a checkpoint file"):
        read_safetensors_header(tmp_path)


def test_read_header_returns_entries_metadata_and_data_offset_without_loading(tmp_path):
    path = tmp_path / "h.safetensors"
    save_safetensors(path, {"w": np.zeros((2, 3), np.float16)}, {"a": "b"})
    header, metadata, data_start = read_safetensors_header(path)
    assert header == {"w": {"dtype": "F16", "shape": [2, 3], "data_offsets": [0, 12]}}
    assert metadata == {"a": "b"}
    assert data_start == path.stat().st_size - 12


# ----------------------------------------------------------------------------------------------
# Atomic writes


def _leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_failed_rename_leaves_the_old_file_and_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "model.safetensors"
    save_safetensors(path, {"w": np.zeros(3)}, {"version": "old"})

    def failing_replace(source, target):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        save_safetensors(path, {"w": np.ones(3)}, {"version": "new"})
    monkeypatch.undo()
    loaded, metadata = load_safetensors(path)
    assert metadata == {"version": "old"} and np.all(loaded["w"] == 0)
    assert _leftovers(tmp_path) == ["model.safetensors"]


def test_a_failure_while_writing_the_data_removes_the_partial_file(tmp_path, monkeypatch):
    path = tmp_path / "model.safetensors"
    save_safetensors(path, {"w": np.zeros(3)})
    written = []

    def failing_fsync(fd):
        written.append(os.fstat(fd).st_size)  # the temporary file was fully written by now
        raise OSError("I/O error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="I/O error"):
        save_safetensors(path, {"w": np.ones(1000)})
    monkeypatch.undo()
    assert written and written[0] > 8000
    assert _leftovers(tmp_path) == ["model.safetensors"]
    np.testing.assert_array_equal(load_safetensors(path)[0]["w"], np.zeros(3))


def test_an_unstorable_dtype_after_the_first_tensor_leaves_the_old_file_intact(tmp_path):
    path = tmp_path / "model.safetensors"
    save_safetensors(path, {"w": np.zeros(3)})
    with pytest.raises(TypeError, match="cannot store tensor 'z' of dtype complex128"):
        save_safetensors(path, {"w": np.ones(3), "z": np.ones(2, dtype=complex)})
    with pytest.raises(TypeError, match="cannot store tensor 'o'"):
        save_safetensors(path, {"w": np.ones(3), "o": np.array(["text"], dtype=object)})
    assert _leftovers(tmp_path) == ["model.safetensors"]
    np.testing.assert_array_equal(load_safetensors(path)[0]["w"], np.zeros(3))


def test_saving_creates_missing_folders_and_replaces_an_existing_file(tmp_path):
    path = tmp_path / "runs" / "one" / "ckpt.safetensors"
    save_safetensors(path, {"w": np.zeros(2)})
    save_safetensors(path, {"w": np.ones(5)})
    assert load_safetensors(path)[0]["w"].shape == (5,)
    assert _leftovers(path.parent) == ["ckpt.safetensors"]
