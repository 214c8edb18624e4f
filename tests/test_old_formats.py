"""Files written before the package was split into areas still load, to the same model.

``tests/data/old_formats`` holds a training checkpoint, a tokenizer, a LoRA adapter, a sparse and
a quantized model written by that older version (``make_fixtures.py`` there), with the logits
each model gave when it was written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import tinygrad_llm as tl
from tinygrad_llm.compress.quantized_state import load_quantized
from tinygrad_llm.sparsity.sparse import load_sparse
from tinygrad_llm.finetune.lora import load_lora
from tinygrad_llm.model.state import read_safetensors_header
from tinygrad_llm.train.trainer import load_model

FOLDER = Path(__file__).parent / "data" / "old_formats"
EXPECTED = json.loads((FOLDER / "expected.json").read_text(encoding="utf-8"))
PROBE = np.array(EXPECTED["probe"], dtype=np.int64)


def last_logits(model) -> np.ndarray:
    model.eval()
    with tl.no_grad():
        return model(PROBE).data[0, -1].astype(np.float64)


def base_model():
    model, _ = load_model(FOLDER / "checkpoint.safetensors")
    return model


def test_old_tokenizer_encodes_as_it_did():
    tokenizer = tl.BPETokenizer.load(FOLDER / "tokenizer.json")
    assert tokenizer.encode("the cat sat") == EXPECTED["encode"]


def test_old_checkpoint_loads_to_the_same_logits_and_resumes():
    model = base_model()
    np.testing.assert_allclose(last_logits(model), EXPECTED["logits"]["checkpoint"], atol=2e-6)
    trainer = tl.Trainer(model, np.tile(PROBE[0], 5), None, tl.TrainConfig(steps=4, batch_size=2,
                         warmup_steps=1, eval_interval=100, log_interval=100), log=None)
    trainer.load(FOLDER / "checkpoint.safetensors")
    assert trainer.step == 2


@pytest.mark.parametrize("kind, load", [
    ("lora", lambda model, path: load_lora(model, path)),
    ("sparse", lambda model, path: load_sparse(model, path)),
])
def test_old_adapter_and_sparse_files_load_to_the_same_logits(kind, load):
    model = base_model()
    load(model, FOLDER / f"{kind}.safetensors")
    np.testing.assert_allclose(last_logits(model), EXPECTED["logits"][kind], atol=2e-6)


def test_old_quantized_file_loads_to_the_same_logits():
    model, _ = load_quantized(FOLDER / "quantized.safetensors")
    np.testing.assert_allclose(last_logits(model), EXPECTED["logits"]["quantized"], atol=2e-6)


@pytest.mark.parametrize("name", ["checkpoint", "lora", "sparse", "quantized"])
def test_old_files_pass_the_strict_header_checks(name):
    header, metadata, _ = read_safetensors_header(FOLDER / f"{name}.safetensors")
    assert header and metadata["format"]
