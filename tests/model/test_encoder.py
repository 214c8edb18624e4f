"""The encoder: the GPT's blocks without the causal mask, a padding mask, a loss on labelled positions."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from tinygrad_llm import GPT, GPTConfig, gradcheck, no_grad
from tinygrad_llm.model import encoder
from tinygrad_llm.model.encoder import IGNORE, Encoder

CONFIG = GPTConfig(vocab_size=23, context_length=8, d_model=12, n_layer=2, n_head=3)
PAD = 22


def test_docstring_examples_run():
    assert doctest.testmod(encoder).failed == 0


def _pair(dtype=np.float32):
    gpt = GPT(CONFIG, rng=np.random.default_rng(0), dtype=dtype)
    enc = Encoder(CONFIG, pad_id=PAD, rng=np.random.default_rng(1), dtype=dtype)
    enc.load_state_dict(gpt.state_dict())     # the same parameters, by the same names
    return gpt, enc


def test_the_encoder_has_the_gpts_parameters_and_reuses_its_blocks():
    gpt, enc = _pair()
    assert list(gpt.state_dict()) == list(enc.state_dict())
    assert all(not block.attn.causal for block in enc.blocks) and all(b.attn.causal for b in gpt.blocks)


def test_a_later_token_changes_earlier_positions_in_the_encoder_only():
    gpt, enc = _pair()
    a = np.array([[1, 2, 3, 4, 5]])
    b = a.copy()
    b[0, -1] = 9
    with no_grad():
        for model, sees_ahead in ((gpt, False), (enc, True)):
            ha, hb = model.hidden_states(a).data, model.hidden_states(b).data
            assert (np.abs(ha[0, 0] - hb[0, 0]).max() > 1e-4) == sees_ahead
            assert np.abs(ha[0, -1] - hb[0, -1]).max() > 1e-4


def test_a_single_token_is_the_same_for_both():
    gpt, enc = _pair()
    with no_grad():
        assert np.allclose(gpt(np.array([[3]])).data, enc(np.array([[3]])).data, atol=1e-6)


def test_padding_keys_are_invisible_to_the_other_positions():
    _, enc = _pair()
    ids = np.array([[1, 2, 3, 4]])
    padded = np.array([[1, 2, 3, 4, PAD, PAD]])
    with no_grad():
        plain, with_pads = enc.hidden_states(ids).data, enc.hidden_states(padded).data
    assert np.allclose(plain[0], with_pads[0, :4], atol=1e-5)
    assert enc.padding_mask(padded).shape == (1, 1, 1, 6) and enc.padding_mask(ids) is None


def test_the_loss_counts_labelled_positions_only():
    _, enc = _pair(np.float64)
    ids = np.array([[1, 2, 3, 4, 5, 6]])
    labels = np.full_like(ids, IGNORE)
    labels[0, [1, 4]] = [7, 8]
    logits, loss = enc(ids, labels)
    z = logits.data[0, [1, 4]]
    log_p = z - z.max(axis=-1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(axis=-1, keepdims=True))
    assert np.isclose(loss.item(), -(log_p[0, 7] + log_p[1, 8]) / 2, rtol=1e-10)


def test_gradients_through_bidirectional_attention_with_padding_match_finite_differences():
    config = GPTConfig(vocab_size=9, context_length=5, d_model=6, n_layer=1, n_head=2)
    enc = Encoder(config, pad_id=8, rng=np.random.default_rng(2), dtype=np.float64)
    ids = np.array([[1, 2, 3, 8, 8], [4, 5, 6, 7, 1]])
    weights = np.random.default_rng(3).normal(size=(2, 5, 6))     # fixed random weights, not a plain sum
    block = enc.blocks[0]
    assert gradcheck(lambda w: (enc.hidden_states(ids) * weights).sum(), block.attn.qkv.weight)
    assert gradcheck(lambda w: (enc.hidden_states(ids) * weights).sum(), enc.token_embedding.weight)


def test_bad_use_is_refused_by_name():
    with pytest.raises(ValueError, match="pad_id 23"):
        Encoder(CONFIG, pad_id=23)
    _, enc = _pair()
    with pytest.raises(ValueError, match="no labelled position"):
        enc(np.array([[1, 2]]), np.full((1, 2), IGNORE))
    from tinygrad_llm.model.gpt import KVCache
    with pytest.raises(ValueError, match="no KV cache"), no_grad():
        enc.hidden_states(np.array([[1]]), cache=KVCache(CONFIG, 1))
