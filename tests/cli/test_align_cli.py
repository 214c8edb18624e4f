"""``tinygrad-llm align dpo|ipo``: DPO on a user's preference file, and its errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tinygrad_llm import GPT, BPETokenizer, GPTConfig, TrainConfig, Trainer
from tinygrad_llm.cli.main import main, tokenizer_path_for
from tinygrad_llm.train.trainer import load_model

TEXT = ("Say hello. Hello, glad to help! Go away, idiot. Name a loop. The for statement. "
        "Shut up, stupid. ") * 20


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("align")
    tokenizer = BPETokenizer.train(TEXT, 300, special_tokens=("<|endoftext|>",))
    model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, context_length=48, d_model=16, n_layer=1, n_head=2),
                rng=np.random.default_rng(0))
    path = folder / "base.safetensors"
    ids = np.array(tokenizer.encode(TEXT))
    trainer = Trainer(model, ids, None, TrainConfig(steps=2, batch_size=2, eval_interval=2, eval_batches=1,
                                                    log_interval=2), log=None, tokenizer_ref=tokenizer_path_for(path).name)
    trainer.train()
    trainer.save(path)
    tokenizer.save(tokenizer_path_for(path))
    prefs = folder / "prefs.jsonl"
    prefs.write_text("\n".join([
        json.dumps({"prompt": "Say hello.", "responses": ["Hello, glad to help!", "Hello.", "Go away, idiot."]}),
        json.dumps({"prompt": "Name a loop.", "chosen": "The for statement.", "rejected": "Shut up, stupid."}),
    ]) + "\n", encoding="utf-8")
    return path, prefs


@pytest.mark.parametrize("method", ["dpo", "ipo"])
def test_align_tunes_and_saves_a_loadable_checkpoint_with_its_tokenizer(tmp_path, capsys, checkpoint, method):
    path, prefs = checkpoint
    out = tmp_path / "tuned.safetensors"
    code = main(["align", method, "--preferences", str(prefs), "--checkpoint", str(path), "--out", str(out),
                 "--steps", "4", "--batch-size", "2", "--template", "compact"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "2 rankings -> 4 preference pairs" in printed and "training pairs" in printed
    model, _ = load_model(out)
    assert tokenizer_path_for(out).is_file()
    before, _ = load_model(path)
    assert any(not np.array_equal(a, b) for a, b in zip(model.state_dict().values(), before.state_dict().values()))
    assert main(["generate", "--checkpoint", str(out), "--prompt", "Say hello.", "--max-new-tokens", "3",
                 "--temperature", "0"]) == 0


@pytest.mark.parametrize("line, message", [
    ('{"prompt": "p", "responses": ["only one"]}', "line 2: a ranking needs a tuple of at least two"),
    ("{oops", "line 2: not JSON"),
])
def test_a_malformed_preference_file_is_one_line_naming_the_line(tmp_path, capsys, checkpoint, line, message):
    path, _ = checkpoint
    prefs = tmp_path / "bad.jsonl"
    prefs.write_text(json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"}) + "\n" + line + "\n")
    code = main(["align", "dpo", "--preferences", str(prefs), "--checkpoint", str(path),
                 "--out", str(tmp_path / "o.safetensors")])
    err = capsys.readouterr().err
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_missing_files_and_bad_values_are_refused(tmp_path, capsys, checkpoint):
    path, prefs = checkpoint
    out = str(tmp_path / "o.safetensors")
    assert main(["align", "dpo", "--preferences", str(tmp_path / "none.jsonl"), "--checkpoint", str(path),
                 "--out", out]) == 1
    assert "none.jsonl" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["align", "dpo", "--preferences", str(prefs), "--checkpoint", str(path), "--out", out, "--beta", "0"])
    assert exit_.value.code == 2 and "--beta" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["align", "kto", "--preferences", str(prefs), "--checkpoint", str(path), "--out", out])
    assert exit_.value.code == 2
