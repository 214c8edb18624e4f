"""GGUF: our block quantizers against the gguf package's, and a GPT and its tokenizer there and back."""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_llm import GPT, BPETokenizer, GPTConfig
from tinygrad_llm.model.gguf import dequantize_blocks, q4_1_from_grid, quantize_blocks

gguf = pytest.importorskip("gguf", reason='the gguf package is not installed (pip install -e ".[gguf]")')

from tinygrad_llm.compress.export import export_gguf, load_gguf  # noqa: E402
from tinygrad_llm.compress.gptq import gptq_model  # noqa: E402

TEXT = 'The for statement iterates over a sequence: for x in "abc": print(x).\n' * 20
KINDS = {"q8_0": gguf.GGMLQuantizationType.Q8_0, "q4_0": gguf.GGMLQuantizationType.Q4_0,
         "q4_1": gguf.GGMLQuantizationType.Q4_1}


@pytest.mark.parametrize("kind", KINDS)
def test_our_blocks_are_bit_identical_to_gguf_quants(kind):
    rng = np.random.default_rng(0)
    x = (rng.standard_t(4, size=(24, 96)) * 0.1).astype(np.float32)
    x[3, :32] = 0.0                      # an all-zero block
    x[5, 40] = -7.0                      # one outlier
    ours = quantize_blocks(x, kind)
    theirs = gguf.quants.quantize(x, KINDS[kind])
    assert ours.dtype == np.uint8 and np.array_equal(ours, theirs)
    np.testing.assert_array_equal(dequantize_blocks(ours, kind, x.shape),
                                  gguf.quants.dequantize(theirs, KINDS[kind]))


def test_q4_1_holds_a_4_bit_grid_up_to_float16_scales():
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 16, (4, 128))
    scale = rng.uniform(0.01, 0.1, (4, 2)).astype(np.float32)
    offset = -scale * rng.integers(0, 16, (4, 2))
    data = q4_1_from_grid(codes, scale, offset, 64)
    values = dequantize_blocks(data, "q4_1", (4, 128))
    half = lambda a: np.repeat(a.astype(np.float16).astype(np.float32), 64, axis=1)
    np.testing.assert_array_equal(values, codes * half(scale) + half(offset))


@pytest.fixture(scope="module")
def tokenizer():
    return BPETokenizer.train(TEXT, 290, special_tokens=("<|endoftext|>",))


@pytest.fixture(scope="module")
def model(tokenizer):
    return GPT(GPTConfig(vocab_size=tokenizer.vocab_size, context_length=16, d_model=64, n_layer=2, n_head=2),
               rng=np.random.default_rng(0)).eval()


def logits(model, ids):
    return model(np.array([ids])).data


def test_f32_round_trip_gives_the_same_logits_and_tokenizer(tmp_path, model, tokenizer):
    path = export_gguf(model, tokenizer, tmp_path / "m.gguf", "f32")
    loaded, loaded_tokenizer = load_gguf(path)
    ids = tokenizer.encode("for x in abc")
    np.testing.assert_array_equal(logits(loaded, ids), logits(model, ids))
    sample = 'for x in "abc": print(x)<|endoftext|>The'
    assert loaded_tokenizer.encode(sample, allowed_special="all") == tokenizer.encode(sample, allowed_special="all")
    reader = gguf.GGUFReader(path)
    assert reader.fields["general.architecture"].contents() == "gpt2"
    assert reader.fields["tokenizer.ggml.pre"].contents() == "llama-bpe"
    types = reader.fields["tokenizer.ggml.token_type"].contents()
    assert types[tokenizer.eot_id] == 3 and types[0] == 1           # CONTROL and NORMAL
    names = {t.name for t in reader.tensors}
    assert {"token_embd.weight", "position_embd.weight", "blk.1.attn_qkv.weight", "blk.0.ffn_down.bias",
            "output_norm.weight"} <= names and "output.weight" not in names   # the head is tied


@pytest.mark.parametrize("dtype", ["f16", "q8_0", "q4_0"])
def test_quantized_exports_load_as_their_dequantized_weights(tmp_path, model, tokenizer, dtype):
    loaded, _ = load_gguf(export_gguf(model, tokenizer, tmp_path / f"m-{dtype}.gguf", dtype))
    for (name, ours), (_, theirs) in zip(model.named_parameters(), loaded.named_parameters()):
        if ours.ndim == 2 and not name.startswith("position"):
            if dtype == "f16":
                expected = ours.data.astype(np.float16).astype(np.float32)
            else:
                expected = gguf.quants.dequantize(gguf.quants.quantize(ours.data, KINDS[dtype]), KINDS[dtype])
        else:   # norms, biases and positions stay float32
            expected = ours.data
        np.testing.assert_array_equal(theirs.data, expected, err_msg=name)


def test_a_gptq_model_keeps_its_codes_in_q4_1(tmp_path, model, tokenizer):
    quantized = GPT(model.config, rng=np.random.default_rng(0))
    rng = np.random.default_rng(2)
    grids = gptq_model(quantized, [rng.integers(0, tokenizer.vocab_size, (4, 16))], bits=4, group_size=32)
    loaded, _ = load_gguf(export_gguf(quantized.eval(), tokenizer, tmp_path / "gptq.gguf", "f32", grids=grids))
    for name, grid in grids.items():
        got = loaded.get_submodule(name).weight.data
        half = lambda a: np.repeat(a.astype(np.float16).astype(np.float32), grid.group_size, axis=1)
        expected = (grid.codes + 8) * half(grid.scale) + half(-grid.scale * (grid.zero_point + 8.0))
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
        np.testing.assert_allclose(got, grid.dequantize(), atol=2e-3)   # the float16 rounding only


@pytest.mark.parametrize("change, fragment", [
    (dict(position="sinusoidal"), "learned positions"),
    (dict(bias=False), "biases"),
])
def test_models_llama_cpp_cannot_run_are_refused(tmp_path, tokenizer, change, fragment):
    config = GPTConfig(vocab_size=tokenizer.vocab_size, context_length=16, d_model=64, n_layer=1, n_head=2, **change)
    with pytest.raises(ValueError, match=fragment):
        export_gguf(GPT(config), tokenizer, tmp_path / "x.gguf")


def test_bad_exports_and_files_are_refused(tmp_path, model, tokenizer):
    with pytest.raises(ValueError, match="dtype must be one of"):
        export_gguf(model, tokenizer, tmp_path / "x.gguf", "q5_k")
    plain = BPETokenizer.train(TEXT, 290, special_tokens=())
    with pytest.raises(ValueError, match="<|endoftext|>"):
        export_gguf(GPT(GPTConfig(vocab_size=plain.vocab_size, context_length=16, d_model=64, n_layer=1, n_head=2)),
                    plain, tmp_path / "x.gguf")
    (tmp_path / "junk.gguf").write_bytes(b"not a gguf file at all")
    with pytest.raises(ValueError, match="not a readable GGUF file"):
        load_gguf(tmp_path / "junk.gguf")


def test_a_gpt2_pattern_tokenizer_is_written_with_its_own_pre_tokenizer(tmp_path):
    tokenizer = BPETokenizer.train(TEXT, 290, pattern="gpt2", special_tokens=("<|endoftext|>",))
    model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, context_length=16, d_model=32, n_layer=1, n_head=2),
                rng=np.random.default_rng(0)).eval()
    path = export_gguf(model, tokenizer, tmp_path / "gpt2.gguf")
    assert gguf.GGUFReader(path).fields["tokenizer.ggml.pre"].contents() == "gpt-2"
    _, loaded = load_gguf(path)
    assert loaded.pattern == tokenizer.pattern
    sample = "it's 2024:   don't<|endoftext|>"   # the two patterns split these differently
    assert loaded.encode(sample, allowed_special="all") == tokenizer.encode(sample, allowed_special="all")
