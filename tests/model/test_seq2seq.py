"""The encoder-decoder: cross-attention checked by finite differences, shared embeddings, masks."""

from __future__ import annotations

import doctest

import numpy as np

from tinygrad_llm import GPTConfig, Tensor, gradcheck, no_grad
from tinygrad_llm.model import seq2seq
from tinygrad_llm.model.seq2seq import CrossAttention, EncoderDecoder

CONFIG = GPTConfig(vocab_size=17, context_length=8, d_model=8, n_layer=2, n_head=2)
PAD = 16


def test_docstring_examples_run():
    assert doctest.testmod(seq2seq).failed == 0


def test_cross_attention_gradients_match_finite_differences_with_more_queries_than_keys():
    layer = CrossAttention(GPTConfig(vocab_size=5, d_model=4, n_head=2, n_layer=1), rng=np.random.default_rng(0),
                           dtype=np.float64)
    rng = np.random.default_rng(1)
    x = Tensor(rng.normal(size=(2, 5, 4)), requires_grad=True)          # 5 queries
    memory = Tensor(rng.normal(size=(2, 3, 4)), requires_grad=True)     # 3 keys
    mask = np.array([False, False, True])[None, None, None, :].repeat(2, axis=0)
    mask[1, ..., 2] = False
    w = rng.normal(size=(2, 5, 4))                                      # fixed weights, not a plain sum
    assert gradcheck(lambda a, m: layer(a, m, mask) * Tensor(w), x, memory)
    assert gradcheck(lambda q, kv: layer(x, memory, mask) * Tensor(w), layer.query.weight, layer.key_value.weight)


def test_cached_keys_and_values_give_the_same_output():
    layer = CrossAttention(GPTConfig(vocab_size=5, d_model=4, n_head=2, n_layer=1))
    rng = np.random.default_rng(2)
    x = Tensor(rng.normal(size=(1, 3, 4)).astype(np.float32))
    memory = Tensor(rng.normal(size=(1, 6, 4)).astype(np.float32))
    with no_grad():
        assert np.allclose(layer(x, memory).data, layer(x, layer.keys_values(memory)).data)


def test_the_decoder_is_causal_and_every_position_reads_the_whole_source():
    model = EncoderDecoder(CONFIG, pad_id=PAD, rng=np.random.default_rng(3))
    source, target = np.array([[1, 2, 3, 4]]), np.array([[5, 6, 7]])
    with no_grad():
        base = model(source, target).data
        later = target.copy()
        later[0, -1] = 9
        assert np.allclose(model(source, later).data[0, :2], base[0, :2])        # the past ignores the future
        other = source.copy()
        other[0, -1] = 9
        changed = np.abs(model(other, target).data - base).max(axis=-1)[0]
        assert (changed > 1e-6).all()                                             # every position sees the source


def test_padding_in_the_source_is_invisible():
    model = EncoderDecoder(CONFIG, pad_id=PAD, rng=np.random.default_rng(4))
    with no_grad():
        plain = model(np.array([[1, 2, 3]]), np.array([[5, 6]])).data
        padded = model(np.array([[1, 2, 3, PAD, PAD]]), np.array([[5, 6]])).data
    assert np.allclose(plain, padded, atol=1e-5)


def test_one_embedding_is_shared_and_training_reaches_both_stacks():
    model = EncoderDecoder(CONFIG, rng=np.random.default_rng(5), dtype=np.float64)
    names = [name for name, _ in model.named_parameters()]
    assert sum("token_embedding" in name for name in names) == 1
    logits, loss = model(np.array([[1, 2, 3]]), np.array([[4, 5]]), np.array([[5, 6]]))
    loss.backward()
    assert np.abs(model.encoder.blocks[0].attn.qkv.weight.grad).sum() > 0
    assert np.abs(model.blocks[0].cross.key_value.weight.grad).sum() > 0
    assert all(p.grad is not None for p in model.parameters())


def test_an_encoder_decoder_checkpoint_loaded_as_a_gpt_is_refused_by_name(tmp_path):
    import pytest

    from tinygrad_llm.model.encoder import Encoder
    from tinygrad_llm.model.state import CheckpointError
    from tinygrad_llm.train.spans import SpanCorruptedWindows, seq2seq_loss
    from tinygrad_llm.train.trainer import TrainConfig, Trainer, load_model
    from tinygrad_llm.text.spans import sentinel_ids

    model = EncoderDecoder(CONFIG)
    source = SpanCorruptedWindows(np.arange(200) % 12, 8, np.random.default_rng(0), sentinels=sentinel_ids(17, 4),
                                  start_id=12)
    trainer = Trainer(model, config=TrainConfig(steps=1, batch_size=2), log=None, batches=source,
                      objective=seq2seq_loss)
    trainer.train()
    trainer.save(tmp_path / "t5.safetensors")
    with pytest.raises(CheckpointError, match="model family is EncoderDecoder, not GPT"):
        load_model(tmp_path / "t5.safetensors")
    other = Trainer(Encoder(CONFIG), config=TrainConfig(steps=1, batch_size=2), log=None, batches=source,
                    objective=seq2seq_loss)
    with pytest.raises(CheckpointError, match="this trainer's is Encoder"):
        other.load(tmp_path / "t5.safetensors")
