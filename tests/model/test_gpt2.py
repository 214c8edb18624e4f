"""GPT-2 interop: Hugging Face checkpoints we write ourselves, in GPT-2's names and Conv1D layout,
load into our GPT with the right weights and logits; export and load round-trip exactly; broken
folders give clear errors. The reference for the logits is a PyTorch GPT-2 written here from
GPT-2's own tensors (Conv1D: x @ W + b), independently of our model and of ``export_gpt2``."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from tinygrad_llm import GPT, BPETokenizer, CheckpointError, GPTConfig, export_gpt2, load_gpt2
from tinygrad_llm.model.state import load_safetensors, save_safetensors

SIZES = dict(vocab_size=61, n_positions=16, n_embd=24, n_layer=2, n_head=3)


def hf_config(**changes) -> dict:
    config = {"model_type": "gpt2", "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5,
              "n_ctx": SIZES["n_positions"], **SIZES}
    config.update(changes)
    return config


def hf_tensors(dtype=np.float64, seed: int = 0, n_layer: int = SIZES["n_layer"]) -> dict[str, np.ndarray]:
    """Random GPT-2 weights under GPT-2's names, Conv1D weights stored (in, out)."""
    rng = np.random.default_rng(seed)
    V, T, C = SIZES["vocab_size"], SIZES["n_positions"], SIZES["n_embd"]

    def normal(*shape, std=0.2):
        return rng.normal(0.0, std, shape).astype(dtype)

    def norm(name):  # LayerNorm gains near 1, biases near 0, but not exactly (so mix-ups show)
        return {f"{name}.weight": 1 + normal(C, std=0.1), f"{name}.bias": normal(C, std=0.1)}

    tensors = {"wte.weight": normal(V, C), "wpe.weight": normal(T, C)}
    for i in range(n_layer):
        p = f"h.{i}."
        tensors.update({p + k: v for k, v in norm("ln_1").items()})
        tensors.update({p + "attn.c_attn.weight": normal(C, 3 * C), p + "attn.c_attn.bias": normal(3 * C),
                        p + "attn.c_proj.weight": normal(C, C), p + "attn.c_proj.bias": normal(C)})
        tensors.update({p + k: v for k, v in norm("ln_2").items()})
        tensors.update({p + "mlp.c_fc.weight": normal(C, 4 * C), p + "mlp.c_fc.bias": normal(4 * C),
                        p + "mlp.c_proj.weight": normal(4 * C, C), p + "mlp.c_proj.bias": normal(C)})
    tensors.update(norm("ln_f"))
    return tensors


def write_folder(folder, tensors, config=None, prefix="", metadata=None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config or hf_config()))
    save_safetensors(folder / "model.safetensors", {prefix + k: v for k, v in tensors.items()},
                     metadata if metadata is not None else {"format": "pt"})
    return folder


def write_raw_safetensors(path, entries: dict[str, tuple[str, tuple, bytes]]) -> None:
    """A safetensors file by hand, for dtypes NumPy cannot write (bfloat16)."""
    header, offset = {}, 0
    for name, (dtype, shape, data) in entries.items():
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"".join(d for _, _, d in entries.values()))


IDX = np.array([[3, 14, 15, 9, 26, 5, 35, 8, 9, 7, 9], [60, 0, 1, 1, 2, 3, 5, 8, 13, 21, 34]])


# ----------------------------------------------------------------------------------------------
# Loading: names, layout, config


def test_load_gpt2_translates_names_and_transposes_conv1d_weights(tmp_path):
    tensors = hf_tensors()
    model = load_gpt2(write_folder(tmp_path / "gpt2", tensors), dtype=np.float64)
    assert model.config == GPTConfig(vocab_size=61, context_length=16, d_model=24, n_layer=2, n_head=3,
                                     dropout=0.0, bias=True, tie_weights=True, position="learned")
    state = model.state_dict()
    np.testing.assert_array_equal(state["token_embedding.weight"], tensors["wte.weight"])
    np.testing.assert_array_equal(state["position_embedding.weight"], tensors["wpe.weight"])
    np.testing.assert_array_equal(state["final_norm.bias"], tensors["ln_f.bias"])
    conv1d = {"attn.qkv": "attn.c_attn", "attn.proj": "attn.c_proj", "mlp.up": "mlp.c_fc",
              "mlp.down": "mlp.c_proj"}                    # stored (in, out): transposed
    norms = {"norm1": "ln_1", "norm2": "ln_2"}
    for i in range(2):
        mine = lambda name: state[f"blocks.{i}.{name}"]      # noqa: E731
        gpt2 = lambda name: tensors[f"h.{i}.{name}"]         # noqa: E731
        for ours, theirs in conv1d.items():
            np.testing.assert_array_equal(mine(f"{ours}.weight"), gpt2(f"{theirs}.weight").T)
            np.testing.assert_array_equal(mine(f"{ours}.bias"), gpt2(f"{theirs}.bias"))
        for ours, theirs in norms.items():
            for kind in ("weight", "bias"):
                np.testing.assert_array_equal(mine(f"{ours}.{kind}"), gpt2(f"{theirs}.{kind}"))
    assert model.output_weight() is model.token_embedding.weight
    assert not model.training


def test_loaded_arrays_are_the_models_own_not_views_of_the_file(tmp_path):
    model = load_gpt2(write_folder(tmp_path / "gpt2", hf_tensors(np.float32)))
    for name, array in model.state_dict().items():
        assert array.dtype == np.float32 and array.flags.writeable and array.flags.c_contiguous, name
        assert not isinstance(array, np.memmap) and array.base is None, name


@pytest.mark.parametrize("layout", ["plain", "transformer-prefix", "with-buffers-and-lm-head", "n_ctx-only"])
def test_the_layouts_transformers_writes_all_load_the_same(tmp_path, layout):
    tensors = hf_tensors()
    expected = load_gpt2(write_folder(tmp_path / "plain", tensors), dtype=np.float64)(IDX).data
    config, prefix, extra = hf_config(), "", {}
    if layout == "transformer-prefix":       # GPT2LMHeadModel.save_pretrained
        prefix = "transformer."
    elif layout == "with-buffers-and-lm-head":  # older transformers: the causal mask buffers, a tied head
        T = SIZES["n_positions"]
        for i in range(SIZES["n_layer"]):
            extra[f"h.{i}.attn.bias"] = np.tril(np.ones((1, 1, T, T), np.float32))
            extra[f"h.{i}.attn.masked_bias"] = np.array(-1e4, np.float32)
        extra["lm_head.weight"] = tensors["wte.weight"]
    elif layout == "n_ctx-only":
        del config["n_positions"]
    model = load_gpt2(write_folder(tmp_path / layout, {**tensors, **extra}, config, prefix), dtype=np.float64)
    np.testing.assert_array_equal(model(IDX).data, expected)


def test_a_sharded_checkpoint_loads_from_its_index(tmp_path):
    tensors = hf_tensors()
    expected = load_gpt2(write_folder(tmp_path / "single", tensors), dtype=np.float64)(IDX).data
    folder = tmp_path / "sharded"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(hf_config()))
    names = list(tensors)
    shards = {"model-00001-of-00002.safetensors": names[:10], "model-00002-of-00002.safetensors": names[10:]}
    for file_name, shard in shards.items():
        save_safetensors(folder / file_name, {f"transformer.{n}": tensors[n] for n in shard},
                         {"format": "pt"})
    weight_map = {f"transformer.{n}": file_name for file_name, shard in shards.items() for n in shard}
    index = {"metadata": {}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    np.testing.assert_array_equal(load_gpt2(folder, dtype=np.float64)(IDX).data, expected)


def test_float16_and_bfloat16_weights_are_converted_to_the_model_dtype(tmp_path):
    tensors = hf_tensors(np.float32)
    half = {name: array.astype(np.float16) for name, array in tensors.items()}
    model = load_gpt2(write_folder(tmp_path / "f16", half))
    np.testing.assert_array_equal(model.blocks[1].mlp.down.weight.data,
                                  half["h.1.mlp.c_proj.weight"].astype(np.float32).T)

    folder = tmp_path / "bf16"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(hf_config()))
    bits = {name: (array.view(np.uint32) >> 16).astype("<u2") for name, array in tensors.items()}  # truncate
    write_raw_safetensors(folder / "model.safetensors",
                          {name: ("BF16", b.shape, b.tobytes()) for name, b in bits.items()})
    model = load_gpt2(folder)
    as_float = (bits["h.0.attn.c_attn.weight"].astype(np.uint32) << 16).view(np.float32)
    np.testing.assert_array_equal(model.blocks[0].attn.qkv.weight.data, as_float.T)


def test_an_untied_checkpoint_loads_its_lm_head(tmp_path):
    tensors = hf_tensors()
    tensors["lm_head.weight"] = np.random.default_rng(5).normal(0, 0.2, (61, 24))
    model = load_gpt2(write_folder(tmp_path / "gpt2", tensors, hf_config(tie_word_embeddings=False)),
                      dtype=np.float64)
    assert not model.config.tie_weights
    np.testing.assert_array_equal(model.head.weight.data, tensors["lm_head.weight"])  # nn.Linear: as stored


def test_the_tokenizer_of_a_gpt2_folder_is_read_by_from_gpt2(tmp_path):
    tokenizer = BPETokenizer.train("the cat sat on the mat; the cat ate", 270, pattern="gpt2")
    folder = write_folder(tmp_path / "gpt2", hf_tensors())
    tokenizer.save_gpt2(folder)
    loaded = BPETokenizer.from_gpt2(folder)
    assert loaded.encode("the cat sat") == tokenizer.encode("the cat sat")


# ----------------------------------------------------------------------------------------------
# Logits against a PyTorch GPT-2 built from GPT-2's tensors


def torch_gpt2_logits(tensors: dict[str, np.ndarray], n_head: int, idx: np.ndarray) -> np.ndarray:
    """GPT-2's forward pass in float64, straight from its tensors: Conv1D layers are x @ W + b."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    t = {name: torch.from_numpy(np.asarray(array, dtype=np.float64)) for name, array in tensors.items()}
    idx = torch.from_numpy(idx)
    B, T = idx.shape
    C = t["wte.weight"].shape[1]
    hs = C // n_head
    x = t["wte.weight"][idx] + t["wpe.weight"][:T]
    layer = 0
    while f"h.{layer}.ln_1.weight" in t:
        p = f"h.{layer}."
        h = F.layer_norm(x, (C,), t[p + "ln_1.weight"], t[p + "ln_1.bias"], eps=1e-5)
        q, k, v = (h @ t[p + "attn.c_attn.weight"] + t[p + "attn.c_attn.bias"]).split(C, dim=-1)
        q, k, v = (z.view(B, T, n_head, hs).transpose(1, 2) for z in (q, k, v))  # (B, nh, T, hs)
        scores = (q @ k.transpose(-2, -1)) / hs ** 0.5
        scores = scores.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf"))
        y = (scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(B, T, C)
        x = x + y @ t[p + "attn.c_proj.weight"] + t[p + "attn.c_proj.bias"]
        h = F.layer_norm(x, (C,), t[p + "ln_2.weight"], t[p + "ln_2.bias"], eps=1e-5)
        h = F.gelu(h @ t[p + "mlp.c_fc.weight"] + t[p + "mlp.c_fc.bias"], approximate="tanh")
        x = x + h @ t[p + "mlp.c_proj.weight"] + t[p + "mlp.c_proj.bias"]
        layer += 1
    x = F.layer_norm(x, (C,), t["ln_f.weight"], t["ln_f.bias"], eps=1e-5)
    head = t["lm_head.weight"] if "lm_head.weight" in t else t["wte.weight"]
    return (x @ head.T).numpy()


@pytest.mark.parametrize("tied", [True, False], ids=["tied", "untied"])
def test_logits_match_a_torch_gpt2_built_from_the_checkpoint(tmp_path, tied):
    tensors = hf_tensors()
    if not tied:
        tensors["lm_head.weight"] = np.random.default_rng(7).normal(0, 0.2, (61, 24))
    reference = torch_gpt2_logits(tensors, SIZES["n_head"], IDX)
    model = load_gpt2(write_folder(tmp_path / "gpt2", tensors, hf_config(tie_word_embeddings=tied)),
                      dtype=np.float64)
    np.testing.assert_allclose(model(IDX).data, reference, rtol=0, atol=1e-9)


# ----------------------------------------------------------------------------------------------
# Export


def random_model(dtype=np.float32, **changes) -> GPT:
    config = GPTConfig(**{"vocab_size": 61, "context_length": 16, "d_model": 24, "n_layer": 2, "n_head": 3,
                          **changes})
    model = GPT(config, np.random.default_rng(1), dtype=dtype)
    for p in model.parameters():   # not the init's zeros and ones: every tensor distinct
        p.data[...] = np.random.default_rng(p.size).normal(0, 0.3, p.shape)
    return model


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("tied", [True, False], ids=["tied", "untied"])
def test_export_then_load_gives_identical_tensors_and_logits(tmp_path, dtype, tied):
    model = random_model(dtype, tie_weights=tied)
    loaded = load_gpt2(export_gpt2(model, tmp_path / "out"), dtype=dtype)
    assert loaded.config == model.config
    original, restored = model.state_dict(), loaded.state_dict()
    assert list(restored) == list(original)
    for name in original:
        assert restored[name].dtype == original[name].dtype
        np.testing.assert_array_equal(restored[name], original[name], err_msg=name)
    np.testing.assert_array_equal(loaded(IDX).data, model.eval()(IDX).data)


def test_export_writes_gpt2_names_conv1d_layout_and_a_transformers_config(tmp_path):
    model = random_model()
    folder = export_gpt2(model, tmp_path / "out")
    tensors, metadata = load_safetensors(folder / "model.safetensors")
    assert metadata == {"format": "pt"}   # transformers refuses a file without it
    assert all(name.startswith("transformer.") for name in tensors)
    assert len(tensors) == 4 + 12 * 2
    np.testing.assert_array_equal(tensors["transformer.h.1.attn.c_attn.weight"],
                                  model.blocks[1].attn.qkv.weight.data.T)
    np.testing.assert_array_equal(tensors["transformer.h.0.mlp.c_proj.weight"],
                                  model.blocks[0].mlp.down.weight.data.T)
    config = json.loads((folder / "config.json").read_text())
    assert {k: config[k] for k in ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head")} == \
        {"vocab_size": 61, "n_positions": 16, "n_embd": 24, "n_layer": 2, "n_head": 3}
    assert config["model_type"] == "gpt2" and config["activation_function"] == "gelu_new"
    assert config["architectures"] == ["GPT2LMHeadModel"] and config["tie_word_embeddings"] is True
    assert config["layer_norm_epsilon"] == 1e-5 and config["eos_token_id"] is None


def test_export_with_a_gpt2_style_tokenizer_writes_a_complete_folder(tmp_path):
    tokenizer = BPETokenizer.train("the cat sat on the mat; the cat ate", 270, pattern="gpt2")
    folder = export_gpt2(random_model(vocab_size=tokenizer.vocab_size), tmp_path / "out", tokenizer)
    assert BPETokenizer.from_gpt2(folder).encode("the mat") == tokenizer.encode("the mat")
    assert json.loads((folder / "config.json").read_text())["eos_token_id"] == tokenizer.eot_id


def test_special_tokens_stay_special_in_the_exported_tokenizer_files(tmp_path):
    tokenizer = BPETokenizer.train("the cat sat on the mat; the cat ate " * 5, 272, pattern="gpt2",
                                   special_tokens=("<|endoftext|>", "<|user|>"))
    folder = export_gpt2(random_model(vocab_size=tokenizer.vocab_size), tmp_path / "out", tokenizer)
    user, eot = tokenizer.special_tokens["<|user|>"], tokenizer.eot_id
    settings = json.loads((folder / "tokenizer_config.json").read_text())
    assert settings["added_tokens_decoder"][str(user)] == {"content": "<|user|>", "lstrip": False, "normalized": False,
                                                           "rstrip": False, "single_word": False, "special": True}
    assert settings["eos_token"] == settings["bos_token"] == "<|endoftext|>" and settings["model_max_length"] == 16
    assert json.loads((folder / "special_tokens_map.json").read_text())["additional_special_tokens"] == ["<|user|>"]
    assert json.loads((folder / "added_tokens.json").read_text()) == {"<|endoftext|>": eot, "<|user|>": user}
    assert BPETokenizer.from_gpt2(folder).special_tokens == tokenizer.special_tokens


def test_transformers_keeps_our_special_tokens_whole(tmp_path):
    transformers = pytest.importorskip("transformers")
    tokenizer = BPETokenizer.train("the cat sat on the mat; the cat ate " * 5, 272, pattern="gpt2",
                                   special_tokens=("<|endoftext|>", "<|user|>"))
    folder = export_gpt2(random_model(vocab_size=tokenizer.vocab_size), tmp_path / "out", tokenizer)
    text = "a<|user|>b the cat<|endoftext|>"
    ours = tokenizer.encode(text, allowed_special="all")
    for fast in (True, False):
        theirs = transformers.AutoTokenizer.from_pretrained(str(folder), use_fast=fast)
        assert theirs(text)["input_ids"] == ours, f"use_fast={fast}"
        assert theirs.eos_token_id == tokenizer.eot_id
    assert ours[:3] == [tokenizer.encode("a")[0], tokenizer.special_tokens["<|user|>"], tokenizer.encode("b")[0]]


def test_a_tokenizer_without_endoftext_is_refused(tmp_path):
    tokenizer = BPETokenizer.train("the cat sat on the mat", 265, pattern="gpt2", special_tokens=())
    with pytest.raises(ValueError, match="no <\\|endoftext\\|> token"):
        export_gpt2(random_model(), tmp_path / "out", tokenizer)


def test_config_names_the_dtype_with_the_current_key(tmp_path):
    config = json.loads((export_gpt2(random_model(), tmp_path / "out") / "config.json").read_text())
    assert config["dtype"] == "float32" and "torch_dtype" not in config


def test_transformers_reads_the_export_and_agrees(tmp_path):
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    model = random_model()
    theirs = transformers.GPT2LMHeadModel.from_pretrained(export_gpt2(model, tmp_path / "out")).eval()
    with torch.no_grad():
        logits = theirs(torch.from_numpy(IDX)).logits.numpy()
    np.testing.assert_allclose(logits, model.eval()(IDX).data, rtol=1e-4, atol=1e-4)
    theirs.save_pretrained(tmp_path / "again")   # and what transformers writes loads into ours
    np.testing.assert_allclose(load_gpt2(tmp_path / "again")(IDX).data, logits, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("changes, message", [
    ({"position": "sinusoidal"}, "learned positions"),
    ({"bias": False}, "biases"),
])
def test_models_gpt2_cannot_express_are_not_exported(tmp_path, changes, message):
    with pytest.raises(ValueError, match=message):
        export_gpt2(random_model(**changes), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_tokenizer_with_another_split_pattern_is_not_exported(tmp_path):
    tokenizer = BPETokenizer.train("the cat sat on the mat", 265, pattern="gpt4")
    with pytest.raises(ValueError, match="GPT-2's pattern"):
        export_gpt2(random_model(), tmp_path / "out", tokenizer)


# ----------------------------------------------------------------------------------------------
# Errors


def test_missing_folder_and_files_are_named(tmp_path):
    with pytest.raises(CheckpointError, match="GPT-2 folder not found"):
        load_gpt2(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no config.json"):
        load_gpt2(tmp_path / "empty")
    folder = write_folder(tmp_path / "gpt2", hf_tensors())
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="no model.safetensors .*pickle"):
        load_gpt2(folder)


@pytest.mark.parametrize("changes, message", [
    ({"activation_function": "relu"}, "activation_function 'relu' is not supported"),
    ({"layer_norm_epsilon": 1e-6}, "layer_norm_epsilon 1e-06 is not supported"),
    ({"n_inner": 10}, "n_inner 10 is not supported"),
    ({"model_type": "gpt_neo"}, "GPT-2 checkpoints only"),
    ({"scale_attn_by_inverse_layer_idx": True}, "scale_attn_by_inverse_layer_idx"),
    ({"n_head": 5}, "not divisible by n_head 5"),
    ({"n_embd": "24"}, "n_embd must be an integer"),
    ({"n_layer": None}, "n_layer must be an integer"),
])
def test_unsupported_settings_in_config_json_are_named(tmp_path, changes, message):
    folder = write_folder(tmp_path / "gpt2", hf_tensors(), hf_config(**changes))
    with pytest.raises(CheckpointError, match=message):
        load_gpt2(folder)


def test_gelu_pytorch_tanh_is_the_same_activation(tmp_path):
    tensors = hf_tensors()
    expected = load_gpt2(write_folder(tmp_path / "a", tensors), dtype=np.float64)(IDX).data
    config = hf_config(activation_function="gelu_pytorch_tanh")
    model = load_gpt2(write_folder(tmp_path / "b", tensors, config), dtype=np.float64)
    np.testing.assert_array_equal(model(IDX).data, expected)


def test_an_integer_tensor_is_named_with_its_dtype(tmp_path):
    tensors = hf_tensors()
    tensors["h.1.ln_2.bias"] = np.zeros(24, dtype=np.int32)
    with pytest.raises(CheckpointError, match=r"tensor 'h.1.ln_2.bias' has dtype int32.*floating point"):
        load_gpt2(write_folder(tmp_path / "gpt2", tensors))


def test_a_mis_shaped_tensor_is_named_with_both_shapes(tmp_path):
    tensors = hf_tensors()
    tensors["h.0.attn.c_attn.weight"] = tensors["h.0.attn.c_attn.weight"].T.copy()  # stored (out, in)
    expected = r"'h.0.attn.c_attn.weight' has shape \(72, 24\), expected \(24, 72\)"
    with pytest.raises(CheckpointError, match=expected):
        load_gpt2(write_folder(tmp_path / "gpt2", tensors))


def test_a_config_that_disagrees_with_the_tensors_is_caught(tmp_path):
    with pytest.raises(CheckpointError, match=r"'wte.weight' has shape \(61, 24\), expected \(50, 24\)"):
        load_gpt2(write_folder(tmp_path / "gpt2", hf_tensors(), hf_config(vocab_size=50)))


def test_missing_and_unknown_tensors_are_listed(tmp_path):
    tensors = hf_tensors()
    del tensors["h.1.mlp.c_fc.bias"]
    with pytest.raises(CheckpointError, match="missing tensors h.1.mlp.c_fc.bias"):
        load_gpt2(write_folder(tmp_path / "a", tensors))
    with pytest.raises(CheckpointError, match="unexpected tensors h.2.ln_1.weight"):
        load_gpt2(write_folder(tmp_path / "b", {**hf_tensors(), "h.2.ln_1.weight": np.ones(24)}))
    with pytest.raises(CheckpointError, match="missing tensors lm_head.weight"):
        load_gpt2(write_folder(tmp_path / "c", hf_tensors(), hf_config(tie_word_embeddings=False)))
