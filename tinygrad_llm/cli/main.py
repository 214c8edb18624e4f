"""The command line, ``python -m tinygrad_llm`` or ``tinygrad-llm`` (after lesson 07).

What the lessons do step by step, from a shell::

    tinygrad-llm prepare corpus.txt                       tokenizer + token arrays (cached)
    tinygrad-llm train corpus.txt --steps 2000 --out run/model.safetensors
    tinygrad-llm train corpus.txt --resume run/model.safetensors --steps 4000
    tinygrad-llm generate --checkpoint run/model.safetensors --prompt "The for statement"
    tinygrad-llm generate --gpt2 path/to/gpt2 --prompt "Hello, I am" --top-k 40
    tinygrad-llm eval --checkpoint run/model.safetensors text.txt --stride 64
    tinygrad-llm eval --checkpoint run/model.safetensors --tasks arithmetic,my_task.jsonl --num-fewshot 4
    tinygrad-llm tokenize "Hello world" --gpt2 path/to/gpt2
    tinygrad-llm export --checkpoint run/model.safetensors --format gguf --dtype q8_0 --out model.gguf
    tinygrad-llm export --checkpoint run/model.safetensors --format hf --out run/hf
    tinygrad-llm exercise check 05.2                      check the answer in exercises/05_2.py

Every subcommand parses its flags, checks them all before any work starts, and calls the
package. A mistake prints one line on stderr, naming the flag as the user typed it, and no
traceback: a bad flag value (``--lr nan``, ``--seed -1``, an ``--out`` that is a folder) exits
with status 2, argparse's convention for usage errors, whether argparse or our checks find it; a
problem found while working (a missing or unreadable file, a corrupt checkpoint) exits with 1.

``train`` saves the tokenizer next to the checkpoint (``model.safetensors`` ->
``model.tokenizer.json``) and records that name in the checkpoint, so ``generate`` and ``eval``
find it without being told; ``--tokenizer`` overrides it.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import re
import sys
import time
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

from ..core.checks import (check_float, check_fraction, check_int, check_non_negative, check_positive,
                           check_positive_int)
from ..text.bpe import BPETokenizer
from ..text.patterns import ENDOFTEXT, GPT2_SPLIT_PATTERN, pattern_name
from ..model.state import CheckpointError, config_from_metadata
from ..text.corpus import read_text
from ..course.settings import output_dir
from ..course.recipe import (COURSE_PATTERN, COURSE_PATTERNS, course_model_config, course_tokenizer,
                             course_train_config, prepare_with_defaults)
from ..evaluate.benchmarks import TASK_NAMES, builtin_task
from ..evaluate.harness import evaluate_tasks, format_table, load_task
from ..evaluate.perplexity import token_nll
from ..align.dpo import LOSSES as PREFERENCE_LOSSES, DPOObjective, implicit_rewards
from ..align.preferences import encode_pairs, read_preferences
from ..align.sequences import pair_batches, reference_logprobs
from ..finetune.instruction_data import PromptTemplate
from ..model.generation import generate
from ..model.gpt import GPT
from ..model.gpt2 import export_gpt2, load_gpt2
from ..compress.export import DTYPES as GGUF_DTYPES, export_gguf
from ..train.trainer import TrainConfig, Trainer, load_checkpoint_file, load_model

PROG = "tinygrad-llm"

# Errors a user can cause and fix; anything else is a bug and keeps its traceback.
USER_ERRORS = (CheckpointError, OSError, ValueError, KeyError, IndexError, TypeError,
               FloatingPointError, MemoryError)


class UsageError(Exception):
    """A flag value that makes no sense, found after argparse: exit status 2, like argparse's own."""


class InputError(Exception):
    """A file or folder the user named is missing or cannot be read: exit status 1."""


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (it prints the usage first by default)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def positive_int(text: str) -> int:
    """argparse type for counts: ``"3"`` -> 3; ``"0"`` or ``"x"`` is a usage error."""
    try:
        return check_positive_int("value", int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None


# --- checking every flag before any work ------------------------------------------------------

# argparse parses the text (``int``/``float``); these say which values make sense, by the flag's
# destination (one meaning per name across subcommands). Messages name the flag as typed.
_FLAG_CHECKS: dict[str, Callable[[str, object], object]] = {
    # 256 byte tokens and <|endoftext|> come first; fewer leaves no room for a single merge
    "vocab_size": lambda flag, v: check_int(flag, v, minimum=257),
    "val_fraction": lambda flag, v: check_float(flag, v, low=0.0, high=1.0, low_open=True, high_open=True),
    "d_model": check_positive_int, "n_layer": check_positive_int, "n_head": check_positive_int,
    "context_length": check_positive_int,
    "dropout": lambda flag, v: check_fraction(flag, v, high_open=True),
    "steps": check_positive_int, "batch_size": check_positive_int, "eval_interval": check_positive_int,
    "eval_batches": check_positive_int, "log_interval": check_positive_int,
    "save_every": check_positive_int, "num_samples": check_positive_int, "stride": check_positive_int,
    "top_k": check_positive_int,
    "lr": check_positive, "min_lr": check_non_negative, "weight_decay": check_non_negative,
    "grad_clip": check_positive, "time_limit": check_positive, "repetition_penalty": check_positive,
    "temperature": check_non_negative,          # 0 means greedy
    "top_p": lambda flag, v: check_fraction(flag, v, low_open=True),
    "warmup_steps": lambda flag, v: check_int(flag, v, minimum=0),
    "max_new_tokens": lambda flag, v: check_int(flag, v, minimum=0),
    "seed": lambda flag, v: check_int(flag, v, minimum=0),   # NumPy's generators take seeds >= 0
    "num_fewshot": lambda flag, v: check_int(flag, v, minimum=0),
    "limit": check_positive_int, "count": check_positive_int, "beta": check_positive,
}


def flag_name(dest: str) -> str:
    """``min_lr`` -> ``--min-lr``: every flag of this command line is its destination spelled so."""
    return "--" + dest.replace("_", "-")


def check_flags(args: argparse.Namespace) -> None:
    """Every numeric flag given a value that makes no sense raises UsageError naming the flag;
    so does text on the command line that is not UTF-8."""
    for dest, what in (("prompt", "--prompt"), ("text", "the text")):
        value = getattr(args, dest, None)
        if isinstance(value, str) and args.command != "eval":   # eval's TEXT_FILE is a path
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as error:
                # Python hands undecodable argv bytes over as lone surrogates U+DC80..U+DCFF
                raise UsageError(f"{what} is not valid UTF-8 text (byte "
                                 f"0x{ord(value[error.start]) & 0xFF:02x} at character {error.start})") from None
    for dest, check in _FLAG_CHECKS.items():
        value = getattr(args, dest, None)
        if value is not None:
            try:
                check(flag_name(dest), value)
            except (TypeError, ValueError) as error:
                raise UsageError(str(error)) from None


def _check_parents(path: Path, flag: str) -> Path:
    """The nearest existing ancestor of ``path`` must be a folder (one we can create into)."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UsageError(f"{flag} {path}: {parent} is a file, not a folder")
            break
    return path


def check_output_file(path: Path, flag: str) -> Path:
    """A file we may create or replace: not a folder, and inside a folder (or one we can create)."""
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a folder; give a file name (e.g. {path / 'model.safetensors'})")
    return _check_parents(path, flag)


def check_output_folder(path: Path, flag: str) -> Path:
    """A folder we may create or write into: not a file, and inside a folder."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {path} is a file, not a folder")
    return _check_parents(path, flag)


def check_input(path: str | Path, what: str, kind: str = "file") -> Path:
    """An existing ``kind`` ("file", "folder" or "file or folder") that the user named as ``what``
    (a flag, or a word for a positional argument); a missing one, a folder for a file, or a special
    file (a FIFO would block forever) raises InputError, worded alike for every subcommand."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{what} {path}: no such {kind}")
    if path.is_dir():
        if kind == "file":
            raise InputError(f"{what} {path} is a folder, not a file")
    elif kind == "folder":
        raise InputError(f"{what} {path} is a file, not a folder")
    elif not path.is_file():
        raise InputError(f"{what} {path} is not a regular file")
    return path


def in_flag_names(message: str) -> str:
    """A library message about settings, with the settings spelled as the user's flags.

        >>> in_flag_names("GPTConfig: d_model 16 is not divisible by n_head 3")
        '--d-model 16 is not divisible by --n-head 3'
    """
    # the names a library message may use for a setting the user gave as a flag
    internal_names = {**{f"GPTConfig.{field}": flag_name(flag) for flag, field in _MODEL_FLAGS.items()},
                      **{f"TrainConfig.{field}": flag_name(flag) for flag, field in _TRAIN_FLAGS.items()}}
    for internal, flag in internal_names.items():
        message = message.replace(internal, flag)
    if message.startswith(("GPTConfig: ", "TrainConfig: ")):
        message = message.split(": ", 1)[1]
        for internal, flag in internal_names.items():
            message = re.sub(rf"\b{re.escape(internal.split('.')[1])}\b", flag, message)
    return message


# --- loading a model and its tokenizer --------------------------------------------------------

def read_tokenizer(path: str | Path, flag: str = "--tokenizer") -> BPETokenizer:
    """Our tokenizer JSON file, or a folder with GPT-2's ``vocab.json`` + ``merges.txt``."""
    path = check_input(path, flag, "file or folder")
    if path.is_dir():
        return BPETokenizer.from_gpt2(path)
    return BPETokenizer.load(path)


def tokenizer_path_for(checkpoint: Path) -> Path:
    """Where ``train`` saves the tokenizer of a checkpoint: beside it, named after it."""
    return checkpoint.with_name(checkpoint.name.removesuffix(".safetensors") + ".tokenizer.json")


def checkpoint_tokenizer(checkpoint: Path, metadata: dict[str, str]) -> BPETokenizer:
    """The tokenizer a checkpoint names in its ``tokenizer`` metadata, resolved next to it."""
    name = metadata.get("tokenizer", "")
    if not name:
        raise CheckpointError(f"{checkpoint} does not record its tokenizer; pass --tokenizer")
    path = checkpoint.parent / name   # an absolute name stays as it is
    if not path.is_file() or path.is_dir():
        raise FileNotFoundError(f"{checkpoint} was trained with the tokenizer {name!r}, which is not "
                                f"next to it ({path}); pass --tokenizer")
    return BPETokenizer.load(path)


def load_model_and_tokenizer(args) -> tuple[GPT, BPETokenizer]:
    """From ``--checkpoint`` (ours) or ``--gpt2`` (a Hugging Face folder), and ``--tokenizer``."""
    if args.gpt2:
        model = load_gpt2(check_input(args.gpt2, "--gpt2", "folder"))
        tokenizer = read_tokenizer(args.tokenizer) if args.tokenizer else read_tokenizer(args.gpt2, "--gpt2")
    else:
        checkpoint = check_input(args.checkpoint, "--checkpoint")
        model, metadata = load_model(checkpoint)
        tokenizer = (read_tokenizer(args.tokenizer) if args.tokenizer
                     else checkpoint_tokenizer(checkpoint, metadata))
    check_vocabulary(tokenizer, model)
    return model, tokenizer


def check_vocabulary(tokenizer: BPETokenizer, model: GPT) -> None:
    if tokenizer.vocab_size > model.config.vocab_size:
        raise ValueError(f"the tokenizer has {tokenizer.vocab_size} tokens but the model only "
                         f"{model.config.vocab_size}: they do not belong together")


def _add_model_source(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", metavar="PATH", help="a checkpoint written by 'train'")
    source.add_argument("--gpt2", metavar="FOLDER",
                        help="a Hugging Face GPT-2 folder (config.json, model.safetensors, "
                             "vocab.json, merges.txt)")
    parser.add_argument("--tokenizer", metavar="PATH",
                        help="our tokenizer .json or a folder with vocab.json + merges.txt "
                             "(default: the checkpoint's own, or the GPT-2 folder's)")


# --- prepare ----------------------------------------------------------------------------------

def _add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", nargs="?", default=None,
                        help="a UTF-8 text file or a folder of .txt files (default: the embedded "
                             "corpus, CPython's documentation)")
    parser.add_argument("--vocab-size", type=int, metavar="N",
                        help="train a BPE tokenizer of N tokens (default 2048; 512 with --quick)")
    parser.add_argument("--val-fraction", type=float, default=0.1, metavar="F",
                        help="the last fraction F of the tokens is validation (default 0.1)")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="where token arrays go (default: <output folder>/data)")
    parser.add_argument("--quick", action="store_true", help="tiny settings, for a smoke test")
    parser.add_argument("--pattern", choices=COURSE_PATTERNS, default=COURSE_PATTERN,
                        help="how a new tokenizer splits text before its merges: gpt4 (the course's, "
                             "default) or gpt2 (GPT-2's; a model trained with it can be exported to "
                             "Hugging Face with its tokenizer)")


def _prepare(args, tokenizer: BPETokenizer | None = None, force: bool = False):
    if args.source is not None:
        check_input(args.source, "corpus", "file or folder")
    if tokenizer is not None and args.pattern != COURSE_PATTERN:
        raise UsageError("--pattern applies to a tokenizer trained here, not to --tokenizer's")
    return prepare_with_defaults(args.source, tokenizer=tokenizer, vocab_size=args.vocab_size,
                                 val_fraction=args.val_fraction, out_dir=args.data_dir, force=force,
                                 quick=args.quick, pattern=args.pattern)


def cmd_prepare(args) -> int:
    if args.data_dir:
        check_output_folder(Path(args.data_dir), "--data-dir")
    tokenizer = read_tokenizer(args.tokenizer) if args.tokenizer else None
    corpus = _prepare(args, tokenizer, force=args.force)
    print(f"{'cached' if corpus.cached else 'prepared'}: {corpus.folder}")
    for key, value in corpus.stats.items():
        if isinstance(value, (int, float)):
            value = f"{value:,.3f}" if isinstance(value, float) else f"{value:,}"
        print(f"  {key:16s} {value}")
    return 0


# --- train ------------------------------------------------------------------------------------

# flag -> GPTConfig field, and flag -> TrainConfig field; a flag left out keeps the base value
_MODEL_FLAGS = {"d_model": "d_model", "n_layer": "n_layer", "n_head": "n_head",
                "context_length": "context_length", "dropout": "dropout", "position": "position"}
_TRAIN_FLAGS = {"steps": "steps", "batch_size": "batch_size", "lr": "learning_rate",
                "min_lr": "min_learning_rate", "warmup_steps": "warmup_steps",
                "weight_decay": "weight_decay", "grad_clip": "grad_clip",
                "eval_interval": "eval_interval", "eval_batches": "eval_batches",
                "log_interval": "log_interval", "seed": "seed"}


def _given(args, flags: dict[str, str]) -> dict[str, object]:
    return {field: getattr(args, flag) for flag, field in flags.items() if getattr(args, flag) is not None}


def cmd_train(args) -> int:
    model_changes, train_changes = _given(args, _MODEL_FLAGS), _given(args, _TRAIN_FLAGS)
    if args.no_bias:
        model_changes["bias"] = False
    if args.untied:
        model_changes["tie_weights"] = False
    # every output is checked before hours of training could end in a failed save
    out = Path(args.out) if args.out else Path(args.resume) if args.resume else \
        output_dir("checkpoints") / "model.safetensors"
    check_output_file(out, "--out")
    tokenizer_path = check_output_file(tokenizer_path_for(out), "--out (its tokenizer file)")
    if args.data_dir:
        check_output_folder(Path(args.data_dir), "--data-dir")
    if not args.resume:   # the model flags together, before the tokenizer decides vocab_size
        _configured(course_model_config(args.vocab_size or 257, args.quick), model_changes)
        _configured(course_train_config(args.quick), train_changes)
    if args.resume:
        resume = check_input(args.resume, "--resume")
        model, metadata = load_model(resume)
        stored = dataclasses.asdict(model.config)
        changed = [f"{k}={v!r}" for k, v in model_changes.items() if stored[k] != v]
        if changed:
            raise ValueError(f"cannot change the model when resuming ({', '.join(changed)}); "
                             f"{resume} has {model.config}")
        tokenizer = (read_tokenizer(args.tokenizer) if args.tokenizer
                     else checkpoint_tokenizer(resume, metadata))
        base_train = config_from_metadata(resume, metadata, "train_config", TrainConfig)
        corpus = _prepare(args, tokenizer)
        check_vocabulary(corpus.tokenizer, model)
    else:
        corpus = _prepare(args, read_tokenizer(args.tokenizer) if args.tokenizer else None)
        config = _configured(course_model_config(corpus.tokenizer.vocab_size, args.quick), model_changes)
        base_train = course_train_config(args.quick)
        seed = train_changes.get("seed", base_train.seed)
        model = GPT(config, rng=np.random.default_rng(seed))
    train_config = _configured(base_train, train_changes)
    trainer = Trainer(model, corpus.train, corpus.val, train_config, log=print,
                      tokenizer_ref=tokenizer_path.name)
    if args.resume:
        trainer.load(args.resume)
    print(f"model: {model.num_parameters():,} parameters, {model.config}")
    print(f"data: {len(corpus.train):,} training and {len(corpus.val):,} validation tokens "
          f"from {corpus.folder}")
    tokenizer_path.parent.mkdir(parents=True, exist_ok=True)
    corpus.tokenizer.save(tokenizer_path)

    deadline = None if args.time_limit is None else time.monotonic() + args.time_limit
    while True:
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        trainer.train(steps=args.save_every, time_limit=remaining)
        trainer.save(out)
        print(f"saved step {trainer.step} to {out}")
        if trainer.step >= train_config.steps or (deadline is not None and time.monotonic() >= deadline):
            return 0


def _configured(base, changes: dict):
    """``dataclasses.replace(base, **changes)``; a combination of flags the config refuses (say
    --d-model 16 with --n-head 3) is a usage error, worded with the flags."""
    try:
        return dataclasses.replace(base, **changes)
    except (TypeError, ValueError) as error:
        raise UsageError(in_flag_names(str(error))) from None


# --- generate ---------------------------------------------------------------------------------

def cmd_generate(args) -> int:
    model, tokenizer = load_model_and_tokenizer(args)
    eot = tokenizer.special_tokens.get(ENDOFTEXT)
    prompt = tokenizer.encode(args.prompt, allowed_special="all")
    if not prompt:
        if eot is None:
            raise ValueError("the prompt is empty and the tokenizer has no <|endoftext|> to start from; "
                             "give --prompt")
        prompt = [eot]   # an unconditional sample: what follows the end of some other text
    idx = np.tile(np.array(prompt, dtype=np.int64), (args.num_samples, 1))   # (B, T)
    out = generate(model, idx, args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                   top_p=args.top_p, repetition_penalty=args.repetition_penalty,
                   stop_tokens=() if eot is None else (eot,), rng=np.random.default_rng(args.seed),
                   use_cache=not args.no_cache)
    for k, row in enumerate(out):
        new = row[len(prompt):].tolist()
        if eot is not None and eot in new:
            new = new[:new.index(eot)]   # stopped: drop the end-of-text token and the padding
        if args.num_samples > 1:
            print(f"--- sample {k + 1} ---")
        print(args.prompt + tokenizer.decode(new))
    return 0


# --- eval -------------------------------------------------------------------------------------

def cmd_eval(args) -> int:
    if (args.text is None) == (args.tasks is None):
        raise UsageError("eval needs a TEXT_FILE (perplexity) or --tasks (benchmarks), not both")
    if args.tasks is not None:
        return eval_tasks(args)
    for flag in ("num_fewshot", "limit", "count", "output"):
        if getattr(args, flag) is not None:
            raise UsageError(f"{flag_name(flag)} goes with --tasks")
    text_path = check_input(args.text, "text file")
    model, tokenizer = load_model_and_tokenizer(args)
    if args.stride is not None and args.stride > model.config.context_length:
        raise UsageError(f"--stride must be at most the model's context length "
                         f"{model.config.context_length}, got {args.stride}")
    text = read_text(text_path)
    tokens = np.array(tokenizer.encode(text, allowed_special="all"), dtype=np.int64)
    total, count = token_nll(model, tokens, stride=args.stride, batch_size=args.batch_size)
    loss = total / count
    print(f"{args.text}: {count:,} tokens scored, loss {loss:.4f} nats/token, "
          f"perplexity {np.exp(loss):.2f} (context {model.config.context_length}, "
          f"stride {args.stride or model.config.context_length})")
    return 0


def read_tasks(spec: str, count: int, seed: int) -> list:
    """``--tasks``: comma-separated built-in task names (``all`` for the four) or task files."""
    names = [name.strip() for name in spec.split(",")]
    if not all(names):
        raise UsageError(f"--tasks {spec!r} has an empty entry; give names or files separated by commas")
    tasks = []
    for name in names:
        if name == "all":
            tasks.extend(builtin_task(n, count, seed) for n in TASK_NAMES)
        elif name in TASK_NAMES:
            tasks.append(builtin_task(name, count, seed))
        elif name.endswith((".jsonl", ".json")) or Path(name).exists():
            tasks.append(load_task(check_input(name, "task file")))
        else:
            raise UsageError(f"--tasks: {name!r} is neither a built-in task ({', '.join(TASK_NAMES)}, all) "
                             f"nor a task file")
    return tasks


def eval_tasks(args) -> int:
    """Benchmark tasks: one progress line per task on stderr, the table on stdout, JSON to --output."""
    output = None if args.output is None else check_output_file(Path(args.output), "--output")
    tasks = read_tasks(args.tasks, args.count or 200, args.seed or 0)
    model, tokenizer = load_model_and_tokenizer(args)
    shots = args.num_fewshot or 0
    for task in tasks:
        if shots > len(task.fewshot_docs):
            raise UsageError(f"--num-fewshot {shots}: task {task.name!r} has only {len(task.fewshot_docs)} "
                             f"few-shot documents")
    print(f"scoring {len(tasks)} task(s), {shots}-shot, with a model of {model.config.context_length} "
          f"tokens' context", file=sys.stderr)
    results = evaluate_tasks(model, tokenizer, tasks, num_fewshot=shots, seed=args.seed or 0,
                             batch_size=args.batch_size, limit=args.limit,
                             progress=lambda line: print(line, file=sys.stderr, flush=True))
    print(format_table(results))
    cut = sum(r.truncated for r in results)
    if cut:
        print(f"{cut} prompt(s) were longer than the window and lost their oldest tokens", file=sys.stderr)
    if output is not None:
        output.write_text(json.dumps([r.as_dict() for r in results], indent=2) + "\n", encoding="utf-8")
        print(f"results written to {output}", file=sys.stderr)
    return 0


# --- tokenize ---------------------------------------------------------------------------------

def cmd_tokenize(args) -> int:
    if args.tokenizer:
        tokenizer = read_tokenizer(args.tokenizer)
    elif args.gpt2:
        tokenizer = read_tokenizer(check_input(args.gpt2, "--gpt2", "folder"), "--gpt2")
    elif args.checkpoint:
        checkpoint = check_input(args.checkpoint, "--checkpoint")
        tokenizer = checkpoint_tokenizer(checkpoint, load_checkpoint_file(checkpoint)[1])
    else:
        tokenizer = course_tokenizer(args.quick)
    ids = tokenizer.encode(args.text, allowed_special="all")
    print(f"{len(ids)} tokens for {len(args.text.encode('utf-8'))} bytes: {ids}")
    width = len(str(max(ids, default=0)))
    for token_id in ids:
        print(f"  {token_id:>{width}}  {_show_piece(tokenizer.token_bytes(token_id))}")
    return 0


# --- export -----------------------------------------------------------------------------------

EXPORT_FORMATS = ("gguf", "hf")


def cmd_export(args) -> int:
    """A checkpoint (or GPT-2 folder) as a GGUF file for llama.cpp, or as a Hugging Face GPT-2 folder."""
    out = Path(args.out)
    if args.format == "gguf":
        if args.without_tokenizer:
            raise UsageError("--without-tokenizer is for --format hf; a GGUF file always carries its tokenizer")
        check_output_file(out, "--out")
    else:
        if args.dtype not in (None, "f32"):
            raise UsageError(f"--dtype {args.dtype} is for --format gguf; the Hugging Face export keeps "
                             f"the model's float32 weights")
        check_output_folder(out, "--out")
    model, tokenizer = load_model_and_tokenizer(args)
    if args.format == "gguf":
        if importlib.util.find_spec("gguf") is None:
            raise InputError('--format gguf needs the gguf package: pip install -e ".[gguf]"')
        path = export_gguf(model.eval(), tokenizer, out, args.dtype or "f32")
        print(f"wrote {path} ({path.stat().st_size:,} bytes, matrices in {args.dtype or 'f32'}): "
              f"llama.cpp's GPT-2 architecture with the tokenizer")
    else:
        if not args.without_tokenizer and tokenizer.pattern != GPT2_SPLIT_PATTERN:
            raise InputError(f"the tokenizer splits text with the {pattern_name(tokenizer.pattern)} pattern, which "
                             f"vocab.json + merges.txt cannot record (readers assume GPT-2's): train with "
                             f"--pattern gpt2, or pass --without-tokenizer")
        folder = export_gpt2(model, out, None if args.without_tokenizer else tokenizer)
        written = ", ".join(sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")))
        print(f"wrote {folder}: {written}")
    return 0


def cmd_align(args) -> int:
    """DPO or IPO on a preference file: the checkpoint is both the starting policy and the frozen
    reference; the tuned policy is saved as a checkpoint with its tokenizer beside it."""
    out = check_output_file(Path(args.out), "--out")
    tokenizer_path = check_output_file(tokenizer_path_for(out), "--out (its tokenizer file)")
    rankings = read_preferences(check_input(args.preferences, "--preferences"))
    model, tokenizer = load_model_and_tokenizer(args)
    if tokenizer.eot_id is None:
        raise ValueError("the tokenizer has no <|endoftext|> token, which ends every answer of a preference pair")
    template = PromptTemplate.compact() if args.template == "compact" else PromptTemplate()
    pairs = encode_pairs(tokenizer, rankings, model.config.context_length, template)
    pad = tokenizer.eot_id
    reference = reference_logprobs(model, pairs, pad)
    steps, lr = args.steps or 100, args.lr or 5e-4
    config = TrainConfig(steps=steps, batch_size=args.batch_size or 16, learning_rate=lr, min_learning_rate=lr / 10,
                         warmup_steps=max(1, steps // 10), weight_decay=0.0, log_interval=max(1, steps // 10),
                         eval_interval=steps, seed=args.seed or 0)
    print(f"{len(rankings):,} rankings -> {len(pairs):,} preference pairs; {args.method.upper()} with "
          f"beta {args.beta} for {steps} steps of {config.batch_size} pairs")
    model.train()
    trainer = Trainer(model, config=config, log=print, tokenizer_ref=tokenizer_path.name,
                      batches=pair_batches(pairs, np.random.default_rng(config.seed)),
                      objective=DPOObjective(reference, pad, beta=args.beta, loss=args.method))
    trainer.train()
    trainer.save(out)
    tokenizer.save(tokenizer_path)
    rewards = implicit_rewards(reference_logprobs(model, pairs, pad), reference, args.beta)
    print(f"saved {out}: the chosen answer has the higher implicit reward in "
          f"{np.mean(rewards[:, 0] > rewards[:, 1]):.1%} of the training pairs")
    return 0


def cmd_exercise(args) -> int:
    """``exercise list`` prints every exercise; ``exercise check ID`` checks the learner's answer."""
    from ..course.exercises import EXERCISE_DIR, REGISTRY, ExerciseFailed, check_exercise
    folder = Path(args.dir) if args.dir else EXERCISE_DIR
    if args.action == "list":
        for entry in REGISTRY.values():
            print(f"{entry.id:>5}  lesson {entry.lesson:02d}  {entry.title}  ({folder / entry.filename})")
        return 0
    if args.id is None:
        raise ValueError("exercise check needs an exercise id, e.g. 05.2 (see tinygrad-llm exercise list)")
    try:
        verified = check_exercise(args.id, folder)
    except ExerciseFailed as failure:
        print(f"exercise {args.id}: not yet. {failure}", file=sys.stderr)
        return 1
    print(f"exercise {args.id}: correct. {verified}")
    return 0


def _show_piece(data: bytes) -> str:
    r"""A token's text quoted, so that spaces show; a piece of a UTF-8 character as its bytes.

        >>> _show_piece(b" the"), _show_piece("é".encode()[:1])
        ("' the'", "b'\\xc3'")
    """
    try:
        return repr(data.decode("utf-8"))
    except UnicodeDecodeError:
        return repr(data)


# --- the parser -------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Prepare data, train, sample and evaluate GPT models "
                                            "with tinygrad_llm (NumPy only).",
                     epilog="Generated files (token arrays, checkpoints) go to the output folder: "
                            "outputs/ in the project, or $TINYGRAD_LLM_OUT; "
                            "its quick/ sub-folder with --quick. "
                            "'tinygrad-llm COMMAND --help' describes each command.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("prepare", help="train or load a tokenizer and write the token arrays",
                            description="Tokenize a corpus into train/validation token arrays (cached).")
    _add_data_options(p)
    p.add_argument("--tokenizer", metavar="PATH", help="use this tokenizer instead of training one")
    p.add_argument("--force", action="store_true", help="recompute even if cached")
    p.set_defaults(run=cmd_prepare)

    p = commands.add_parser("train", help="train a GPT (or resume training) and save a checkpoint",
                            description="Train a GPT on a corpus. Flags left out keep the course "
                                        "defaults, or, with --resume, the checkpoint's settings.")
    _add_data_options(p)
    p.add_argument("--tokenizer", metavar="PATH", help="use this tokenizer instead of training one")
    p.add_argument("--out", metavar="PATH",
                   help="checkpoint to write (default: <output folder>/checkpoints/model.safetensors, "
                        "or the --resume checkpoint)")
    p.add_argument("--resume", metavar="PATH", help="continue from this checkpoint")
    model = p.add_argument_group("model (default: the course model, 4 layers of width 128)")
    model.add_argument("--d-model", type=int, metavar="N")
    model.add_argument("--n-layer", type=int, metavar="N")
    model.add_argument("--n-head", type=int, metavar="N")
    model.add_argument("--context-length", type=int, metavar="N")
    model.add_argument("--dropout", type=float, metavar="P")
    model.add_argument("--position", choices=("learned", "sinusoidal"))
    model.add_argument("--no-bias", action="store_true", help="no biases in Linear and LayerNorm")
    model.add_argument("--untied", action="store_true", help="an output head of its own")
    training = p.add_argument_group("training (default: the course recipe of lesson 07)")
    training.add_argument("--steps", type=int, metavar="N",
                          help="total optimizer steps (a resumed run continues up to N)")
    training.add_argument("--batch-size", type=int, metavar="N")
    training.add_argument("--lr", type=float, metavar="LR", help="peak learning rate")
    training.add_argument("--min-lr", type=float, metavar="LR", help="learning rate at the end of the decay")
    training.add_argument("--warmup-steps", type=int, metavar="N")
    training.add_argument("--weight-decay", type=float, metavar="W")
    training.add_argument("--grad-clip", type=float, metavar="NORM")
    training.add_argument("--eval-interval", type=int, metavar="N")
    training.add_argument("--eval-batches", type=int, metavar="N")
    training.add_argument("--log-interval", type=int, metavar="N")
    training.add_argument("--seed", type=int, metavar="S")
    training.add_argument("--save-every", type=int, metavar="N", help="also save every N steps")
    training.add_argument("--time-limit", type=float, metavar="SECONDS",
                          help="stop (and save) after this long")
    p.set_defaults(run=cmd_train)

    p = commands.add_parser("generate", help="continue a prompt",
                            description="Sample text from a checkpoint or a GPT-2 folder.")
    _add_model_source(p)
    p.add_argument("--prompt", default="", help="the text to continue (default: start a new text)")
    p.add_argument("--max-new-tokens", type=int, default=100, metavar="N")
    p.add_argument("--temperature", type=float, default=1.0, metavar="T", help="0 means greedy (default 1)")
    p.add_argument("--top-k", type=int, metavar="K", help="sample from the K most likely tokens")
    p.add_argument("--top-p", type=float, metavar="P", help="sample from the smallest set of mass P")
    p.add_argument("--repetition-penalty", type=float, default=1.0, metavar="R",
                   help="above 1 makes repeats less likely (default 1: off)")
    p.add_argument("--num-samples", type=int, default=1, metavar="N")
    p.add_argument("--seed", type=int, default=0, metavar="S")
    p.add_argument("--no-cache", action="store_true", help="recompute every position (no KV cache)")
    p.set_defaults(run=cmd_generate)

    p = commands.add_parser("eval", help="perplexity on a text file, or accuracy on benchmark tasks",
                            description="Perplexity on a UTF-8 text file, with a sliding window; or, "
                                        "with --tasks, benchmark tasks scored by log-likelihood.")
    _add_model_source(p)
    p.add_argument("text", metavar="TEXT_FILE", nargs="?", help="the text to score (perplexity)")
    p.add_argument("--stride", type=int, metavar="N",
                   help="move the window by N tokens (default: the context length, no overlap)")
    p.add_argument("--batch-size", type=int, default=8, metavar="N")
    tasks = p.add_argument_group("benchmarks")
    tasks.add_argument("--tasks", metavar="NAMES",
                       help="comma-separated: continuation, identifier_cloze, module_of_function, "
                            "arithmetic, all, or task files (.jsonl)")
    tasks.add_argument("--num-fewshot", type=int, metavar="K", help="demonstrations per prompt (default 0)")
    tasks.add_argument("--limit", type=int, metavar="N", help="score only the first N documents of each task")
    tasks.add_argument("--count", type=int, metavar="N", help="documents per built-in task (default 200)")
    tasks.add_argument("--seed", type=int, metavar="S", help="the tasks' and demonstrations' seed (default 0)")
    tasks.add_argument("--output", metavar="PATH", help="also write the results as JSON")
    p.set_defaults(run=cmd_eval)

    p = commands.add_parser("tokenize", help="show the tokens of a string",
                            description="Show the token ids of a string and the text of each token.")
    p.add_argument("text")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--tokenizer", metavar="PATH", help="our tokenizer .json or a GPT-2 folder")
    source.add_argument("--gpt2", metavar="FOLDER", help="a GPT-2 folder (vocab.json + merges.txt)")
    source.add_argument("--checkpoint", metavar="PATH", help="the tokenizer of this checkpoint")
    p.add_argument("--quick", action="store_true",
                   help="the quick course tokenizer (default: the course tokenizer)")
    p.set_defaults(run=cmd_tokenize)

    p = commands.add_parser("export", help="write a model as a GGUF file or a Hugging Face folder",
                            description="Export a checkpoint (or GPT-2 folder) and its tokenizer: a GGUF "
                                        "file for llama.cpp, or a Hugging Face GPT-2 folder.")
    _add_model_source(p)
    p.add_argument("--format", choices=EXPORT_FORMATS, default="gguf",
                   help="gguf: one file for llama.cpp (default); hf: config.json, model.safetensors "
                        "and the tokenizer files for transformers")
    p.add_argument("--dtype", choices=GGUF_DTYPES,
                   help="storage type of the weight matrices in the GGUF file (default f32)")
    p.add_argument("--out", required=True, metavar="PATH",
                   help="the GGUF file to write, or the folder for --format hf")
    p.add_argument("--without-tokenizer", action="store_true",
                   help="--format hf only: write the model without vocab.json and merges.txt")
    p.set_defaults(run=cmd_export)

    p = commands.add_parser("align", help="tune a model on a preference file with DPO or IPO",
                            description="Direct preference optimisation on a JSON-lines preference file "
                                        "(one object per line: prompt + responses ranked best first, or "
                                        "prompt + chosen + rejected). The checkpoint is the starting policy "
                                        "and the frozen reference.")
    p.add_argument("method", choices=PREFERENCE_LOSSES)
    p.add_argument("--preferences", required=True, metavar="FILE", help="the JSON-lines preference file")
    _add_model_source(p)
    p.add_argument("--out", required=True, metavar="PATH", help="the tuned checkpoint to write")
    p.add_argument("--beta", type=float, default=0.1, help="the weight of the implicit KL penalty (default 0.1)")
    p.add_argument("--template", choices=("alpaca", "compact"), default="alpaca",
                   help="how a prompt is laid out, as in instruction tuning (default alpaca)")
    p.add_argument("--steps", type=int, help="training steps (default 100)")
    p.add_argument("--batch-size", type=int, help="preference pairs per step (default 16)")
    p.add_argument("--lr", type=float, help="peak learning rate (default 5e-4)")
    p.add_argument("--seed", type=int, help="seed of the pair order (default 0)")
    p.set_defaults(run=cmd_align)

    p = commands.add_parser("exercise", help="list the course's exercises or check an answer",
                            description="List the exercises, or check the answer in exercises/NN_K.py.")
    p.add_argument("action", choices=("list", "check"))
    p.add_argument("id", nargs="?", help="the exercise, e.g. 05.2")
    p.add_argument("--dir", help="the folder of answer files (default: exercises/ in the project)")
    p.set_defaults(run=cmd_exercise)
    return parser


def _one_line(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        # "[Errno 21] Is a directory: '.x.tmp'" -> "x: is a directory": the user's file, no errno
        name = error.filename2 if error.filename2 is not None else error.filename
        if name is not None:
            name = Path(str(name))
            if name.name.startswith(".") and name.name.endswith(".tmp"):   # our atomic writer's
                name = name.with_name(name.name[1:].rsplit(".", 2)[0])
        reason = error.strerror[:1].lower() + error.strerror[1:]
        return f"{name}: {reason}" if name is not None else reason
    # careful: str(KeyError("x")) is "'x'", with quotes; its message is args[0]
    message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    return " ".join(str(message).split()) or type(error).__name__


def _usage_exit(command: str, message: str) -> None:
    print(f"{PROG} {command}: error: {message} (see {PROG} {command} --help)", file=sys.stderr)
    raise SystemExit(2)


def main(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit status
    (a usage error raises SystemExit(2), as argparse does)."""
    args = build_parser().parse_args(argv)

    def show_warning(message, category, filename, lineno, file=None, line=None):
        # a warning is news for the user, on one line, without our source path
        print(f"{PROG} {args.command}: warning: {' '.join(str(message).split())}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show_warning
        try:
            check_flags(args)
            return args.run(args)
        except UsageError as error:
            _usage_exit(args.command, " ".join(str(error).split()))
        except KeyboardInterrupt:
            print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
            return 130
        except (InputError, *USER_ERRORS) as error:
            print(f"{PROG} {args.command}: error: {_one_line(error)}", file=sys.stderr)
            return 1
