"""Write the old-format fixture files of this folder with the library as it was before the package
was split into areas (run from a checkout of that version, flat layout ``tinygrad_llm/*.py``):

    PYTHONPATH=<old checkout> python tests/data/old_formats/make_fixtures.py tests/data/old_formats

Each file comes with the logits its model gave when it was written (``expected.json``), so the
current loaders can be checked to read every old file to the same model.
"""

import json
import sys
from pathlib import Path

import numpy as np

import tinygrad_llm as tl
from tinygrad_llm.pruning import magnitude_prune, save_sparse
from tinygrad_llm.peft import apply_lora, lora_layers, save_lora
from tinygrad_llm.quantize import quantize_model
from tinygrad_llm.quantized_checkpoint import save_quantized

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(0)
text = "the cat sat on the mat. the dog sat on the log. " * 20
tokenizer = tl.BPETokenizer.train(text, 270, special_tokens=("<|endoftext|>",))
tokenizer.save(out / "tokenizer.json")
config = tl.GPTConfig(vocab_size=tokenizer.vocab_size, context_length=8, d_model=8, n_layer=1, n_head=2)
tokens = np.array(tokenizer.encode(text), dtype=np.int64)
probe = tokens[None, :6]
expected = {"probe": probe.tolist(), "encode": tokenizer.encode("the cat sat"), "logits": {}}


def logits(model) -> list:
    model.eval()
    with tl.no_grad():
        return model(probe).data[0, -1].astype(np.float64).round(6).tolist()   # the last position's


model = tl.GPT(config, rng=np.random.default_rng(1))
trainer = tl.Trainer(model, tokens, tokens, tl.TrainConfig(max_steps=2, batch_size=2, warmup_steps=1,
                                                           eval_interval=100, log_interval=100),
                     log=None, tokenizer_ref="tokenizer.json")
trainer.train()
trainer.save(out / "checkpoint.safetensors")
expected["logits"]["checkpoint"] = logits(model)

lora_model = tl.GPT(config, rng=np.random.default_rng(1))
lora_model.load_state_dict(model.state_dict())
apply_lora(lora_model, r=2, alpha=4.0, rng=np.random.default_rng(2))
for _, layer in lora_layers(lora_model):   # B starts at zero: give it values worth recording
    B = layer.lora["default"].B.data
    B[...] = np.random.default_rng(3).normal(0, 0.1, B.shape)
save_lora(lora_model, out / "lora.safetensors")
expected["logits"]["lora"] = logits(lora_model)

sparse_model = tl.GPT(config, rng=np.random.default_rng(1))
sparse_model.load_state_dict(model.state_dict())
mask = magnitude_prune(sparse_model, 0.5)
save_sparse(sparse_model, mask, out / "sparse.safetensors")
expected["logits"]["sparse"] = logits(sparse_model)

quant_model = tl.GPT(config, rng=np.random.default_rng(1))
quant_model.load_state_dict(model.state_dict())
quantize_model(quant_model)
save_quantized(quant_model, out / "quantized.safetensors")
expected["logits"]["quantized"] = logits(quant_model)

(out / "expected.json").write_text(json.dumps(expected) + "\n")
for path in sorted(out.iterdir()):
    print(f"{path.name:28s} {path.stat().st_size:8,} bytes")
