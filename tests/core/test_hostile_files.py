"""Hostile conditions for the files the library writes: the umask, interrupted saves, SIGKILL in
the middle of a large checkpoint, memory-mapped loads and corrupt headers (lesson 07's formats)."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import tinygrad_llm as tl
from tinygrad_llm.core.files import atomic_write, remove_orphans, write_text_atomically
from tinygrad_llm.model.state import CheckpointError, load_safetensors, read_safetensors_header, save_safetensors

PROJECT = Path(__file__).resolve().parents[2]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# --- permissions and orphans ------------------------------------------------------------------

def tiny_writers(folder: Path) -> dict[str, Path]:
    """Every kind of file the library writes, written once into ``folder``."""
    tokenizer = tl.BPETokenizer.train("the cat sat on the mat " * 20, 262, pattern="gpt2")
    model = tl.GPT(tl.GPTConfig(vocab_size=262, context_length=8, d_model=8, n_layer=1, n_head=2))
    save_safetensors(folder / "plain.safetensors", {"w": np.ones(3, np.float32)})
    tokenizer.save(folder / "tokenizer.json")
    tl.export_gpt2(model, folder / "gpt2", tokenizer)
    corpus = folder / "corpus.txt"
    corpus.write_text("the cat sat on the mat. " * 200, encoding="utf-8")
    prepared = tl.prepare_corpus(corpus, out_dir=folder / "data", tokenizer=tokenizer)
    return {"checkpoint": folder / "plain.safetensors", "tokenizer": folder / "tokenizer.json",
            "gpt2 weights": folder / "gpt2" / "model.safetensors", "gpt2 config": folder / "gpt2" / "config.json",
            "gpt2 vocab": folder / "gpt2" / "vocab.json", "gpt2 merges": folder / "gpt2" / "merges.txt",
            "train.npy": prepared.train_path, "meta.json": prepared.folder / "meta.json"}


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_every_written_file_gets_the_permissions_of_a_new_file(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        files = tiny_writers(tmp_path)
    finally:
        os.umask(old)
    modes = {kind: path.stat().st_mode & 0o777 for kind, path in files.items()}
    assert modes == {kind: mode for kind in files}


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "notes.txt"
    write_text_atomically(path, "old")
    with pytest.raises(RuntimeError):
        with atomic_write(path, "w") as f:
            f.write("half of the new")
            raise RuntimeError("interrupted")
    assert path.read_text() == "old" and leftovers(tmp_path) == []


def test_orphans_of_dead_writers_are_removed_by_the_next_save_and_live_ones_kept(tmp_path):
    path = tmp_path / "model.safetensors"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead_pid = int(dead.stdout)
    orphans = [f".model.safetensors.{dead_pid}-0a1b2c3d.tmp",   # this version's name
               ".model.safetensors.k3j_x9q2.tmp",               # mkstemp's, from older versions
               f".model.safetensors.{dead_pid}.tmp"]            # text.data's, from older versions
    live = f".model.safetensors.{os.getppid()}-00000000.tmp"   # our parent is alive: not an orphan
    unrelated = ".other.safetensors.k3j_x9q2.tmp"
    for name in [*orphans, live, unrelated]:
        (tmp_path / name).write_bytes(b"x" * 100)
    save_safetensors(path, {"w": np.zeros(2)})
    assert leftovers(tmp_path) == sorted([live, unrelated])
    assert remove_orphans(path) == []


def test_atomic_write_refuses_append_and_read_modes(tmp_path):
    with pytest.raises(ValueError, match="mode must be 'w' or 'wb'"):
        with atomic_write(tmp_path / "x", "a"):
            pass


# --- SIGKILL during saves ---------------------------------------------------------------------

SAVER = """
import sys, numpy as np
from tinygrad_llm.model.state import save_safetensors
path, seed = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(seed)
weights = {f"w{i}": rng.standard_normal((1024, 1024)).astype(np.float32) for i in range(8)}  # 32 MB
checksum = str(float(sum(float(w.astype(np.float64).sum()) for w in weights.values())))
print("ready", flush=True)
while True:
    save_safetensors(path, weights, {"checksum": checksum, "writer": str(seed)})
"""


def intact(path: Path) -> str:
    """The writer of ``path`` after checking the file whole: header, size and checksum."""
    tensors, metadata = load_safetensors(path)
    total = sum(float(w.astype(np.float64).sum()) for w in tensors.values())
    assert len(tensors) == 8 and str(total) == metadata["checksum"]
    return metadata["writer"]


def test_sigkill_at_random_moments_of_large_saves_never_damages_the_file(tmp_path):
    path = tmp_path / "big.safetensors"
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    rng = np.random.default_rng(0)
    subprocess.run([sys.executable, "-c", SAVER.replace("while True:", "if True:"), str(path), "0"],
                   env=env, check=True, capture_output=True)
    writers, orphans_seen = {intact(path)}, 0
    start = time.monotonic()
    for round_ in range(1, 11):
        child = subprocess.Popen([sys.executable, "-c", SAVER, str(path), str(round_)], env=env,
                                 stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "ready"
        time.sleep(float(rng.uniform(0.0, 0.4)))   # somewhere inside one of its saves
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        writers.add(intact(path))                  # the old file or a complete new one, never half
        orphans_seen += len(leftovers(tmp_path))
        # the next successful save of the same file removes what the killed writer left
        tensors, metadata = load_safetensors(path)
        save_safetensors(path, tensors, metadata)
        assert leftovers(tmp_path) == []
        assert intact(path) == metadata["writer"]
    assert orphans_seen >= 1, "no kill landed inside a save: the test checked nothing"
    assert time.monotonic() - start < 60


# --- loading: copies, not views -------------------------------------------------------------

def test_loaded_arrays_survive_the_file_being_overwritten_in_place(tmp_path):
    path = tmp_path / "a.safetensors"
    save_safetensors(path, {"w": np.arange(100_000, dtype=np.float32)})
    tensors, _ = load_safetensors(path)
    with open(path, "r+b") as f:   # what `cp other.safetensors a.safetensors` does
        f.truncate(16)
    assert float(tensors["w"][-1]) == 99_999.0


def test_mmap_mode_shares_the_file_and_reads_the_same_values(tmp_path):
    path = tmp_path / "a.safetensors"
    save_safetensors(path, {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "e": np.zeros((0, 2))})
    copied, _ = load_safetensors(path)
    mapped, _ = load_safetensors(path, mmap=True)
    assert isinstance(mapped["w"].base, np.memmap) or isinstance(mapped["w"], np.memmap)
    for name in copied:
        np.testing.assert_array_equal(copied[name], mapped[name])


PEAK = """
import resource, sys, numpy as np
from tinygrad_llm.model.state import load_safetensors
tensors, _ = load_safetensors(sys.argv[1], mmap=sys.argv[2] == "mmap")
total = sum(float(t.sum()) for t in tensors.values())   # touch every byte
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def test_loading_costs_about_the_size_of_the_weights(tmp_path):
    path = tmp_path / "w.safetensors"
    save_safetensors(path, {f"w{i}": np.ones((1024, 1024), np.float32) for i in range(16)})   # 64 MB
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    peak = {}
    for mode in ("copy", "mmap"):
        run = subprocess.run([sys.executable, "-c", PEAK, str(path), mode], env=env, capture_output=True,
                             text=True, check=True)
        peak[mode] = int(run.stdout)
    baseline = subprocess.run([sys.executable, "-c", "import resource, tinygrad_llm.model.state;"
                               "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)"],
                              env=env, capture_output=True, text=True, check=True)
    base = int(baseline.stdout)
    # the weights once (64 MB), no second copy on the way
    assert peak["copy"] - base < 64 + 24, (peak, base)


# --- the header validator, against the reference rules ---------------------------------------

def write_raw(path: Path, header: dict, data: bytes) -> Path:
    encoded = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + data)
    return path


F32x2 = {"dtype": "F32", "shape": [2]}
HEADER_CASES = [
    ({"a": {**F32x2, "data_offsets": [0, 8]}, "b": {**F32x2, "data_offsets": [0, 8]}}, 8, "overlaps tensor"),
    ({"a": {**F32x2, "data_offsets": [0, 8]}, "b": {**F32x2, "data_offsets": [4, 12]}}, 12, "overlaps tensor"),
    ({"a": {**F32x2, "data_offsets": [0, 8]}, "b": {**F32x2, "data_offsets": [12, 20]}}, 20, "leaves a gap of 4"),
    ({"a": {**F32x2, "data_offsets": [4, 12]}}, 12, "leaves a gap of 4 bytes after the header"),
    ({"a": {**F32x2, "data_offsets": [0, 8]}}, 12, "4 stray bytes follow the last tensor"),
    ({"a": {"dtype": "F32", "shape": [2 ** 62, 4], "data_offsets": [0, 0]}}, 0, "do not fit the file"),
    ({"a": {"dtype": "F32", "shape": [2 ** 31, 2 ** 31, 2 ** 2], "data_offsets": [0, 16]}}, 16,
     "do not fit the file"),
    ({"a": {**F32x2, "data_offsets": [0, 8], "extra": 1}}, 8, "malformed header entry"),
    ({"a": {**F32x2, "data_offsets": [0, 8, 16]}}, 8, "malformed header entry"),
    ({"a": {**F32x2, "data_offsets": [0, 8]}, "__metadata__": {"k": 1}}, 8, "__metadata__ must map strings"),
    ({"a": {**F32x2, "data_offsets": [0, 8]}, "__metadata__": []}, 8, "__metadata__ must map strings"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, True]}}, 8, "malformed header entry"),
    ({"a": {"dtype": ["F32"], "shape": [2], "data_offsets": [0, 8]}}, 8, "does not support"),
]


@pytest.mark.parametrize("header, size, message", HEADER_CASES)
def test_headers_the_reference_implementation_refuses_are_refused(tmp_path, header, size, message):
    path = write_raw(tmp_path / "bad.safetensors", header, bytes(size))
    with pytest.raises(CheckpointError, match=message) as info:
        load_safetensors(path)
    assert str(path) in str(info.value)


def test_duplicate_tensor_names_are_refused(tmp_path):
    entry = '{"dtype":"F32","shape":[1],"data_offsets":[0,4]}'
    raw = ('{"a":' + entry + ',"a":' + entry + "}").encode()
    path = tmp_path / "dup.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(4))
    with pytest.raises(CheckpointError, match="names given twice: 'a'"):
        read_safetensors_header(path)


def test_tensors_in_any_order_of_the_header_load_as_the_reference_allows(tmp_path):
    header = {"b": {**F32x2, "data_offsets": [8, 16]}, "a": {**F32x2, "data_offsets": [0, 8]}}
    path = write_raw(tmp_path / "order.safetensors", header, np.arange(4, dtype="<f4").tobytes())
    tensors, _ = load_safetensors(path)
    assert tensors["a"].tolist() == [0, 1] and tensors["b"].tolist() == [2, 3]
