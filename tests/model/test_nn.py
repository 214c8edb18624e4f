"""Modules (the tree, freezing, state dicts, buffers, repr), the layers, and the fused linear and
attention functions, with gradient checks of every module in float64 at tiny sizes."""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_llm import (GELU, GPT, MLP, Dropout, Embedding, GPTConfig, LayerNorm, Linear, Module,
                          ModuleList, MultiHeadAttention, Parameter, Tensor, TransformerBlock, gradcheck)
from tinygrad_llm import functional as F
from tinygrad_llm.core import attention as A

F64 = np.float64


def randomize(module: Module, rng: np.random.Generator, scale: float = 0.5) -> Module:
    """Replace the small init (std 0.02, LayerNorm weights of exactly 1) by O(1) random values,
    so that every gradient entry is far from zero and a wrong one cannot hide below atol."""
    for p in module.parameters():
        p.data[...] = rng.normal(0.0, scale, p.shape)
    return module


class TwoLayers(Module):
    """Linear -> GELU -> Linear: a small tree whose children are named in definition order."""

    def __init__(self, rng=None, dtype=np.float32):
        rng = rng if rng is not None else np.random.default_rng(0)
        self.first = Linear(3, 4, rng=rng, dtype=dtype)
        self.act = GELU()
        self.second = Linear(4, 2, rng=rng, dtype=dtype)

    def forward(self, x):
        return self.second(self.act(self.first(x)))


class Stack(Module):
    def __init__(self, n=3, rng=None):
        rng = rng if rng is not None else np.random.default_rng(0)
        self.layers = ModuleList(Linear(2, 2, rng=rng) for _ in range(n))
        self.norm = LayerNorm(2)


# ----------------------------------------------------------------------------------------------
# The tree: parameters, ModuleList, named modules


def test_named_parameters_follow_definition_order_depth_first():
    model = TwoLayers()
    assert [name for name, _ in model.named_parameters()] == [
        "first.weight", "first.bias", "second.weight", "second.bias"]
    assert [p.shape for p in model.parameters()] == [(4, 3), (4,), (2, 4), (2,)]
    assert model.num_parameters() == 12 + 4 + 8 + 2


def test_a_shared_parameter_is_listed_once_under_its_first_name():
    model = Stack(n=2)
    model.layers[1].weight = model.layers[0].weight  # the same Parameter in two places
    names = [name for name, _ in model.named_parameters()]
    assert names == ["layers.0.weight", "layers.0.bias", "layers.1.bias", "norm.weight", "norm.bias"]
    assert len({id(p) for p in model.parameters()}) == len(model.parameters()) == 5
    assert model.num_parameters() == 4 + 2 + 2 + 2 + 2
    assert "layers.1.weight" not in model.state_dict()


def test_a_shared_parameter_gets_the_sum_of_the_gradients_of_its_uses():
    model = Stack(n=2, rng=np.random.default_rng(1))
    model.layers[1].weight = model.layers[0].weight
    x = Tensor(np.random.default_rng(2).normal(size=(5, 2)), dtype=np.float32)
    model.layers[1](model.layers[0](x)).sum().backward()
    w, b0 = model.layers[0].weight.data, model.layers[0].bias.data
    h = x.data @ w.T + b0
    g = np.ones((5, 2), dtype=np.float32)
    # dL/dW = g^T h (second use) + (g W)^T x (first use)
    expected = g.T @ h + (g @ w).T @ x.data
    np.testing.assert_allclose(model.layers[0].weight.grad, expected, rtol=1e-5, atol=1e-6)


def test_modulelist_indexes_iterates_appends_and_names_children_by_position():
    layers = ModuleList([Linear(2, 3), Linear(3, 1)])
    assert len(layers) == 2
    assert [m.out_features for m in layers] == [3, 1]
    layers.append(Linear(1, 1, bias=False))
    assert [name for name, _ in layers.named_parameters()] == [
        "0.weight", "0.bias", "1.weight", "1.bias", "2.weight"]
    replacement = Linear(3, 1, bias=False)
    layers[1] = replacement
    assert layers[1] is replacement
    assert [name for name, _ in layers.named_parameters()] == ["0.weight", "0.bias", "1.weight", "2.weight"]


def test_named_modules_lists_the_root_first_then_children_in_order():
    model = Stack(n=2)
    names = [name for name, _ in model.named_modules()]
    assert names == ["", "layers", "layers.0", "layers.1", "norm"]
    assert [type(m).__name__ for m in model.modules()] == [
        "Stack", "ModuleList", "Linear", "Linear", "LayerNorm"]


def test_get_submodule_follows_dotted_names_and_rejects_unknown_ones():
    model = Stack(n=3)
    assert model.get_submodule("") is model
    assert model.get_submodule("layers.2") is model.layers[2]
    assert model.get_submodule("norm") is model.norm
    for bad in ("layers.3", "layers.x", "nothing", "norm.weight", "layers.0.weight.data"):
        with pytest.raises(KeyError, match="no sub-module"):
            model.get_submodule(bad)


def test_set_submodule_swaps_a_layer_in_a_list_and_an_attribute():
    model = Stack(n=3)
    new_layer, new_norm = Linear(2, 2, bias=False), LayerNorm(2, bias=False)
    model.set_submodule("layers.1", new_layer)
    model.set_submodule("norm", new_norm)
    assert model.layers[1] is new_layer and model.norm is new_norm
    assert "layers.1.bias" not in dict(model.named_parameters())
    assert model.num_parameters() == 3 * 4 + 2 * 2 + 2
    with pytest.raises(KeyError):
        model.set_submodule("layers.7", Linear(2, 2))
    with pytest.raises(KeyError):
        model.set_submodule("missing", Linear(2, 2))


def test_find_modules_matches_a_pattern_and_optionally_a_type():
    model = GPT(GPTConfig(vocab_size=11, context_length=4, d_model=8, n_layer=2, n_head=2))
    assert model.find_modules(r"attn\.(qkv|proj)$") == [
        "blocks.0.attn.qkv", "blocks.0.attn.proj", "blocks.1.attn.qkv", "blocks.1.attn.proj"]
    assert model.find_modules(r"^blocks\.1\.", kind=LayerNorm) == ["blocks.1.norm1", "blocks.1.norm2"]
    linears = model.find_modules("", kind=Linear)
    assert len(linears) == 2 * 4  # qkv, proj, up, down per block; the head is tied
    assert "" not in model.find_modules("")  # the root has no name to match


# ----------------------------------------------------------------------------------------------
# Modes and freezing


def test_train_and_eval_reach_every_module_and_return_the_module():
    model = GPT(GPTConfig(vocab_size=11, context_length=4, d_model=8, n_layer=2, n_head=2, dropout=0.1))
    returned = model.eval()
    assert returned is model and all(not m.training for m in model.modules())
    returned = model.train()
    assert returned is model and all(m.training for m in model.modules())
    model.blocks[1].train(False)
    assert not model.blocks[1].attn.resid_dropout.training and model.blocks[0].attn.training


def _spy_on_linear(monkeypatch) -> list[tuple[Tensor, tuple]]:
    """Record every call of a fused linear's backward: (its weight, the gradients it returned)."""
    calls = []
    original = F.linear

    def spy(x, weight, bias=None):
        out = original(x, weight, bias)
        if out._backward is not None:
            inner = out._backward

            def backward(g):
                grads = inner(g)
                calls.append((weight, grads))
                return grads

            out._backward = backward
        return out

    monkeypatch.setattr(F, "linear", spy)
    return calls


def test_a_frozen_first_layer_runs_no_backward_at_all(monkeypatch):
    calls = _spy_on_linear(monkeypatch)
    model = TwoLayers(rng=np.random.default_rng(0))
    returned = model.first.requires_grad_(False)
    assert returned is model.first
    x = Tensor(np.random.default_rng(1).normal(size=(5, 3)), dtype=np.float32)  # no grad
    model(x).sum().backward()
    # Nothing before the first trainable layer requires grad, so no graph was even recorded there:
    # the only backward that ran is the second layer's.
    assert [weight for weight, _ in calls] == [model.second.weight]
    grad_x, grad_w, grad_b = calls[0][1]
    assert grad_x is None and grad_w is not None and grad_b is not None
    assert model.first.weight.grad is None and model.first.bias.grad is None
    assert model.num_parameters(trainable_only=True) == 8 + 2


def test_a_frozen_middle_layer_passes_gradient_through_but_computes_none_for_its_weights(monkeypatch):
    calls = _spy_on_linear(monkeypatch)
    rng = np.random.default_rng(0)
    layers = ModuleList([Linear(3, 3, rng=rng), Linear(3, 3, rng=rng), Linear(3, 1, rng=rng)])
    layers[1].requires_grad_(False)
    x = Tensor(rng.normal(size=(4, 3)), dtype=np.float32)
    layers[2](layers[1](layers[0](x))).sum().backward()
    by_weight = {id(weight): grads for weight, grads in calls}
    assert len(calls) == 3
    grad_x, grad_w, grad_b = by_weight[id(layers[1].weight)]
    assert grad_x is not None  # layer 0 still needs the gradient that flows through layer 1
    assert grad_w is None and grad_b is None  # ... but layer 1's own weight gradients are never computed
    assert layers[1].weight.grad is None and layers[1].bias.grad is None
    assert layers[0].weight.grad is not None and layers[2].weight.grad is not None


def test_freezing_all_but_the_last_block_of_a_gpt_skips_the_earlier_blocks(monkeypatch):
    calls = _spy_on_linear(monkeypatch)
    model = GPT(GPTConfig(vocab_size=13, context_length=4, d_model=8, n_layer=3, n_head=2))
    model.requires_grad_(False)
    model.blocks[2].requires_grad_(True)
    idx = np.array([[1, 2, 3, 4]])
    _, loss = model(idx, np.array([[2, 3, 4, 5]]))
    loss.backward()
    last = {id(p) for p in model.blocks[2].parameters()}
    # The last block's four Linear layers and the (tied, frozen) head: nothing in blocks 0 and 1.
    assert len(calls) == 5
    assert all(id(weight) in last or weight is model.token_embedding.weight for weight, _ in calls)
    assert all(p.grad is None for p in model.parameters() if id(p) not in last)
    assert all(p.grad is not None for p in model.blocks[2].parameters())
    model.requires_grad_(True)
    assert model.num_parameters(trainable_only=True) == model.num_parameters()


# ----------------------------------------------------------------------------------------------
# state_dict and load_state_dict


def test_state_dict_round_trip_copies_in_place_and_keeps_parameter_identity():
    source = TwoLayers(rng=np.random.default_rng(1))
    target = TwoLayers(rng=np.random.default_rng(2))
    params_before = target.parameters()
    arrays_before = [p.data for p in params_before]
    target.load_state_dict(source.state_dict())
    for (name, p), before, array in zip(target.named_parameters(), params_before, arrays_before):
        assert p is before and p.data is array, name  # an optimizer holding them stays valid
        np.testing.assert_array_equal(p.data, source.state_dict()[name])
    x = Tensor(np.random.default_rng(3).normal(size=(2, 3)), dtype=np.float32)
    np.testing.assert_array_equal(target(x).data, source(x).data)


def test_state_dict_arrays_are_shared_with_the_model():
    model = TwoLayers()
    state = model.state_dict()
    assert list(state) == ["first.weight", "first.bias", "second.weight", "second.bias"]
    assert state["first.weight"] is model.first.weight.data


def test_load_state_dict_converts_float64_arrays_into_a_float32_model():
    model = TwoLayers()
    state = {name: np.full(a.shape, 0.25, dtype=np.float64) for name, a in model.state_dict().items()}
    model.load_state_dict(state)
    assert all(p.dtype == np.float32 and np.all(p.data == 0.25) for p in model.parameters())


def test_strict_load_lists_missing_unexpected_and_misshaped_keys_in_one_error():
    model = TwoLayers()
    state = dict(model.state_dict())
    del state["first.bias"]
    state["third.weight"] = np.zeros((2, 2))
    state["second.weight"] = np.zeros((4, 2))
    before = model.first.weight.data.copy()
    with pytest.raises(KeyError) as info:
        model.load_state_dict({**state, "first.weight": np.ones((4, 3))})
    message = str(info.value)
    assert "missing keys: first.bias" in message
    assert "unexpected keys: third.weight" in message
    assert "second.weight: checkpoint (4, 2) vs model (2, 4)" in message
    np.testing.assert_array_equal(model.first.weight.data, before)  # nothing loaded on error


def test_non_strict_load_ignores_missing_and_unexpected_keys_but_not_wrong_shapes():
    model = TwoLayers()
    model.load_state_dict({"first.weight": np.ones((4, 3)), "extra": np.zeros(1)}, strict=False)
    np.testing.assert_array_equal(model.first.weight.data, 1.0)
    with pytest.raises(KeyError, match="mis-shaped"):
        model.load_state_dict({"first.weight": np.ones((3, 4))}, strict=False)


class WithBuffers(Module):
    def __init__(self):
        self.scale = Parameter(np.ones(3))
        self.register_buffer("running", np.zeros(3))                      # saved
        self.register_buffer("table", np.arange(3.0), persistent=False)   # recomputable, not saved


def test_persistent_buffers_are_saved_and_loaded_non_persistent_ones_are_not():
    module = WithBuffers()
    assert [name for name, _ in module.named_buffers()] == ["running", "table"]
    assert [name for name, _ in module.named_buffers(persistent_only=True)] == ["running"]
    assert set(module.state_dict()) == {"scale", "running"}
    assert module.parameters() == [module.scale]  # buffers are not trained
    running = module.running
    module.load_state_dict({"scale": np.full(3, 2.0), "running": np.array([1.0, 2.0, 3.0])})
    assert module.running is running  # loaded in place
    np.testing.assert_array_equal(module.running, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(module.table, [0.0, 1.0, 2.0])


def test_buffers_of_submodules_carry_their_dotted_names():
    parent = Stack(n=1)
    parent.extra = WithBuffers()
    assert [name for name, _ in parent.named_buffers()] == ["extra.running", "extra.table"]
    assert "extra.running" in parent.state_dict() and "extra.table" not in parent.state_dict()


def test_repr_shows_the_tree_and_parameter_counts():
    assert repr(Linear(3, 4)) == "Linear(3, 4, bias=True)  # 16 parameters"
    assert repr(GELU()) == "GELU()"
    text = repr(TwoLayers())
    assert text.splitlines()[0] == "TwoLayers("
    assert text.splitlines()[1:4] == ["  (first): Linear(3, 4, bias=True)  # 16 parameters",
                                      "  (act): GELU()",
                                      "  (second): Linear(4, 2, bias=True)  # 10 parameters"]
    assert text.endswith(")  # 26 parameters")
    gpt = GPT(GPTConfig(vocab_size=100, context_length=8, d_model=16, n_layer=2, n_head=2))
    assert repr(gpt).endswith(f")  # {gpt.num_parameters():,} parameters")
    assert "(0): TransformerBlock(" in repr(gpt)


# ----------------------------------------------------------------------------------------------
# Layers


def test_linear_computes_x_times_w_transposed_plus_b():
    layer = Linear(3, 2, rng=np.random.default_rng(0))
    layer.bias.data[...] = [0.5, -1.0]
    x = np.random.default_rng(1).normal(size=(4, 5, 3)).astype(np.float32)
    y = layer(Tensor(x))
    assert layer.weight.shape == (2, 3) and y.shape == (4, 5, 2)
    np.testing.assert_allclose(y.data, x @ layer.weight.data.T + layer.bias.data, rtol=1e-6, atol=1e-6)


def test_linear_without_bias_has_one_parameter_and_keeps_the_dtype():
    layer = Linear(3, 2, bias=False, dtype=F64)
    assert layer.bias is None and layer.parameters() == [layer.weight]
    assert layer(Tensor(np.ones((1, 3)), dtype=F64)).dtype == F64


def test_linear_init_has_std_0_02_and_zero_bias():
    layer = Linear(256, 512, rng=np.random.default_rng(0))
    # the sample std of N = 131,072 normals is off by about 1/sqrt(2N) = 0.2%
    assert abs(layer.weight.data.std() / 0.02 - 1) < 0.02
    assert abs(layer.weight.data.mean()) < 1e-3
    np.testing.assert_array_equal(layer.bias.data, 0.0)


def test_linear_rejects_a_wrong_input_width_and_mixed_dtypes():
    layer = Linear(3, 2)
    with pytest.raises(ValueError, match="does not fit a weight of shape"):
        layer(Tensor(np.ones((2, 4)), dtype=np.float32))
    with pytest.raises(TypeError, match="dtype mismatch"):
        layer(Tensor(np.ones((2, 3)), dtype=F64))


def test_embedding_looks_up_rows_for_any_batch_shape():
    emb = Embedding(10, 4, rng=np.random.default_rng(0))
    ids = np.array([[1, 9, 1], [0, 2, 3]])
    out = emb(ids)
    assert out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out.data, emb.weight.data[ids])


def test_embedding_gradient_adds_up_over_repeated_ids():
    emb = Embedding(5, 3, rng=np.random.default_rng(0))
    upstream = np.random.default_rng(1).normal(size=(2, 3, 3))
    ids = np.array([[1, 1, 4], [4, 0, 1]])
    (emb(ids) * upstream).sum().backward()
    expected = np.zeros((5, 3))
    for (b, t), token in np.ndenumerate(ids):
        expected[token] += upstream[b, t]
    np.testing.assert_allclose(emb.weight.grad, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(emb.weight.grad[[2, 3]], 0.0)  # unused rows get nothing


@pytest.mark.parametrize("ids, error, message", [
    (np.array([0, 5]), IndexError, "token id 5 is out of range for a vocabulary of 5"),
    (np.array([[-1, 2]]), IndexError, "token id -1 is out of range"),
    (np.array([0.0, 1.0]), TypeError, "token ids must be integers, got float64"),
    (Tensor([0.0, 1.0]), TypeError, "not a Tensor"),
])
def test_embedding_rejects_bad_token_ids(ids, error, message):
    with pytest.raises(error, match=message):
        Embedding(5, 2)(ids)


def test_layer_norm_normalises_each_vector_then_scales_and_shifts():
    norm = LayerNorm(6, eps=1e-5, dtype=F64)
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(4, 6))
    out = norm(Tensor(x)).data
    np.testing.assert_allclose(out.mean(axis=-1), 0.0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=-1), 1.0 / (1.0 + 1e-5 / x.var(axis=-1)), rtol=1e-10)
    norm.weight.data[...] = np.arange(6)
    norm.bias.data[...] = -1.0
    xhat = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(norm(Tensor(x)).data, xhat * np.arange(6) - 1.0, rtol=1e-10, atol=1e-12)
    assert LayerNorm(6, bias=False).bias is None and LayerNorm(6, bias=False).num_parameters() == 6


def test_layer_norm_refuses_an_input_of_another_dtype():
    with pytest.raises(TypeError, match="dtype mismatch between input float64 and weight float32"):
        LayerNorm(3)(Tensor(np.arange(3.0), dtype=F64))


def test_dropout_zeroes_a_fraction_p_and_rescales_the_rest_while_training():
    drop = Dropout(0.25, rng=np.random.default_rng(0))
    out = drop(Tensor(np.ones((200, 200)), dtype=np.float32)).data
    kept = out != 0
    # 40,000 Bernoulli(0.75) draws: the kept fraction has std sqrt(0.75 * 0.25 / 40000) = 0.002
    assert abs(kept.mean() - 0.75) < 0.01
    np.testing.assert_allclose(out[kept], 1 / 0.75, rtol=1e-6)


def test_dropout_is_the_identity_in_eval_mode_and_reproducible_with_a_seed():
    x = Tensor(np.random.default_rng(0).normal(size=(3, 7)), dtype=np.float32)
    drop = Dropout(0.5, rng=np.random.default_rng(1)).eval()
    assert drop(x) is x
    a = Dropout(0.5, rng=np.random.default_rng(7))(x).data
    b = Dropout(0.5, rng=np.random.default_rng(7))(x).data
    np.testing.assert_array_equal(a, b)
    for p in (-0.1, 1.0):
        with pytest.raises(ValueError, match=r"\[0, 1\)"):
            Dropout(p)


def test_gelu_module_matches_the_tanh_formula():
    x = np.linspace(-4, 4, 17)
    expected = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
    np.testing.assert_allclose(GELU()(Tensor(x, dtype=F64)).data, expected, rtol=1e-12, atol=1e-15)


# ----------------------------------------------------------------------------------------------
# Gradient checks of every module (float64, tiny sizes, all inputs and parameters)


def _tiny_config(**changes) -> GPTConfig:
    settings = dict(vocab_size=7, context_length=4, d_model=4, n_layer=1, n_head=2)
    settings.update(changes)
    return GPTConfig(**settings)


def _check_module(module: Module, x: Tensor) -> None:
    """gradcheck of the module's output with respect to its input and every parameter."""
    assert gradcheck(lambda x, *params: module(x), x, *module.parameters())


@pytest.mark.parametrize("bias", [True, False])
def test_linear_gradcheck(bias):
    rng = np.random.default_rng(0)
    layer = randomize(Linear(3, 2, bias=bias, dtype=F64), rng)
    _check_module(layer, Tensor(rng.normal(size=(2, 2, 3)), dtype=F64, requires_grad=True))


@pytest.mark.parametrize("bias", [True, False])
def test_layer_norm_gradcheck(bias):
    rng = np.random.default_rng(1)
    norm = randomize(LayerNorm(5, bias=bias, dtype=F64), rng, scale=1.0)
    _check_module(norm, Tensor(rng.normal(size=(3, 5)), dtype=F64, requires_grad=True))


def test_embedding_gradcheck_with_repeated_ids():
    rng = np.random.default_rng(2)
    emb = Embedding(5, 3, rng=rng, dtype=F64)
    ids = np.array([[1, 1, 4], [4, 0, 1]])
    assert gradcheck(lambda weight: emb(ids), emb.weight)


def test_multi_head_attention_gradcheck():
    rng = np.random.default_rng(3)
    attn = randomize(MultiHeadAttention(_tiny_config(d_model=6, n_head=3), rng, dtype=F64), rng)
    _check_module(attn, Tensor(rng.normal(size=(2, 4, 6)), dtype=F64, requires_grad=True))


def test_multi_head_attention_gradcheck_with_a_padding_mask():
    rng = np.random.default_rng(4)
    attn = randomize(MultiHeadAttention(_tiny_config(), rng, dtype=F64), rng)
    x = Tensor(rng.normal(size=(2, 4, 4)), dtype=F64, requires_grad=True)
    padding = np.zeros((2, 1, 1, 4), dtype=bool)
    padding[1, ..., 3] = True  # the second sequence ends with one pad token: no query sees it
    assert not np.allclose(attn(x, padding).data[1, 3], attn(x).data[1, 3])
    assert gradcheck(lambda x, *params: attn(x, padding), x, *attn.parameters())


def test_mlp_gradcheck():
    rng = np.random.default_rng(5)
    mlp = randomize(MLP(_tiny_config(d_model=3, n_head=1), rng, dtype=F64), rng)
    _check_module(mlp, Tensor(rng.normal(size=(2, 3)), dtype=F64, requires_grad=True))


@pytest.mark.parametrize("bias", [True, False])
def test_transformer_block_gradcheck(bias):
    rng = np.random.default_rng(6)
    block = randomize(TransformerBlock(_tiny_config(bias=bias), rng, dtype=F64), rng)
    _check_module(block, Tensor(rng.normal(size=(2, 3, 4)), dtype=F64, requires_grad=True))


def test_transformer_block_gradcheck_with_dropout_replayed_from_a_saved_rng_state():
    rng = np.random.default_rng(7)
    block = randomize(TransformerBlock(_tiny_config(dropout=0.3), rng, dtype=F64), rng)
    x = Tensor(rng.normal(size=(2, 3, 4)), dtype=F64, requires_grad=True)
    state = block.attn.rng.bit_generator.state  # one generator drives all three dropouts

    def forward(x, *params):
        block.attn.rng.bit_generator.state = state  # the same dropout masks on every call
        return block(x)

    assert not np.allclose(forward(x).data, block.eval()(x).data)  # dropout is really on
    block.train()
    assert gradcheck(forward, x, *block.parameters())


GPT_VARIANTS = {
    "learned-tied-bias": {},
    "learned-untied": dict(tie_weights=False),
    "learned-no-bias": dict(bias=False),
    "sinusoidal-tied": dict(position="sinusoidal"),
    "sinusoidal-untied-no-bias": dict(position="sinusoidal", tie_weights=False, bias=False),
    "two-layers": dict(n_layer=2),
}


@pytest.mark.parametrize("changes", GPT_VARIANTS.values(), ids=GPT_VARIANTS.keys())
def test_gpt_gradcheck_over_all_parameters(changes):
    rng = np.random.default_rng(8)
    model = randomize(GPT(_tiny_config(**changes), rng, dtype=F64), rng)
    idx = np.array([[1, 6, 1, 0], [2, 3, 5, 5]])  # repeated ids exercise the embedding backward
    assert gradcheck(lambda *params: model(idx), *model.parameters())


def test_gpt_loss_gradcheck_over_all_parameters():
    rng = np.random.default_rng(9)
    model = randomize(GPT(_tiny_config(), rng, dtype=F64), rng)
    idx, targets = np.array([[1, 6, 1]]), np.array([[6, 1, 2]])
    assert gradcheck(lambda *params: model(idx, targets)[1], *model.parameters())


# ----------------------------------------------------------------------------------------------
# functional: linear, causal_mask, scaled_dot_product_attention


def _t(rng, *shape, requires_grad=True) -> Tensor:
    return Tensor(rng.normal(size=shape), dtype=F64, requires_grad=requires_grad)


@pytest.mark.parametrize("x_shape", [(3,), (4, 3), (2, 5, 3)], ids=["vector", "matrix", "batched"])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_function_gradcheck(x_shape, bias):
    rng = np.random.default_rng(10)
    x, w = _t(rng, *x_shape), _t(rng, 2, 3)
    b = _t(rng, 2) if bias else None
    inputs = (x, w) + ((b,) if bias else ())
    assert gradcheck(lambda x, w, *b: F.linear(x, w, *b), *inputs)
    expected = x.data @ w.data.T + (b.data if bias else 0)
    np.testing.assert_allclose(F.linear(*inputs).data, expected, rtol=1e-12, atol=1e-14)


def test_linear_function_computes_only_the_gradients_that_are_required():
    rng = np.random.default_rng(11)
    x, w, b = _t(rng, 4, 3, requires_grad=False), _t(rng, 2, 3, requires_grad=False), _t(rng, 2)
    out = F.linear(x, w, b)
    grads = out._backward(np.ones((4, 2)))
    assert grads[0] is None and grads[1] is None
    np.testing.assert_array_equal(grads[2], [4.0, 4.0])


def test_causal_mask_blocks_the_future_of_each_query():
    causal = A.causal_mask(3, 3)
    assert causal.dtype == bool
    np.testing.assert_array_equal(causal, [[False, True, True], [False, False, True], [False, False, False]])
    # two new queries at positions 2 and 3 of four keys (decoding with a cache)
    np.testing.assert_array_equal(A.causal_mask(2, 4), [[False, False, False, True], [False] * 4])
    assert not A.causal_mask(1, 5).any()  # the newest token sees every earlier one


def _attention_reference(q, k, v, blocked, keep=None):
    """softmax(q k^T / sqrt(d), blocked = -inf) v in plain NumPy (float64)."""
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    scores = np.where(blocked, -np.inf, scores)
    p = np.exp(scores - scores.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    if keep is not None:
        p = p * keep
    return p @ v


ATTENTION_CASES = {
    "causal-square": dict(shape=(2, 3, 4, 3), tq=4, causal=True),
    "causal-fewer-queries": dict(shape=(2, 3, 5, 3), tq=2, causal=True),
    "not-causal": dict(shape=(1, 2, 4, 3), tq=3, causal=False),
    "causal-and-padding": dict(shape=(2, 2, 5, 3), tq=3, causal=True, pad=True),
    "causal-square-and-padding": dict(shape=(2, 2, 5, 3), tq=5, causal=True, pad="last"),
}


def _attention_inputs(case, seed=12):
    rng = np.random.default_rng(seed)
    *lead, tk, d = case["shape"]
    q, k, v = _t(rng, *lead, case["tq"], d), _t(rng, *lead, tk, d), _t(rng, *lead, tk, d)
    mask = None
    if case.get("pad"):
        mask = np.zeros((lead[0], 1, 1, tk), dtype=bool)
        # left padding: sequence 1 never attends to key 0 (or, with as many queries as keys,
        # where query 0 sees key 0 alone, to the last key)
        mask[1, ..., -1 if case["pad"] == "last" else 0] = True
    return q, k, v, mask


@pytest.fixture(params=[32, 2], ids=["one-block", "blocks-of-2"])
def attention_block(request, monkeypatch):
    """Run a test with the default block of query rows, and with blocks of 2 so that the small
    cases go through the blocked causal path too."""
    monkeypatch.setattr(A, "ATTENTION_BLOCK", request.param)
    return request.param


@pytest.mark.parametrize("case", ATTENTION_CASES.values(), ids=ATTENTION_CASES.keys())
def test_attention_matches_a_numpy_reference(case, attention_block):
    q, k, v, mask = _attention_inputs(case)
    blocked = np.zeros((q.shape[-2], k.shape[-2]), bool)
    if case["causal"]:
        blocked = A.causal_mask(q.shape[-2], k.shape[-2])
    if mask is not None:
        blocked = blocked | mask
    out = A.scaled_dot_product_attention(q, k, v, causal=case["causal"], mask=mask)
    np.testing.assert_allclose(out.data, _attention_reference(q.data, k.data, v.data, blocked),
                               rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("case", ATTENTION_CASES.values(), ids=ATTENTION_CASES.keys())
def test_attention_gradcheck(case, attention_block):
    q, k, v, mask = _attention_inputs(case)
    assert gradcheck(lambda q, k, v: A.scaled_dot_product_attention(q, k, v, case["causal"], mask), q, k, v)


@pytest.mark.parametrize("case", ATTENTION_CASES.values(), ids=ATTENTION_CASES.keys())
def test_fused_attention_equals_the_composed_reference_in_value_and_gradient(case, attention_block):
    weights = np.random.default_rng(13).normal(size=case["shape"][:-2] + (case["tq"], case["shape"][-1]))
    results = []
    for attention in (A.scaled_dot_product_attention, A.scaled_dot_product_attention_composed):
        q, k, v, mask = _attention_inputs(case)
        out = attention(q, k, v, causal=case["causal"], mask=mask)
        (out * weights).sum().backward()
        results.append((out.data, q.grad, k.grad, v.grad))
    for fused, composed in zip(*results):
        np.testing.assert_allclose(fused, composed, rtol=1e-10, atol=1e-12)


def test_attention_dropout_drops_weights_with_the_seeded_rng_and_passes_gradcheck(attention_block):
    case = ATTENTION_CASES["causal-fewer-queries"]
    q, k, v, _ = _attention_inputs(case)
    p = 0.4

    def attend(q, k, v):
        return A.scaled_dot_product_attention(q, k, v, dropout_p=p, training=True,
                                              rng=np.random.default_rng(14))

    mask, scale = F.dropout_mask(q.shape[:-1] + (k.shape[-2],), p, np.random.default_rng(14))
    keep = mask * scale
    blocked = A.causal_mask(q.shape[-2], k.shape[-2])
    expected = _attention_reference(q.data, k.data, v.data, blocked, keep)
    np.testing.assert_allclose(attend(q, k, v).data, expected, rtol=1e-12, atol=1e-14)
    assert gradcheck(attend, q, k, v)
    # not training: no dropout, whatever dropout_p says
    no_dropout = A.scaled_dot_product_attention(q, k, v, dropout_p=p, training=False)
    np.testing.assert_array_equal(no_dropout.data, A.scaled_dot_product_attention(q, k, v).data)


@pytest.mark.parametrize("case", [c for c in ATTENTION_CASES.values() if c["tq"] == c["shape"][-2]],
                         ids=[n for n, c in ATTENTION_CASES.items() if c["tq"] == c["shape"][-2]])
def test_packed_attention_equals_attention_on_the_three_slices(case, attention_block):
    q, k, v, mask = _attention_inputs(case)
    weights = np.random.default_rng(16).normal(size=q.shape)
    qkv = Tensor(np.stack([q.data, k.data, v.data]).transpose(1, 2, 0, 3, 4).copy().transpose(2, 0, 1, 3, 4),
                 requires_grad=True)  # the strided layout a fused projection gives
    packed = A.packed_attention(qkv, causal=case["causal"], mask=mask)
    (packed * weights).sum().backward()
    separate = A.scaled_dot_product_attention(q, k, v, causal=case["causal"], mask=mask)
    (separate * weights).sum().backward()
    np.testing.assert_array_equal(packed.data, separate.data)
    for i, t in enumerate((q, k, v)):
        np.testing.assert_allclose(qkv.grad[i], t.grad, rtol=1e-12, atol=1e-14)
    assert gradcheck(lambda x: A.packed_attention(x, causal=case["causal"], mask=mask), qkv)
    with pytest.raises(ValueError, match=r"stacked as \(3, ..., T, d\)"):
        A.packed_attention(Tensor(np.zeros((2, 4, 3))))


def test_causal_query_blocks_see_exactly_the_keys_up_to_their_last_position(monkeypatch):
    monkeypatch.setattr(A, "ATTENTION_BLOCK", 2)
    # 5 queries at positions 2..6 of 7 keys: the block of queries 0-1 ends at position 3
    assert A._query_blocks(5, 7, causal=True) == [(0, 2, 4), (2, 4, 6), (4, 5, 7)]
    assert A._query_blocks(5, 7, causal=False) == [(0, 5, 7)]
    assert A._query_blocks(2, 7, causal=True) == [(0, 2, 7)]
    monkeypatch.setattr(A, "ATTENTION_BLOCK", 32)
    # four blocks of a long sequence, or fewer of at least 32 rows
    assert A._query_blocks(256, 256, causal=True) == [(0, 64, 64), (64, 128, 128), (128, 192, 192),
                                                      (192, 256, 256)]
    assert A._query_blocks(64, 64, causal=True) == [(0, 32, 32), (32, 64, 64)]
    assert A._query_blocks(32, 40, causal=True) == [(0, 32, 40)]


def test_attention_errors_are_clear():
    rng = np.random.default_rng(15)
    q, k, v = _t(rng, 3, 2), _t(rng, 2, 2), _t(rng, 2, 2)
    with pytest.raises(ValueError, match="incompatible shapes"):
        A.scaled_dot_product_attention(q, k, v)  # more queries than keys
    q = _t(rng, 2, 2)
    with pytest.raises(TypeError, match="needs rng"):
        A.scaled_dot_product_attention(q, k, v, dropout_p=0.1, training=True)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        A.scaled_dot_product_attention(q, k, v, dropout_p=1.0)
    with pytest.raises(TypeError, match="dtype mismatch between q float32, k float64"):
        A.scaled_dot_product_attention(Tensor(q.data, dtype=np.float32), k, v)
    with pytest.raises(ValueError, match="entirely -inf"):
        A.scaled_dot_product_attention(q, k, v, mask=np.array([True, False]))  # query 0 sees nothing
