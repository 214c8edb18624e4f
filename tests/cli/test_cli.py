"""The command line, run in-process through ``main([...])`` with tiny settings: every subcommand
does its job, and every mistake a user can make ends in one line on stderr and a non-zero exit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinygrad_llm import GPT, BPETokenizer, GPTConfig, export_gpt2, perplexity
from tinygrad_llm.model.state import load_safetensors
from tinygrad_llm.cli import main

PROJECT = Path(__file__).resolve().parents[2]
SENTENCES = ["the cat sat on the mat.", "a dog ran in the park!", "the bird sang a song.",
             "my cat ate the fish.", "we read a book at night."]
TINY = ["--vocab-size", "280", "--d-model", "16", "--n-layer", "1", "--n-head", "2",
        "--context-length", "16", "--batch-size", "4", "--eval-batches", "2", "--log-interval", "2"]


def corpus_text(n: int = 120) -> str:
    rng = np.random.default_rng(0)
    return " ".join(SENTENCES[i] for i in rng.integers(0, len(SENTENCES), n))


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A corpus file and a 4-step checkpoint trained on it by the command line."""
    folder = tmp_path_factory.mktemp("trained")
    corpus = folder / "corpus.txt"
    corpus.write_text(corpus_text(), encoding="utf-8")
    checkpoint = folder / "run" / "model.safetensors"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TINYGRAD_LLM_OUT", str(folder / "outputs"))
        assert main(["train", str(corpus), *TINY, "--steps", "4", "--out", str(checkpoint)]) == 0
    return corpus, checkpoint


# ----------------------------------------------------------------------------------------------
# Help


@pytest.mark.parametrize("command", [[], ["prepare"], ["train"], ["generate"], ["eval"], ["tokenize"], ["export"], ["align"]])
def test_help_describes_every_command(capsys, command):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: tinygrad-llm" in capsys.readouterr().out


def test_python_dash_m_runs_the_command_line():
    env = {**os.environ, "PYTHONPATH": str(PROJECT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    result = subprocess.run([sys.executable, "-m", "tinygrad_llm", "--help"], capture_output=True,
                            text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    for command in ("prepare", "train", "generate", "eval", "tokenize"):
        assert command in result.stdout


# ----------------------------------------------------------------------------------------------
# The subcommands


def test_prepare_writes_token_arrays_once_then_reads_the_cache(capsys, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(corpus_text(), encoding="utf-8")
    code, out, _ = run(capsys, "prepare", corpus, "--vocab-size", "280")
    assert code == 0 and out.startswith("prepared: ")
    folder = Path(out.splitlines()[0].removeprefix("prepared: "))
    assert folder.parent == tmp_path / "outputs" / "data"
    meta = json.loads((folder / "meta.json").read_text())
    train = np.load(folder / "train.npy")
    assert len(train) == meta["stats"]["train_tokens"] and f"{meta['stats']['tokens']:,}" in out
    assert BPETokenizer.load(folder / "tokenizer.json").vocab_size == 280
    code, out, _ = run(capsys, "prepare", corpus, "--vocab-size", "280")
    assert code == 0 and out.startswith(f"cached: {folder}")


def test_train_saves_a_checkpoint_with_its_tokenizer_beside_it(trained):
    _, checkpoint = trained
    _, metadata = load_safetensors(checkpoint)
    assert metadata["step"] == "4" and metadata["tokenizer"] == "model.tokenizer.json"
    assert json.loads(metadata["model_config"])["d_model"] == 16
    assert json.loads(metadata["train_config"])["steps"] == 4
    assert BPETokenizer.load(checkpoint.parent / "model.tokenizer.json").vocab_size == 280


def test_resume_continues_to_the_new_step_count_with_the_stored_settings(capsys, trained, tmp_path):
    corpus, checkpoint = trained
    out_path = tmp_path / "resumed" / "model.safetensors"
    code, out, _ = run(capsys, "train", corpus, "--resume", checkpoint, "--steps", "6", "--out", out_path)
    assert code == 0 and f"saved step 6 to {out_path}" in out
    _, metadata = load_safetensors(out_path)
    train_config = json.loads(metadata["train_config"])
    assert metadata["step"] == "6" and train_config["steps"] == 6 and train_config["batch_size"] == 4
    assert len(json.loads(metadata["history"])["train_loss"]) == 6   # 4 before, 2 now
    assert (out_path.parent / "model.tokenizer.json").is_file()


def test_resume_refuses_to_change_the_model(capsys, trained, tmp_path):
    corpus, checkpoint = trained
    code, out, err = run(capsys, "train", corpus, "--resume", checkpoint, "--d-model", "32",
                         "--out", tmp_path / "x.safetensors")
    assert code == 1 and "cannot change the model when resuming (d_model=32)" in err
    assert err.count("\n") == 1


def test_generate_continues_the_prompt_reproducibly(capsys, trained):
    _, checkpoint = trained
    args = ["generate", "--checkpoint", checkpoint, "--prompt", "the cat", "--max-new-tokens", "12",
            "--top-k", "20", "--top-p", "0.9", "--repetition-penalty", "1.2", "--seed", "3"]
    code, first, _ = run(capsys, *args)
    assert code == 0 and first.startswith("the cat") and len(first) > len("the cat\n")
    assert run(capsys, *args)[1] == first
    greedy = ["generate", "--checkpoint", checkpoint, "--prompt", "the", "--temperature", "0"]
    assert run(capsys, *greedy)[1] == run(capsys, *greedy, "--no-cache")[1]
    code, samples, _ = run(capsys, "generate", "--checkpoint", checkpoint, "--num-samples", "2",
                           "--max-new-tokens", "5")
    assert code == 0 and "--- sample 1 ---" in samples and "--- sample 2 ---" in samples


def test_eval_reports_the_perplexity_of_the_library(capsys, trained, tmp_path):
    corpus, checkpoint = trained
    text = tmp_path / "held_out.txt"
    text.write_text(corpus_text(20), encoding="utf-8")
    code, out, _ = run(capsys, "eval", "--checkpoint", checkpoint, text, "--stride", "8")
    from tinygrad_llm.train.trainer import load_model
    model, _ = load_model(checkpoint)
    tokens = BPETokenizer.load(checkpoint.parent / "model.tokenizer.json").encode(text.read_text())
    assert code == 0 and f"perplexity {perplexity(model, np.array(tokens), stride=8):.2f}" in out
    assert f"{len(tokens) - 1:,} tokens scored" in out


def test_tokenize_shows_ids_and_the_text_of_each_token(capsys, trained, tmp_path):
    _, checkpoint = trained
    tokenizer = BPETokenizer.load(checkpoint.parent / "model.tokenizer.json")
    code, out, _ = run(capsys, "tokenize", "the cat é", "--checkpoint", checkpoint)
    ids = tokenizer.encode("the cat é")
    lines = out.splitlines()
    assert code == 0 and lines[0] == f"{len(ids)} tokens for 10 bytes: {ids}"
    assert len(lines) == 1 + len(ids)
    assert lines[1].split()[0] == str(ids[0]) and "b'\\xc3'" in out   # é was never merged: two bytes
    tokenizer_file = checkpoint.parent / "model.tokenizer.json"
    assert run(capsys, "tokenize", "the cat é", "--tokenizer", tokenizer_file)[1] == out


def test_tokenize_defaults_to_the_course_tokenizer(capsys):
    code, out, _ = run(capsys, "tokenize", "for x in y:", "--quick")
    assert code == 0 and out.startswith("tokens for 11 bytes", out.index(" ") + 1)


def test_train_defaults_to_the_output_folder(capsys, tmp_path, trained):
    corpus, _ = trained
    code, out, _ = run(capsys, "train", corpus, *TINY, "--steps", "1")
    default = tmp_path / "outputs" / "checkpoints" / "model.safetensors"
    assert code == 0 and f"saved step 1 to {default}" in out
    assert default.is_file() and (default.parent / "model.tokenizer.json").is_file()


def test_generate_eval_and_tokenize_read_a_gpt2_folder(capsys, tmp_path):
    tokenizer = BPETokenizer.train(corpus_text(), 280, pattern="gpt2")
    model = GPT(GPTConfig(vocab_size=280, context_length=16, d_model=16, n_layer=1, n_head=2))
    folder = export_gpt2(model, tmp_path / "gpt2", tokenizer)
    code, out, _ = run(capsys, "generate", "--gpt2", folder, "--prompt", "the dog", "--max-new-tokens", "4",
                       "--temperature", "0")
    assert code == 0 and out.startswith("the dog")
    text = tmp_path / "t.txt"
    text.write_text(corpus_text(10), encoding="utf-8")
    code, out, _ = run(capsys, "eval", "--gpt2", folder, text)
    assert code == 0 and "perplexity" in out
    code, out, _ = run(capsys, "tokenize", "the dog", "--gpt2", folder)
    assert code == 0 and out.startswith(f"{len(tokenizer.encode('the dog'))} tokens")


# ----------------------------------------------------------------------------------------------
# Mistakes: one line on stderr, a non-zero exit, no traceback


def one_line_error(capsys, *args) -> tuple[int, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and err.startswith("tinygrad-llm") and "Traceback" not in err, err
    return code, err


@pytest.mark.parametrize("args, message", [
    (["generate", "--checkpoint", "{tmp}/missing.safetensors"], "--checkpoint {tmp}/missing.safetensors: no such file"),
    (["generate", "--gpt2", "{tmp}/no-folder"], "--gpt2 {tmp}/no-folder: no such folder"),
    (["tokenize", "x", "--gpt2", "{tmp}/no-folder"], "--gpt2 {tmp}/no-folder: no such folder"),
    (["generate", "--checkpoint", "{ckpt}", "--tokenizer", "{tmp}/nope.json"], "--tokenizer {tmp}/nope.json: no such file"),
    (["eval", "--checkpoint", "{ckpt}", "{tmp}/missing.txt"], "text file {tmp}/missing.txt: no such file"),
    (["tokenize", "x", "--tokenizer", "{corpus}"], "not valid JSON"),
    (["train", "{tmp}/missing.txt"], "corpus {tmp}/missing.txt: no such file or folder"),
])
def test_runtime_problems_end_in_one_line_and_exit_status_1(capsys, trained, tmp_path, args, message):
    corpus, checkpoint = trained
    args = [a.format(tmp=tmp_path, ckpt=checkpoint, corpus=corpus) for a in args]
    code, err = one_line_error(capsys, *args)
    assert code == 1 and message.format(tmp=tmp_path) in err


@pytest.mark.parametrize("args, message", [
    (["fly"], "invalid choice: 'fly'"),
    (["train", "--steps", "0"], "--steps must be an integer >= 1, got 0"),
    (["generate", "--checkpoint", "a", "--gpt2", "b"], "not allowed with argument"),
    (["generate", "--prompt", "hi"], "one of the arguments --checkpoint --gpt2 is required"),
    (["generate", "--checkpoint", "a", "--top-k", "many"], "invalid int value: 'many'"),
    (["generate", "--checkpoint", "a", "--temperature", "-1"], "--temperature must be a finite number >= 0"),
    (["generate", "--checkpoint", "a", "--top-p", "1.5"], "--top-p must be a finite number in (0, 1]"),
    (["train", "x", "--vocab-size", "280", "--d-model", "16", "--n-head", "3"],
     "--d-model 16 is not divisible by --n-head 3"),
    (["prepare", "x", "--val-fraction", "2"], "--val-fraction must be a finite number in (0, 1)"),
    (["train", "--lr", "nan"], "--lr must be a finite number > 0, got nan"),
    (["train", "--seed", "-1"], "--seed must be an integer >= 0, got -1"),
    (["train", "--vocab-size", "100"], "--vocab-size must be an integer >= 257, got 100"),
])
def test_bad_arguments_end_in_one_line_and_exit_status_2(capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    _, err = capsys.readouterr()
    assert exit_info.value.code == 2 and message in err
    assert err.count("\n") == 1 and "Traceback" not in err and "--help" in err


def test_a_checkpoint_whose_tokenizer_was_moved_asks_for_one(capsys, trained, tmp_path):
    _, checkpoint = trained
    lonely = tmp_path / "model.safetensors"
    lonely.write_bytes(checkpoint.read_bytes())
    code, err = one_line_error(capsys, "generate", "--checkpoint", lonely)
    assert code == 1 and "model.tokenizer.json" in err and "pass --tokenizer" in err
    code, out, _ = run(capsys, "generate", "--checkpoint", lonely, "--max-new-tokens", "2",
                       "--tokenizer", checkpoint.parent / "model.tokenizer.json")
    assert code == 0


# ----------------------------------------------------------------------------------------------
# Benchmarks: eval --tasks


def test_eval_tasks_prints_the_harness_table_with_progress_and_writes_json(capsys, trained, tmp_path):
    from tinygrad_llm.evaluate.harness import Doc, Task, evaluate_task, save_task
    from tinygrad_llm.train.trainer import load_model
    _, checkpoint = trained
    docs = tuple(Doc(f"the {w}", ("cat sat", "dog ran", "bird sang"), i % 3)
                 for i, w in enumerate(["cat", "dog", "bird", "fish", "book", "mat"]))
    task = Task("animals", "multiple_choice", docs, fewshot_docs=docs[:3])
    save_task(task, tmp_path / "animals.jsonl")
    code, out, err = run(capsys, "eval", "--checkpoint", checkpoint, "--tasks", f"{tmp_path}/animals.jsonl,arithmetic",
                         "--count", "12", "--num-fewshot", "2", "--output", tmp_path / "results.json")
    assert code == 0 and "[1/2] animals" in err and "[2/2] arithmetic" in err
    model, _ = load_model(checkpoint)
    tokenizer = BPETokenizer.load(checkpoint.parent / "model.tokenizer.json")
    expected = evaluate_task(model, tokenizer, task, num_fewshot=2, batch_size=8)
    results = json.loads((tmp_path / "results.json").read_text())
    assert [r["task"] for r in results] == ["animals", "arithmetic"] and results[1]["count"] == 12
    assert results[0]["metrics"]["acc"] == pytest.approx(expected.metrics["acc"])
    assert f"{expected.metrics['acc']:.4f}" in out and "acc_norm" in out and "0.2500" in out


@pytest.mark.parametrize("args, message, status", [
    (["--tasks", "nothing"], "--tasks: 'nothing' is neither a built-in task", 2),
    (["--tasks", "arithmetic,"], "has an empty entry", 2),
    (["--tasks", "arithmetic", "{tmp}/text.txt"], "not both", 2),
    ([], "eval needs a TEXT_FILE (perplexity) or --tasks", 2),
    (["{tmp}/text.txt", "--num-fewshot", "2"], "--num-fewshot goes with --tasks", 2),
    (["--tasks", "arithmetic", "--num-fewshot", "-1"], "--num-fewshot must be an integer >= 0", 2),
    (["--tasks", "arithmetic", "--count", "8", "--num-fewshot", "9"], "task 'arithmetic' has only 8 few-shot", 2),
    (["--tasks", "{tmp}/missing.jsonl"], "task file {tmp}/missing.jsonl: no such file", 1),
    (["--tasks", "{tmp}/bad.jsonl"], "line 2: missing field 'choices'", 1),
])
def test_eval_tasks_mistakes_end_in_one_line(capsys, trained, tmp_path, args, message, status):
    _, checkpoint = trained
    (tmp_path / "text.txt").write_text("the cat sat on the mat.", encoding="utf-8")
    (tmp_path / "bad.jsonl").write_text('{"task": "t"}\n{"context": "a", "answer": 0}\n', encoding="utf-8")
    args = [a.format(tmp=tmp_path) for a in args]
    try:
        code = main(["eval", "--checkpoint", str(checkpoint), *args])
    except SystemExit as exit_info:   # usage errors exit with status 2, as argparse's own do
        code = exit_info.code
    _, err = capsys.readouterr()
    assert err.count("\n") == 1 and err.startswith("tinygrad-llm") and "Traceback" not in err, err
    assert code == status and message.format(tmp=tmp_path) in err
