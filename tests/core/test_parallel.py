"""Elementwise work split over threads: every element is covered once, and results do not
depend on the number of threads."""

import os

import numpy as np
import pytest

from tinygrad_llm import Tensor
from tinygrad_llm.core import parallel


@pytest.fixture
def restore_threads():
    before = parallel.threads()
    yield
    parallel.set_threads(before)


@pytest.mark.parametrize("size", [0, 1, parallel.PIECE - 1, parallel.PIECE + 1, parallel.MIN_PARALLEL + 12345])
@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_parts_cover_every_element_exactly_once(size, n_threads, restore_threads):
    parallel.set_threads(n_threads)
    counts = np.zeros(size, dtype=np.int64)
    parts = []

    def visit(part):
        parts.append(part)
        counts[part] += 1

    parallel.in_parts(visit, size)
    np.testing.assert_array_equal(counts, np.ones(size, dtype=np.int64))
    assert all(p.stop - p.start <= parallel.PIECE for p in parts)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_parts_of_rows_cover_every_row_once_in_pieces_of_whole_rows(n_threads, restore_threads):
    parallel.set_threads(n_threads)
    row_size = 1000
    n_rows = 3 * parallel.MIN_PARALLEL // row_size + 5
    counts = np.zeros(n_rows, dtype=np.int64)
    parts = []

    def visit(part):
        parts.append(part)
        counts[part] += 1

    parallel.in_parts(visit, n_rows, row_size=row_size)
    np.testing.assert_array_equal(counts, np.ones(n_rows, dtype=np.int64))
    assert max(p.stop - p.start for p in parts) == parallel.PIECE // row_size


def test_gelu_is_bitwise_the_same_with_one_thread_and_with_several(restore_threads):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, parallel.MIN_PARALLEL // 2 + 7), dtype=np.float32) * 3
    g = rng.standard_normal(x.shape, dtype=np.float32)
    results = []
    for n in (1, 3):
        parallel.set_threads(n)
        t = Tensor(x, requires_grad=True)
        y = t.gelu()
        y.backward(g)
        results.append((y.data, t.grad))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_gelu_of_a_non_contiguous_input_matches_the_contiguous_one():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 5))
    strided = Tensor(x.T, requires_grad=True)  # a transposed view
    contiguous = Tensor(np.ascontiguousarray(x.T), requires_grad=True)
    for t in (strided, contiguous):
        t.gelu().sum().backward()
    np.testing.assert_array_equal(strided.gelu().data, contiguous.gelu().data)
    np.testing.assert_array_equal(strided.grad, contiguous.grad)


def test_an_error_in_a_part_reaches_the_caller(restore_threads):
    parallel.set_threads(2)

    def fail(part):
        if part.start > 0:
            raise RuntimeError("a part failed")

    with pytest.raises(RuntimeError, match="a part failed"):
        parallel.in_parts(fail, parallel.MIN_PARALLEL * 2)


def test_set_threads_rejects_zero():
    with pytest.raises(ValueError, match="at least 1 thread"):
        parallel.set_threads(0)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_can_still_run_parts(restore_threads):
    parallel.set_threads(2)
    parallel.in_parts(lambda part: None, parallel.MIN_PARALLEL * 2)  # the parent's pool exists
    pid = os.fork()
    if pid == 0:  # the child: exit code 0 only if the work was done
        total = np.zeros(1)
        marks = np.zeros(parallel.MIN_PARALLEL * 2)
        parallel.in_parts(lambda part: marks.__setitem__(part, 1.0), marks.size)
        total[0] = marks.sum()
        os._exit(0 if total[0] == marks.size else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def _attention_run(n_threads, qkv, g, mask, dropout_p):
    parallel.set_threads(n_threads)
    from tinygrad_llm.core import attention as A
    x = Tensor(qkv, requires_grad=True)
    y = A.packed_attention(x, causal=True, mask=mask, dropout_p=dropout_p, training=dropout_p > 0,
                           rng=np.random.default_rng(3))
    y.backward(g)
    return y.data, x.grad


@pytest.mark.parametrize("dropout_p", [0.0, 0.2])
def test_attention_is_bitwise_the_same_with_one_thread_and_with_several(dropout_p, restore_threads):
    # 16 sequences x 2 heads, 256 positions: every block of 64 queries has at least
    # 16 x 2 x 64 x 64 = MIN_PARALLEL scores, so the parts run in parallel
    rng = np.random.default_rng(2)
    B, nh, T, hs = 16, 2, 256, 8
    qkv = rng.standard_normal((B, T, 3, nh, hs), dtype=np.float32).transpose(2, 0, 3, 1, 4)
    g = rng.standard_normal((B, nh, T, hs), dtype=np.float32)
    mask = np.zeros((B, 1, 1, T), dtype=bool)
    mask[1, ..., -3:] = True  # padding at the end of sequence 1
    one, several = (_attention_run(n, qkv, g, mask, dropout_p) for n in (1, 3))
    np.testing.assert_array_equal(one[0], several[0])
    np.testing.assert_array_equal(one[1], several[1])


def test_a_fully_masked_row_is_reported_from_a_worker_thread_too(restore_threads):
    from tinygrad_llm.core import attention as A
    parallel.set_threads(2)
    B, nh, T, hs = 16, 2, 256, 8  # the first block of 64 queries has MIN_PARALLEL scores
    q = Tensor(np.zeros((B, nh, T, hs), dtype=np.float32))
    mask = np.zeros((B, 1, 1, T), dtype=bool)
    mask[-1, ..., 0] = True  # the last sequence's first query sees nothing: a row in the last part
    with pytest.raises(ValueError, match="entirely -inf"):
        A.scaled_dot_product_attention(q, q, q, causal=True, mask=mask)


def test_layer_norm_is_bitwise_the_same_with_one_thread_and_with_several(restore_threads):
    from tinygrad_llm import functional as F
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 300, 384), dtype=np.float32) * 2 + 1  # 4 x 300 x 384 > MIN_PARALLEL
    w, b = rng.standard_normal(384, dtype=np.float32), rng.standard_normal(384, dtype=np.float32)
    g = rng.standard_normal(x.shape, dtype=np.float32)
    results = []
    for n in (1, 3):
        parallel.set_threads(n)
        tensors = [Tensor(a, requires_grad=True) for a in (x, w, b)]
        y = F.layer_norm(*tensors)
        y.backward(g)
        results.append([y.data] + [t.grad for t in tensors])
    for one, several in zip(*results):
        np.testing.assert_array_equal(one, several)
