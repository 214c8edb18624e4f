"""``tinygrad-llm export``: a checkpoint as a GGUF file or a Hugging Face folder, and one-line errors."""

from __future__ import annotations

import numpy as np
import pytest

from tinygrad_llm import BPETokenizer
from tinygrad_llm.cli import main
from tinygrad_llm.model.gpt2 import load_gpt2
from tinygrad_llm.train.trainer import load_model

SENTENCES = ["the cat sat on the mat.", "a dog ran in the park!", "the bird sang a song.",
             "my cat ate the fish.", "we read a book at night."]
TINY = ["--vocab-size", "280", "--d-model", "32", "--n-layer", "1", "--n-head", "2",
        "--context-length", "16", "--batch-size", "4", "--eval-batches", "2", "--log-interval", "2"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    corpus = folder / "corpus.txt"
    rng = np.random.default_rng(0)
    corpus.write_text(" ".join(SENTENCES[i] for i in rng.integers(0, len(SENTENCES), 120)), encoding="utf-8")
    path = folder / "run" / "model.safetensors"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TINYGRAD_LLM_OUT", str(folder / "outputs"))
        assert main(["train", str(corpus), *TINY, "--steps", "2", "--out", str(path)]) == 0
    return path


def logits(model, ids):
    return model.eval()(np.array([ids])).data


def test_export_gguf_writes_a_file_that_loads_back_with_the_same_logits(capsys, checkpoint, tmp_path):
    pytest.importorskip("gguf", reason='the gguf package is not installed (pip install -e ".[gguf]")')
    from tinygrad_llm.compress.export import load_gguf
    out = tmp_path / "model.gguf"
    assert main(["export", "--checkpoint", str(checkpoint), "--format", "gguf", "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    model, _ = load_model(checkpoint)
    loaded, tokenizer = load_gguf(out)
    ids = tokenizer.encode("the cat sat")
    np.testing.assert_array_equal(logits(loaded, ids), logits(model, ids))


def test_export_gguf_q8_0_is_smaller_and_close(capsys, checkpoint, tmp_path):
    pytest.importorskip("gguf", reason='the gguf package is not installed (pip install -e ".[gguf]")')
    from tinygrad_llm.compress.export import load_gguf
    f32, q8 = tmp_path / "f32.gguf", tmp_path / "q8.gguf"
    assert main(["export", "--checkpoint", str(checkpoint), "--out", str(f32)]) == 0   # gguf is the default
    assert main(["export", "--checkpoint", str(checkpoint), "--format", "gguf", "--dtype", "q8_0",
                 "--out", str(q8)]) == 0
    assert q8.stat().st_size < f32.stat().st_size
    loaded, tokenizer = load_gguf(q8)
    model, _ = load_model(checkpoint)
    ids = tokenizer.encode("a dog ran")
    np.testing.assert_allclose(logits(loaded, ids), logits(model, ids), atol=0.05)


def test_export_hf_writes_a_folder_transformers_layout(capsys, checkpoint, tmp_path):
    out = tmp_path / "hf"
    assert main(["export", "--checkpoint", str(checkpoint), "--format", "hf", "--without-tokenizer",
                 "--out", str(out)]) == 0
    assert {"config.json", "model.safetensors"} <= {p.name for p in out.iterdir()}
    model, _ = load_model(checkpoint)
    np.testing.assert_array_equal(logits(load_gpt2(out), [1, 2, 3]), logits(model, [1, 2, 3]))


def test_export_hf_with_a_gpt2_pattern_tokenizer(capsys, checkpoint, tmp_path):
    text = " ".join(SENTENCES * 20)
    tokenizer = BPETokenizer.train(text, 270, pattern="gpt2", special_tokens=("<|endoftext|>",))
    tokenizer.save(tmp_path / "gpt2-pattern.json")
    out = tmp_path / "hf"
    assert main(["export", "--checkpoint", str(checkpoint), "--tokenizer", str(tmp_path / "gpt2-pattern.json"),
                 "--format", "hf", "--out", str(out)]) == 0
    back = BPETokenizer.from_gpt2(out)
    assert back.encode("the cat sat<|endoftext|>", allowed_special="all") == \
        tokenizer.encode("the cat sat<|endoftext|>", allowed_special="all")


def test_export_hf_of_a_gpt4_pattern_tokenizer_fails_in_one_line(capsys, checkpoint, tmp_path):
    code = main(["export", "--checkpoint", str(checkpoint), "--format", "hf", "--out", str(tmp_path / "hf")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert "gpt4 pattern" in err and "--pattern gpt2" in err and "--without-tokenizer" in err


@pytest.mark.parametrize("args, message", [
    (["--format", "xml"], "invalid choice: 'xml'"),
    (["--dtype", "q5_k"], "invalid choice: 'q5_k'"),
    (["--format", "hf", "--dtype", "q8_0"], "--dtype q8_0 is for --format gguf"),
    (["--without-tokenizer"], "--without-tokenizer is for --format hf"),
    (["--out", "{tmp}"], "is a folder"),
    (["--out", "{tmp}/f.txt/model.gguf"], "is a file, not a folder"),
])
def test_bad_export_flags_end_in_one_line_and_exit_status_2(capsys, checkpoint, tmp_path, args, message):
    (tmp_path / "f.txt").write_text("x")
    args = [a.format(tmp=tmp_path) for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "m.gguf")]
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--checkpoint", str(checkpoint), *args])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_export_needs_an_out_path(capsys, checkpoint):
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--checkpoint", str(checkpoint)])
    assert exit_info.value.code == 2 and "--out" in capsys.readouterr().err


def test_a_model_trained_with_the_gpt2_pattern_leaves_with_its_tokenizer(capsys, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(" ".join(SENTENCES * 24), encoding="utf-8")
    checkpoint = tmp_path / "run" / "model.safetensors"
    assert main(["train", str(corpus), *TINY, "--steps", "2", "--pattern", "gpt2", "--out", str(checkpoint)]) == 0
    out = tmp_path / "hf"
    assert main(["export", "--checkpoint", str(checkpoint), "--format", "hf", "--out", str(out)]) == 0
    ours = BPETokenizer.load(checkpoint.with_name("model.tokenizer.json"))
    sample = "the cat's 2024 mat<|endoftext|>"
    back = BPETokenizer.from_gpt2(out)
    assert back.encode(sample, allowed_special="all") == ours.encode(sample, allowed_special="all")
    assert (out / "tokenizer_config.json").is_file()


def test_pattern_is_for_a_tokenizer_trained_here(capsys, tmp_path):
    tokenizer = BPETokenizer.train(" ".join(SENTENCES * 5), 270)
    tokenizer.save(tmp_path / "t.json")
    (tmp_path / "c.txt").write_text(" ".join(SENTENCES * 5), encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        main(["prepare", str(tmp_path / "c.txt"), "--tokenizer", str(tmp_path / "t.json"), "--pattern", "gpt2"])
    assert exit_info.value.code == 2 and "--pattern applies to a tokenizer trained here" in capsys.readouterr().err
