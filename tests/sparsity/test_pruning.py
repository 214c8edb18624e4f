"""Pruning: exact sparsity (layer-wise and global), smallest |w| removed, masks held through AdamW
updates, the iterative schedule, structured pruning of heads and neurons (shrunk = masked), and
sparse storage in CSR form with its size formulas and file round trip."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest

from tinygrad_llm import GPT, AdamW, GPTConfig, gradcheck
from tinygrad_llm.sparsity import pruning, sparse, structured
from tinygrad_llm.model.state import CheckpointError, load_safetensors, save_safetensors
from tinygrad_llm.model.generation import generate
from tinygrad_llm.train.optim import weight_decay_groups
from tinygrad_llm.sparsity.pruning import (DEFAULT_TARGETS, MaskedOptimizer, PruningMask, check_sparsity,
                                           finetune_pruned, hold_mask, iterative_prune, magnitude_masks,
                                           magnitude_prune, prunable_weights, sparsity_schedule)
from tinygrad_llm.sparsity.structured import (PrunedAttention, head_scores, lowest_scores, mask_heads,
                                              mask_neurons, neuron_scores, prune_structured, shrink_heads,
                                              shrink_neurons)
from tinygrad_llm.sparsity.sparse import (bitmap_bytes, break_even_sparsity, csr_bytes, index_dtype,
                                          load_sparse, save_sparse, storage_bytes, to_csr)
from tinygrad_llm.train.trainer import TrainConfig, Trainer

CONFIG = GPTConfig(vocab_size=40, context_length=12, d_model=16, n_layer=2, n_head=4)
TINY64 = GPTConfig(vocab_size=11, context_length=6, d_model=8, n_layer=1, n_head=2)  # gradchecks


def make_gpt(config: GPTConfig = CONFIG, seed: int = 0, dtype=np.float32) -> GPT:
    model = GPT(config, rng=np.random.default_rng(seed), dtype=dtype)
    # trained-looking weights: different scales per matrix, nonzero biases, no ties
    rng = np.random.default_rng(seed + 100)
    for _, p in model.named_parameters():
        p.data[...] = rng.normal(0.0, rng.uniform(0.05, 0.5), p.shape)
    return model.eval()


def tokens(config: GPTConfig, shape, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, config.vocab_size, shape)


def logits(model, idx: np.ndarray) -> np.ndarray:
    model.eval()
    return model(idx).data


def test_docstring_examples_run():
    results = [doctest.testmod(module) for module in (pruning, structured, sparse)]
    assert sum(r.attempted for r in results) >= 3 and sum(r.failed for r in results) == 0


# ----------------------------------------------------------------------------------------------
# Choosing what to prune


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, float("nan"), "0.5", True, None])
def test_sparsity_outside_zero_one_is_a_clear_error(bad):
    with pytest.raises(ValueError, match=r"sparsity must be a number in \[0, 1\)"):
        check_sparsity(bad)
    with pytest.raises(ValueError, match="sparsity"):
        magnitude_prune(make_gpt(), bad)


def test_default_targets_are_the_block_linears_not_the_tied_embedding():
    model = make_gpt()
    names = list(prunable_weights(model))
    assert names == [f"blocks.{i}.{t}.weight" for i in range(CONFIG.n_layer) for t in DEFAULT_TARGETS]
    with_embedding = prunable_weights(model, DEFAULT_TARGETS + ("token_embedding",))
    assert with_embedding["token_embedding.weight"] is model.output_weight()  # the tied head


def test_targets_that_match_nothing_or_a_non_linear_are_errors():
    with pytest.raises(ValueError, match="no Linear or Embedding layer matches"):
        prunable_weights(make_gpt(), ["attn.query"])
    with pytest.raises(TypeError, match="only the weights of Linear and Embedding"):
        prunable_weights(make_gpt(), ["attn"])
    with pytest.raises(ValueError, match="scope"):
        magnitude_prune(make_gpt(), 0.5, scope="row")


# ----------------------------------------------------------------------------------------------
# Unstructured magnitude pruning


@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.37, 0.5, 0.9, 0.99])
def test_layerwise_pruning_removes_exactly_round_s_n_of_every_matrix(sparsity):
    model = make_gpt()
    mask = magnitude_prune(model, sparsity, "layer")
    for name, p in mask.params.items():
        removed = p.size - np.count_nonzero(mask.keep[name])
        assert removed == round(sparsity * p.size), name
        assert np.count_nonzero(p.data) == p.size - removed  # the weights themselves are zero
    assert mask.num_pruned == sum(round(sparsity * p.size) for p in mask.params.values())


@pytest.mark.parametrize("sparsity", [0.1, 0.37, 0.5, 0.9])
def test_global_pruning_removes_exactly_round_s_n_overall_and_unevenly(sparsity):
    mask = magnitude_prune(make_gpt(), sparsity, "global")
    assert mask.num_pruned == round(sparsity * mask.num_total)
    per_layer = list(mask.layer_sparsity().values())
    assert max(per_layer) - min(per_layer) > 0.05  # matrices of small weights lose more


def test_layerwise_pruning_removes_the_smallest_magnitudes_of_each_matrix():
    model = make_gpt()
    before = {name: p.data.copy() for name, p in prunable_weights(model).items()}
    mask = magnitude_prune(model, 0.6, "layer")
    for name, w in before.items():
        keep = mask.keep[name]
        assert np.abs(w[~keep]).max() <= np.abs(w[keep]).min()
        np.testing.assert_array_equal(mask.params[name].data[keep], w[keep])  # kept ones untouched


def test_global_pruning_uses_one_threshold_for_all_matrices():
    model = make_gpt()
    before = {name: p.data.copy() for name, p in prunable_weights(model).items()}
    mask = magnitude_prune(model, 0.6, "global")
    largest_removed = max(np.abs(w[~mask.keep[n]]).max() for n, w in before.items())
    smallest_kept = min(np.abs(w[mask.keep[n]]).min() for n, w in before.items())
    assert largest_removed <= smallest_kept


def test_ties_are_broken_by_position():
    masks = magnitude_masks({"w": np.ones((2, 3))}, 0.5)
    np.testing.assert_array_equal(masks["w"], [[False, False, False], [True, True, True]])


def test_pruning_again_never_revives_weights_and_cannot_lower_sparsity():
    model = make_gpt()
    mask = PruningMask(model).prune(0.3)
    first = {name: keep.copy() for name, keep in mask.keep.items()}
    for name, p in mask.params.items():  # training moved the kept weights; pruned ones were held at 0
        p.data[mask.keep[name]] *= np.random.default_rng(0).uniform(0.1, 2.0, int(mask.keep[name].sum()))
    mask.prune(0.6)
    for name, keep in mask.keep.items():
        assert not np.any(keep & ~first[name])  # every removed weight stays removed
    assert mask.num_pruned == sum(round(0.6 * p.size) for p in mask.params.values())
    with pytest.raises(ValueError, match="never brings weights back"):
        mask.prune(0.2)


def test_report_lists_every_weight_with_its_sparsity():
    mask = magnitude_prune(make_gpt(), 0.5)
    rows = mask.report()
    assert [r["name"] for r in rows] == list(mask.params)
    for row in rows:
        assert row["kept"] == row["total"] - round(0.5 * row["total"])
        assert row["sparsity"] == pytest.approx(1 - row["kept"] / row["total"])
    assert mask.sparsity() == pytest.approx(mask.num_pruned / mask.num_total)


# ----------------------------------------------------------------------------------------------
# Holding the mask through training


def _pretrain_then_prune(steps: int = 3) -> tuple[GPT, AdamW, PruningMask, np.ndarray, np.ndarray]:
    """A model trained a few AdamW steps (so the moments hold momentum), then pruned 50%."""
    model = make_gpt()
    model.train()
    optimizer = AdamW(weight_decay_groups(model, 0.1), lr=1e-2)
    idx, targets = tokens(CONFIG, (4, 8)), tokens(CONFIG, (4, 8), seed=2)
    for _ in range(steps):
        optimizer.zero_grad()
        model(idx, targets)[1].backward()
        optimizer.step()
    return model, optimizer, magnitude_prune(model, 0.5), idx, targets


def _train(model, optimizer, idx, targets, steps: int = 5) -> None:
    for _ in range(steps):
        optimizer.zero_grad()
        model(idx, targets)[1].backward()
        optimizer.step()


def test_masked_adamw_keeps_pruned_weights_exactly_zero_with_weight_decay():
    model, optimizer, mask, idx, targets = _pretrain_then_prune()
    kept_before = {name: p.data[mask.keep[name]].copy() for name, p in mask.params.items()}
    _train(model, MaskedOptimizer(optimizer, mask), idx, targets)
    for name, p in mask.params.items():
        assert np.all(p.data[~mask.keep[name]] == 0.0), name
        assert not np.allclose(p.data[mask.keep[name]], kept_before[name])  # the rest did train
    assert mask.pruned_are_zero()


@pytest.mark.parametrize("mask_gradients", [False, True])
def test_without_reapplying_the_mask_adam_momentum_revives_pruned_weights(mask_gradients):
    """Why MaskedOptimizer re-applies the mask after the step: zeroing the gradients is not
    enough, the moments m and v still hold the momentum of the steps before pruning."""
    model, optimizer, mask, idx, targets = _pretrain_then_prune()
    for _ in range(2):
        optimizer.zero_grad()
        model(idx, targets)[1].backward()
        if mask_gradients:
            mask.mask_gradients()
        optimizer.step()
    assert not mask.pruned_are_zero()


def test_masked_optimizer_forwards_what_the_training_loop_uses():
    model, optimizer, mask, _, _ = _pretrain_then_prune(steps=1)
    wrapped = MaskedOptimizer(optimizer, mask)
    wrapped.lr = 1e-4
    assert optimizer.lr == 1e-4 and wrapped.lr == 1e-4
    assert wrapped.parameters() == optimizer.parameters()
    assert wrapped.state_dict()["step_count"] == optimizer.step_count
    with pytest.raises(TypeError, match="wraps an Optimizer"):
        MaskedOptimizer(wrapped, mask)


def test_trainer_holding_a_mask_keeps_pruned_weights_zero_and_saves(tmp_path):
    model = make_gpt()
    data = tokens(CONFIG, (400,))
    mask = magnitude_prune(model, 0.7)
    trainer = hold_mask(Trainer(model, data, data, TrainConfig(steps=4, batch_size=2, warmup_steps=1,
                                                               eval_batches=1), log=None), mask)
    hold_mask(trainer, mask)  # wrapping twice does not nest
    assert isinstance(trainer.optimizer.optimizer, AdamW)
    trainer.train()
    assert mask.pruned_are_zero()
    assert mask.num_pruned == sum(round(0.7 * p.size) for p in mask.params.values())
    trainer.save(tmp_path / "pruned.safetensors")  # the optimizer state goes through the wrapper


def test_finetune_pruned_trains_and_returns_to_eval_mode():
    model = make_gpt()
    data = tokens(CONFIG, (400,))
    mask = magnitude_prune(model, 0.5)
    history = finetune_pruned(model, mask, data, TrainConfig(steps=3, batch_size=2, warmup_steps=1,
                                                             eval_batches=1))
    assert len(history.train_loss) == 3 and not model.training and mask.pruned_are_zero()


# ----------------------------------------------------------------------------------------------
# The iterative schedule


@pytest.mark.parametrize("final, rounds, initial", [(0.9, 5, 0.0), (0.5, 1, 0.0), (0.8, 7, 0.3)])
def test_sparsity_schedule_is_monotone_and_ends_at_the_target(final, rounds, initial):
    schedule = sparsity_schedule(final, rounds, initial)
    assert len(schedule) == rounds and schedule[-1] == pytest.approx(final)
    assert all(a <= b for a, b in zip(schedule, schedule[1:]))
    assert initial <= schedule[0]
    steps = np.diff([initial] + schedule)
    assert all(a >= b - 1e-12 for a, b in zip(steps, steps[1:]))  # big steps first (cubic)


def test_sparsity_schedule_errors():
    with pytest.raises(ValueError, match="rounds must be a positive integer"):
        sparsity_schedule(0.5, 0)
    with pytest.raises(ValueError, match="above the final"):
        sparsity_schedule(0.5, 3, initial_sparsity=0.6)
    with pytest.raises(ValueError, match=r"final sparsity must be a number in \[0, 1\)"):
        sparsity_schedule(1.0, 3)


def test_iterative_prune_ramps_the_sparsity_with_the_mask_held():
    model = make_gpt()
    data = tokens(CONFIG, (400,))
    config = TrainConfig(steps=6, batch_size=2, warmup_steps=1, eval_batches=1)
    mask, records = iterative_prune(model, data, 0.8, 3, config)
    sparsities = [r["sparsity"] for r in records]
    assert all(a < b for a, b in zip(sparsities, sparsities[1:]))
    assert [r["step"] for r in records] == [2, 4, 6]
    assert mask.num_pruned == sum(round(0.8 * p.size) for p in mask.params.values())
    assert mask.pruned_are_zero() and not model.training
    with pytest.raises(ValueError, match="cannot be shared among"):
        iterative_prune(make_gpt(), data, 0.8, 7, config)


# ----------------------------------------------------------------------------------------------
# Structured pruning: heads and neurons


def test_head_scores_are_the_value_and_output_norms():
    model = make_gpt()
    attn = model.blocks[1].attn
    C, hs = CONFIG.d_model, CONFIG.d_model // CONFIG.n_head
    h = 2
    value_rows = attn.qkv.weight.data[2 * C + h * hs: 2 * C + (h + 1) * hs]  # v of head h
    out_columns = attn.proj.weight.data[:, h * hs:(h + 1) * hs]
    expected = np.linalg.norm(value_rows) * np.linalg.norm(out_columns)
    assert head_scores(model)[1][h] == pytest.approx(expected, rel=1e-6)
    j = 5
    up, down = model.blocks[0].mlp.up.weight.data, model.blocks[0].mlp.down.weight.data
    expected = np.linalg.norm(up[j]) * np.linalg.norm(down[:, j])
    assert neuron_scores(model)[0][j] == pytest.approx(expected, rel=1e-6)


def test_lowest_scores_removes_the_lowest_and_keeps_at_least_one():
    keeps = lowest_scores([np.array([3.0, 1.0, 2.0, 0.5]), np.array([1.0, 2.0])], 0.5)
    np.testing.assert_array_equal(keeps[0], [True, False, True, False])
    np.testing.assert_array_equal(keeps[1], [False, True])
    assert lowest_scores([np.array([1.0, 2.0])], 0.99)[0].sum() == 1


def test_structured_masking_removes_the_lowest_norm_heads_and_neurons():
    model = make_gpt()
    heads, neurons = head_scores(model), neuron_scores(model)
    head_keeps, neuron_keeps = prune_structured(model, 0.5, 0.25, shrink=False)
    for layer in range(CONFIG.n_layer):
        removed = np.argsort(heads[layer])[:2]
        assert set(np.flatnonzero(~head_keeps[layer])) == set(removed)
        assert set(np.flatnonzero(~neuron_keeps[layer])) == set(np.argsort(neurons[layer])[:16])
        assert np.all(head_scores(model)[layer][removed] == 0)        # their weights are zero now
        assert np.all(neuron_scores(model)[layer][~neuron_keeps[layer]] == 0)


def test_shrunk_model_equals_the_masked_model_and_is_smaller():
    masked, shrunk = make_gpt(), make_gpt()
    keeps = prune_structured(masked, 0.5, 0.25, shrink=False)
    assert all(np.array_equal(a, b) for a, b in zip(keeps[0], prune_structured(shrunk, 0.5, 0.25)[0]))
    idx = tokens(CONFIG, (2, CONFIG.context_length))
    np.testing.assert_allclose(logits(shrunk, idx), logits(masked, idx), rtol=1e-5, atol=1e-5)
    C = CONFIG.d_model
    assert isinstance(shrunk.blocks[0].attn, PrunedAttention)
    assert shrunk.blocks[0].attn.qkv.weight.shape == (3 * C // 2, C)   # 2 of 4 heads left
    assert shrunk.blocks[0].attn.proj.weight.shape == (C, C // 2)
    assert shrunk.blocks[0].mlp.up.weight.shape == (3 * C, C)           # 3/4 of 4C neurons left
    # per block: half the rows of qkv (3C/2 x C, and 3C/2 biases), half the columns of proj (C x C/2),
    # a quarter of the neurons: C rows of up (C x C, and C biases) and C columns of down (C x C)
    removed = CONFIG.n_layer * (3 * C * C // 2 + 3 * C // 2 + C * C // 2 + C * C + C + C * C)
    assert shrunk.num_parameters() == masked.num_parameters() - removed


@pytest.mark.parametrize("use_cache", [True, False])
def test_shrunk_model_generates_like_the_masked_model(use_cache):
    masked, shrunk = make_gpt(), make_gpt()
    prune_structured(masked, 0.5, 0.5, shrink=False)
    prune_structured(shrunk, 0.5, 0.5)
    prompt = tokens(CONFIG, (2, 3))
    expected = generate(masked, prompt, 14, temperature=0, use_cache=False)  # slides past the context
    np.testing.assert_array_equal(generate(shrunk, prompt, 14, temperature=0, use_cache=use_cache), expected)


def test_shrinking_twice_and_training_a_shrunk_model_work():
    model = make_gpt()
    prune_structured(model, 0.25, 0.25)
    prune_structured(model, 0.5, 0.5)  # from PrunedAttention and smaller Linears again
    assert model.blocks[0].attn.n_head == 1 and model.blocks[0].mlp.up.out_features == 24
    model.train()
    optimizer = AdamW(model.parameters(), lr=1e-2)
    idx, targets = tokens(CONFIG, (2, 8)), tokens(CONFIG, (2, 8), seed=2)
    first = model(idx, targets)[1].item()
    _train(model, optimizer, idx, targets, steps=5)
    assert model(idx, targets)[1].item() < first


def test_gradcheck_pruned_attention_inside_a_gpt_float64():
    model = make_gpt(TINY64, dtype=np.float64)
    prune_structured(model, 0.5, 0.25)
    attn = model.blocks[0].attn
    idx = tokens(TINY64, (2, 5))
    assert gradcheck(lambda *_: model(idx), attn.qkv.weight, attn.qkv.bias, attn.proj.weight,
                     model.blocks[0].mlp.up.weight)


def test_structured_keep_masks_are_checked():
    model = make_gpt()
    with pytest.raises(ValueError, match="every head would be removed"):
        mask_heads(model, [np.zeros(4, bool), np.ones(4, bool)])
    with pytest.raises(ValueError, match=r"bool array of shape \(64,\)"):
        mask_neurons(model, [np.ones(63, bool), np.ones(64, bool)])
    with pytest.raises(ValueError, match="masks for a model of 2 blocks"):
        shrink_heads(model, [np.ones(4, bool)])
    with pytest.raises(ValueError, match="fraction of units to remove"):
        prune_structured(model, head_fraction=1.0)
    shrink_neurons(model, [np.ones(64, bool)] * 2)  # keeping everything is allowed


# ----------------------------------------------------------------------------------------------
# Sparse storage


def test_csr_round_trip_and_size_formula():
    rng = np.random.default_rng(0)
    dense = rng.normal(size=(7, 300)).astype(np.float32)
    dense[rng.random(dense.shape) < 0.8] = 0
    dense[3] = 0  # an empty row
    csr = to_csr(dense)
    np.testing.assert_array_equal(csr.to_dense(), dense)
    assert csr.nnz == np.count_nonzero(dense) and csr.col_indices.dtype == np.uint16
    assert csr.nbytes == csr_bytes(dense.shape, csr.nnz) == csr.nnz * (4 + 2) + (7 + 1) * 4
    assert bitmap_bytes(dense.shape, csr.nnz) == math.ceil(7 * 300 / 8) + 4 * csr.nnz
    keep = dense != 0
    keep[0, 0] = True  # a kept weight may be exactly zero: the mask, not the value, decides
    assert to_csr(dense, keep).nnz == csr.nnz + (dense[0, 0] == 0)


def test_index_dtype_and_csr_errors():
    assert index_dtype(65536) == np.uint16 and index_dtype(65537) == np.int32
    with pytest.raises(ValueError, match="2-D"):
        to_csr(np.zeros(5))
    with pytest.raises(ValueError, match="mask of shape"):
        to_csr(np.zeros((2, 3)), np.ones((3, 2), bool))
    with pytest.raises(ValueError, match="unknown sparse format"):
        break_even_sparsity((4, 4), "coo")


@pytest.mark.parametrize("format", ["csr", "bitmap"])
@pytest.mark.parametrize("shape", [(384, 128), (128, 512), (7, 300)])
def test_break_even_sparsity_is_where_sparse_becomes_smaller(format, shape):
    size = {"csr": csr_bytes, "bitmap": bitmap_bytes}[format]
    n = shape[0] * shape[1]
    s = break_even_sparsity(shape, format)
    nnz = round((1 - s) * n)
    assert size(shape, nnz) < 4 * n <= size(shape, nnz + 1)


def test_storage_bytes_counts_masked_weights_sparse_and_the_rest_dense():
    model = make_gpt()
    dense = storage_bytes(model)
    assert dense == 4 * model.num_parameters()
    mask = magnitude_prune(model, 0.9)
    sparse = storage_bytes(model, mask, "csr")
    masked_dense = sum(p.data.nbytes for p in mask.params.values())
    expected = dense - masked_dense + sum(csr_bytes(p.shape, int(mask.keep[name].sum()))
                                          for name, p in mask.params.items())
    assert sparse == expected < dense
    assert storage_bytes(model, mask, "dense") == dense
    with pytest.raises(ValueError, match="unknown storage format"):
        storage_bytes(model, mask, "zip")


def test_save_and_load_sparse_round_trip(tmp_path):
    model = make_gpt()
    mask = magnitude_prune(model, 0.8, "global")
    path = tmp_path / "sparse.safetensors"
    save_sparse(model, mask, path)
    restored = GPT(CONFIG)
    restored_mask = load_sparse(restored, path)
    for name, array in model.state_dict().items():
        np.testing.assert_array_equal(restored.state_dict()[name], array)
    for name, keep in mask.keep.items():
        np.testing.assert_array_equal(restored_mask.keep[name], keep)
    assert restored_mask.params["blocks.0.mlp.up.weight"] is restored.blocks[0].mlp.up.weight
    dense_path = tmp_path / "dense.safetensors"
    save_safetensors(dense_path, model.state_dict())
    assert path.stat().st_size < dense_path.stat().st_size
    tensors, metadata = load_safetensors(path)
    assert metadata["format"] == sparse.SPARSE_FORMAT and "blocks.0.attn.qkv.weight.values" in tensors


def test_load_sparse_rejects_wrong_or_corrupt_files(tmp_path):
    model = make_gpt()
    mask = magnitude_prune(model, 0.5)
    path = tmp_path / "sparse.safetensors"
    save_sparse(model, mask, path)
    dense_path = tmp_path / "dense.safetensors"
    save_safetensors(dense_path, model.state_dict())
    with pytest.raises(CheckpointError, match="not a sparse model file"):
        load_sparse(GPT(CONFIG), dense_path)
    with pytest.raises(CheckpointError, match="does not fit GPT"):
        load_sparse(GPT(GPTConfig(vocab_size=40, context_length=12, d_model=8, n_layer=2, n_head=2)), path)
    tensors, metadata = load_safetensors(path)
    tensors = {name: np.array(array) for name, array in tensors.items()}
    tensors["blocks.0.mlp.up.weight.row_ptr"][3] += 1000
    broken = tmp_path / "broken.safetensors"
    save_safetensors(broken, tensors, metadata)
    with pytest.raises(CheckpointError, match="inconsistent CSR arrays"):
        load_sparse(GPT(CONFIG), broken)
