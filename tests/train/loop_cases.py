"""The tiny runs that pin the training loop down: the data, the model shapes and the settings of
every case, shared by ``record_loops.py`` (which ran them through the loops as they were before
there was one ``Trainer``) and ``test_loop_parity.py`` (which runs them through the one loop and
asks for the same losses and weights, bit for bit on a machine with the recording's arithmetic).
Plain NumPy and dicts only, so this file imports under either version of the package."""

from __future__ import annotations

import hashlib

import numpy as np

VOCAB = 40
GPT_SHAPE = dict(vocab_size=VOCAB, context_length=12, d_model=16, n_layer=2, n_head=2, dropout=0.1)
SMALL_SHAPE = dict(vocab_size=VOCAB, context_length=12, d_model=8, n_layer=1, n_head=2)
TEACHER_SHAPE = dict(vocab_size=VOCAB, context_length=12, d_model=16, n_layer=2, n_head=2)
INSTRUCT_SHAPE = dict(vocab_size=VOCAB, context_length=16, d_model=16, n_layer=1, n_head=2, dropout=0.1)

# the settings of lesson 07's loop, as keyword arguments (the number of steps apart: its name changed)
LM_STEPS = 8
LM_SETTINGS = dict(batch_size=4, learning_rate=1e-2, min_learning_rate=1e-3, warmup_steps=2,
                   eval_interval=4, eval_batches=2, log_interval=100, seed=3)
INSTRUCT_SETTINGS = dict(steps=6, batch_size=4, learning_rate=1e-2, min_learning_rate=1e-3, warmup_steps=2,
                         eval_interval=3, log_interval=100, seed=5)
CLASSIFY_SETTINGS = dict(steps=9, batch_size=5, learning_rate=3e-3, warmup_steps=2, eval_interval=4)
QAT_STEPS, QAT_LR, QAT_BATCH = 6, 3e-3, 3


def tokens(n: int = 600, seed: int = 0) -> np.ndarray:
    """A token stream with some structure (a noisy count modulo the vocabulary), so losses fall."""
    rng = np.random.default_rng(seed)
    return ((np.arange(n) + rng.integers(0, 3, n)) % VOCAB).astype(np.uint16)


def instruction_rows(n: int = 7, seed: int = 1) -> list[tuple[np.ndarray, int]]:
    """(ids, prompt_length) of ``n`` examples of different lengths, at most 17 ids (context + 1)."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n):
        length = 6 + k % 5 * 2 + int(rng.integers(0, 2))
        rows.append((rng.integers(1, VOCAB, length).astype(np.int64), 2 + k % 3))
    return rows


def classification_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Token rows (n, 8) whose label (3 classes) is which third of the vocabulary dominates."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    ids = (labels[:, None] * (VOCAB // 3) + rng.integers(0, VOCAB // 3, (n, 8))).astype(np.int64)
    return ids, labels


def digest(state: dict[str, np.ndarray]) -> dict:
    """The final weights, twice: ``sha256`` of every array (names sorted; equal digests, equal
    weights) and, per array, its sum and the sum of its absolute values in float64, which a
    machine whose BLAS rounds differently still reproduces to float32 precision."""
    h = hashlib.sha256()
    sums = {}
    for name in sorted(state):
        array = np.ascontiguousarray(state[name])
        h.update(name.encode())
        h.update(str(array.dtype).encode())
        h.update(array.tobytes())
        values = array.astype(np.float64)
        sums[name] = [float(values.sum()), float(np.abs(values).sum())]
    return {"sha256": h.hexdigest(), "sums": sums}


def fingerprint() -> str:
    """sha256 of one forward and backward pass of the tiny GPT at initialisation: the arithmetic
    of this machine's BLAS and ufuncs, which every case depends on. Two machines with the same
    fingerprint compute the cases bit for bit alike; others differ in the last bits of float32."""
    from tinygrad_llm import GPT, GPTConfig   # the top-level names exist in every version

    shape = {**GPT_SHAPE, "dropout": 0.0}
    model = GPT(GPTConfig(**shape), rng=np.random.default_rng(0))
    stream = tokens(200, 2).astype(np.int64)
    T = shape["context_length"]
    inputs = np.stack([stream[i:i + T] for i in range(0, 4 * T, T)])
    targets = np.stack([stream[i + 1:i + T + 1] for i in range(0, 4 * T, T)])
    _, loss = model(inputs, targets)
    loss.backward()
    h = hashlib.sha256(np.asarray(loss.data).tobytes())
    for parameter in model.parameters():
        h.update(np.ascontiguousarray(parameter.grad).tobytes())
    return h.hexdigest()
