"""Hostile use of the command line: every subcommand given a missing file, a folder, a file that
cannot be read as what it should be, and every numeric flag given 0, -1, nan, inf and text.

Each mistake ends in exactly one line on stderr that names the flag (or the argument) as the user
typed it, and exit status 2 for a bad flag value (a usage error, found by argparse or by our checks
before any work starts) or 1 for a problem met while working (a missing or unreadable file).

careful: the tests run as root, who can read any file whatever its mode, so "unreadable" is made
of things nobody can read as a file: a FIFO (opening it would block forever), a folder where a
file is expected, and bytes that are not UTF-8 / JSON / safetensors.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import tinygrad_llm as tl
from tinygrad_llm.cli import build_parser, main
from tinygrad_llm.cli.main import _FLAG_CHECKS, flag_name

LEAKS = ("Traceback", "[Errno", ".tmp", "TrainConfig", "GPTConfig", "max_new_tokens", "errors=",
         "Warning", ".py:")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A checkpoint with its tokenizer beside it, a text, and the hostile things."""
    folder = tmp_path_factory.mktemp("hostile")
    text = "the cat sat on the mat. a dog ran in the park. " * 30
    tokenizer = tl.BPETokenizer.train(text, 270, special_tokens=("<|endoftext|>",))
    tokenizer.save(folder / "model.tokenizer.json")
    model = tl.GPT(tl.GPTConfig(vocab_size=270, context_length=8, d_model=8, n_layer=1, n_head=2))
    trainer = tl.Trainer(model, np.array(tokenizer.encode(text)), None,
                         tl.TrainConfig(steps=1, batch_size=2, warmup_steps=1, eval_interval=100,
                                        log_interval=100), log=None, tokenizer_ref="model.tokenizer.json")
    trainer.save(folder / "model.safetensors")
    (folder / "text.txt").write_text(text, encoding="utf-8")
    (folder / "empty-folder").mkdir()
    os.mkfifo(folder / "fifo")
    (folder / "garbage").write_bytes(b"\xff\xfe\x00garbage \x80\x81" * 10)
    (folder / "a-file").write_text("x", encoding="utf-8")
    return folder


def outcome(capsys, args: list[str]) -> tuple[int, str]:
    """(exit status, stderr) of one run, whether it returned or raised SystemExit (usage errors)."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as exit_:
        code = exit_.code
    _, err = capsys.readouterr()
    return code, err


def assert_one_clean_line(err: str, *fragments: str) -> None:
    assert err.count("\n") == 1 and err.startswith("tinygrad-llm"), err
    for leak in LEAKS:
        assert leak not in err, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


# --- files ------------------------------------------------------------------------------------

CK, TOK, TXT = "{d}/model.safetensors", "{d}/model.tokenizer.json", "{d}/text.txt"
# (command before the hostile path, command after it, what names the path in the message)
FILE_SLOTS = {
    "prepare SOURCE": (["prepare"], [], "corpus"),
    "prepare --tokenizer": (["prepare", TXT, "--tokenizer"], [], "--tokenizer"),
    "train SOURCE": (["train"], [], "corpus"),
    "train --tokenizer": (["train", TXT, "--tokenizer"], [], "--tokenizer"),
    "train --resume": (["train", TXT, "--out", "{d}/out/m.safetensors", "--resume"], [], "--resume"),
    "generate --checkpoint": (["generate", "--checkpoint"], [], "--checkpoint"),
    "generate --gpt2": (["generate", "--gpt2"], [], "--gpt2"),
    "generate --tokenizer": (["generate", "--checkpoint", CK, "--tokenizer"], [], "--tokenizer"),
    "eval --checkpoint": (["eval", TXT, "--checkpoint"], [], "--checkpoint"),
    "eval --gpt2": (["eval", TXT, "--gpt2"], [], "--gpt2"),
    "eval --tokenizer": (["eval", TXT, "--checkpoint", CK, "--tokenizer"], [], "--tokenizer"),
    "eval TEXT_FILE": (["eval", "--checkpoint", CK], [], "text file"),
    "tokenize --tokenizer": (["tokenize", "hi", "--tokenizer"], [], "--tokenizer"),
    "tokenize --gpt2": (["tokenize", "hi", "--gpt2"], [], "--gpt2"),
    "tokenize --checkpoint": (["tokenize", "hi", "--checkpoint"], [], "--checkpoint"),
}
# a folder is what --gpt2 wants and what a GPT-2 --tokenizer or a corpus may be: then the message
# says what the (empty) folder lacks instead of naming the flag
FOLDER_OK = {"prepare SOURCE", "train SOURCE", "generate --gpt2", "eval --gpt2", "tokenize --gpt2",
             "prepare --tokenizer", "train --tokenizer", "generate --tokenizer", "eval --tokenizer",
             "tokenize --tokenizer"}
HOSTILE = {"missing": "{d}/missing", "folder": "{d}/empty-folder", "fifo": "{d}/fifo",
           "garbage": "{d}/garbage"}


@pytest.mark.parametrize("kind", HOSTILE)
@pytest.mark.parametrize("slot", FILE_SLOTS)
def test_every_file_argument_given_a_hostile_path_fails_in_one_line_with_status_1(capsys, files, slot, kind):
    before, after, named = FILE_SLOTS[slot]
    path = HOSTILE[kind].format(d=files)
    args = [a.format(d=files) for a in before] + [path] + [a.format(d=files) for a in after]
    code, err = outcome(capsys, args)
    assert code == 1, (args, err)
    fragments = [path] if kind == "folder" and slot in FOLDER_OK else [named, path]
    if kind == "garbage":
        fragments = [path]   # the reader says what the bytes are not (UTF-8, JSON, safetensors)
    assert_one_clean_line(err, *fragments)


def test_missing_folders_are_worded_alike_by_tokenize_and_generate(capsys, files):
    messages = []
    for command in (["tokenize", "hi"], ["generate"], ["eval", str(files / "text.txt")]):
        code, err = outcome(capsys, [*command, "--gpt2", files / "nowhere"])
        assert code == 1
        messages.append(err.split("error: ", 1)[1])
    assert len(set(messages)) == 1 and messages[0] == f"--gpt2 {files / 'nowhere'}: no such folder\n"


@pytest.mark.parametrize("args, fragment", [
    (["train", "{d}/text.txt", "--out", "{d}/empty-folder"], "--out {d}/empty-folder is a folder"),
    (["train", "{d}/text.txt", "--out", "{d}/a-file/model.safetensors"], "{d}/a-file is a file, not a folder"),
    (["train", "{d}/text.txt", "--data-dir", "{d}/a-file"], "--data-dir {d}/a-file is a file"),
    (["prepare", "{d}/text.txt", "--data-dir", "{d}/a-file/sub"], "{d}/a-file is a file, not a folder"),
])
def test_bad_outputs_are_usage_errors_found_before_any_work(capsys, files, tmp_path, args, fragment):
    before = sorted(p.name for p in files.iterdir())
    code, err = outcome(capsys, [a.format(d=files) for a in args])
    assert code == 2
    assert_one_clean_line(err, fragment.format(d=files))
    assert sorted(p.name for p in files.iterdir()) == before   # no tokenizer left behind
    assert not any(p.is_file() for p in (tmp_path / "outputs").rglob("*"))   # nothing prepared


# --- numeric flags ----------------------------------------------------------------------------

def numeric_flags() -> list[tuple[str, str]]:
    """(subcommand, dest) of every flag that argparse parses as a number."""
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    found = []
    for name, sub in commands.items():
        for action in sub._actions:
            if action.type in (int, float):
                found.append((name, action.dest))
    return found


NEEDS = {"prepare": [], "train": [], "generate": ["--checkpoint", "x"], "eval": ["--checkpoint", "x", "t.txt"],
         "tokenize": ["hi"],
         "align": ["dpo", "--preferences", "p.jsonl", "--checkpoint", "x", "--out", "o.safetensors"]}


def is_valid(dest: str, text: str) -> bool:
    try:
        value = int(text)
    except ValueError:
        try:
            value = float(text)
        except ValueError:
            return False
    try:
        _FLAG_CHECKS[dest](flag_name(dest), value)
    except (TypeError, ValueError):
        return False
    return True


CASES = [(command, dest, text) for command, dest in numeric_flags()
         for text in ("0", "-1", "nan", "inf", "many")]


def test_every_numeric_flag_has_a_check():
    flags = numeric_flags()
    assert len(flags) >= 25 and all(dest in _FLAG_CHECKS for _, dest in flags)


@pytest.mark.parametrize("command, dest, text", CASES)
def test_every_numeric_flag_refuses_zero_minus_one_nan_inf_and_text_with_status_2(capsys, command, dest, text):
    if is_valid(dest, text):   # --seed 0, --dropout 0, --temperature 0, ...: fine values
        pytest.skip(f"{flag_name(dest)} {text} is a valid value")
    code, err = outcome(capsys, [command, *NEEDS[command], flag_name(dest), text])
    assert code == 2, err
    assert_one_clean_line(err, flag_name(dest), text if text != "inf" else "inf")


def test_library_checked_values_are_usage_errors_too(capsys, files):
    code, err = outcome(capsys, ["eval", files / "text.txt", "--checkpoint", files / "model.safetensors",
                                 "--stride", "99999"])
    assert code == 2
    assert_one_clean_line(err, "--stride must be at most the model's context length 8, got 99999")


def test_a_corrupt_checkpoint_is_a_runtime_error(capsys, files, tmp_path):
    damaged = tmp_path / "cut.safetensors"
    damaged.write_bytes((files / "model.safetensors").read_bytes()[:-100])
    code, err = outcome(capsys, ["generate", "--checkpoint", damaged])
    assert code == 1
    assert_one_clean_line(err, str(damaged), "truncated or corrupt")


def test_warnings_reach_the_user_on_one_line_without_source_paths(capsys, files, tmp_path):
    # a vocabulary larger than the text can fill: the tokenizer warns, and training goes on
    code, err = outcome(capsys, ["prepare", files / "text.txt", "--vocab-size", "4000",
                                 "--data-dir", tmp_path / "data"])
    assert code == 0
    lines = err.splitlines()
    assert lines and all(line.startswith("tinygrad-llm prepare: warning: ") for line in lines)
    assert ".py" not in err and "UserWarning" not in err


@pytest.mark.parametrize("args, fragment", [
    (["tokenize", "\udcedabc"], "the text is not valid UTF-8 text (byte 0xed at character 0)"),
    (["generate", "--checkpoint", "x", "--prompt", "ab\udcff"], "--prompt is not valid UTF-8 text (byte 0xff"),
])
def test_command_line_text_that_is_not_utf8_is_a_usage_error(capsys, args, fragment):
    # Python passes undecodable argv bytes on as lone surrogates, as these strings hold
    code, err = outcome(capsys, args)
    assert code == 2
    assert_one_clean_line(err, fragment)
