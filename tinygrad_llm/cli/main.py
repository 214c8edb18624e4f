"""The command line, ``python -m tinygrad_llm`` or ``tinygrad-llm`` (after lesson 07).

What the lessons do step by step, from a shell::

    tinygrad-llm prepare corpus.txt                       tokenizer + token arrays (cached)
    tinygrad-llm train corpus.txt --steps 2000 --out run/model.safetensors
    tinygrad-llm train corpus.txt --resume run/model.safetensors --steps 4000
    tinygrad-llm generate --checkpoint run/model.safetensors --prompt "The for statement"
    tinygrad-llm generate --gpt2 path/to/gpt2 --prompt "Hello, I am" --top-k 40
    tinygrad-llm eval --checkpoint run/model.safetensors text.txt --stride 64
    tinygrad-llm tokenize "Hello world" --gpt2 path/to/gpt2
    tinygrad-llm exercise check 05.2                      check the answer in exercises/05_2.py

Every subcommand only parses its flags and calls the package. A problem the user can fix (a
missing file, a bad value, a checkpoint that does not fit) prints one line on stderr and exits
with status 1; bad arguments exit with status 2 (argparse's convention). No traceback either way.

``train`` saves the tokenizer next to the checkpoint (``model.safetensors`` ->
``model.tokenizer.json``) and records that name in the checkpoint, so ``generate`` and ``eval``
find it without being told; ``--tokenizer`` overrides it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from ..text.bpe import ENDOFTEXT, BPETokenizer
from ..model.state import CheckpointError
from ..text.corpus import read_text
from ..course.settings import output_dir
from ..course.recipe import course_model_config, course_tokenizer, course_train_config, prepare_with_defaults
from ..evaluate.perplexity import token_nll
from ..model.generation import generate
from ..model.gpt import GPT
from ..model.gpt2 import load_gpt2
from ..train.trainer import TrainConfig, Trainer, load_checkpoint_file, load_model

PROG = "tinygrad-llm"

# Errors a user can cause and fix; anything else is a bug and keeps its traceback.
USER_ERRORS = (CheckpointError, OSError, ValueError, KeyError, IndexError, TypeError,
               FloatingPointError, MemoryError)


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (it prints the usage first by default)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def positive_int(text: str) -> int:
    """argparse type for counts: ``"3"`` -> 3; ``"0"`` or ``"x"`` is a usage error."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


# --- loading a model and its tokenizer --------------------------------------------------------

def read_tokenizer(path: str | Path) -> BPETokenizer:
    """Our tokenizer JSON file, or a folder with GPT-2's ``vocab.json`` + ``merges.txt``."""
    path = Path(path)
    if path.is_dir():
        return BPETokenizer.from_gpt2(path)
    if not path.is_file():
        raise FileNotFoundError(f"tokenizer not found: {path}")
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
    if not path.is_file():
        raise FileNotFoundError(f"{checkpoint} was trained with the tokenizer {name!r}, which is not "
                                f"next to it ({path}); pass --tokenizer")
    return BPETokenizer.load(path)


def load_model_and_tokenizer(args) -> tuple[GPT, BPETokenizer]:
    """From ``--checkpoint`` (ours) or ``--gpt2`` (a Hugging Face folder), and ``--tokenizer``."""
    if args.gpt2:
        model = load_gpt2(args.gpt2)
        tokenizer = read_tokenizer(args.tokenizer or args.gpt2)
    else:
        checkpoint = Path(args.checkpoint)
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
    parser.add_argument("--vocab-size", type=positive_int, metavar="N",
                        help="train a BPE tokenizer of N tokens (default 2048; 512 with --quick)")
    parser.add_argument("--val-fraction", type=float, default=0.1, metavar="F",
                        help="the last fraction F of the tokens is validation (default 0.1)")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="where token arrays go (default: <output folder>/data)")
    parser.add_argument("--quick", action="store_true", help="tiny settings, for a smoke test")


def _prepare(args, tokenizer: BPETokenizer | None = None, force: bool = False):
    return prepare_with_defaults(args.source, tokenizer=tokenizer, vocab_size=args.vocab_size,
                                 val_fraction=args.val_fraction, out_dir=args.data_dir, force=force,
                                 quick=args.quick)


def cmd_prepare(args) -> int:
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
_TRAIN_FLAGS = {"steps": "max_steps", "batch_size": "batch_size", "lr": "learning_rate",
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
    if args.resume:
        resume = Path(args.resume)
        model, metadata = load_model(resume)
        stored = dataclasses.asdict(model.config)
        changed = [f"{k}={v!r}" for k, v in model_changes.items() if stored[k] != v]
        if changed:
            raise ValueError(f"cannot change the model when resuming ({', '.join(changed)}); "
                             f"{resume} has {model.config}")
        tokenizer = (read_tokenizer(args.tokenizer) if args.tokenizer
                     else checkpoint_tokenizer(resume, metadata))
        stored_train = json.loads(metadata["train_config"])
        base_train = TrainConfig(**{**stored_train, "betas": tuple(stored_train["betas"])})
        corpus = _prepare(args, tokenizer)
        check_vocabulary(corpus.tokenizer, model)
    else:
        corpus = _prepare(args, read_tokenizer(args.tokenizer) if args.tokenizer else None)
        config = dataclasses.replace(course_model_config(corpus.tokenizer.vocab_size, args.quick),
                                     **model_changes)
        base_train = course_train_config(args.quick)
        seed = train_changes.get("seed", base_train.seed)
        model = GPT(config, rng=np.random.default_rng(seed))
    train_config = dataclasses.replace(base_train, **train_changes)

    out = Path(args.out) if args.out else Path(args.resume) if args.resume else \
        output_dir("checkpoints") / "model.safetensors"
    tokenizer_path = tokenizer_path_for(out)
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
        if trainer.step >= train_config.max_steps or (deadline is not None and time.monotonic() >= deadline):
            return 0


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
    model, tokenizer = load_model_and_tokenizer(args)
    text = read_text(args.text)
    tokens = np.array(tokenizer.encode(text, allowed_special="all"), dtype=np.int64)
    total, count = token_nll(model, tokens, stride=args.stride, batch_size=args.batch_size)
    loss = total / count
    print(f"{args.text}: {count:,} tokens scored, loss {loss:.4f} nats/token, "
          f"perplexity {np.exp(loss):.2f} (context {model.config.context_length}, "
          f"stride {args.stride or model.config.context_length})")
    return 0


# --- tokenize ---------------------------------------------------------------------------------

def cmd_tokenize(args) -> int:
    if args.tokenizer:
        tokenizer = read_tokenizer(args.tokenizer)
    elif args.gpt2:
        tokenizer = read_tokenizer(args.gpt2)
    elif args.checkpoint:
        checkpoint = Path(args.checkpoint)
        tokenizer = checkpoint_tokenizer(checkpoint, load_checkpoint_file(checkpoint)[1])
    else:
        tokenizer = course_tokenizer(args.quick)
    ids = tokenizer.encode(args.text, allowed_special="all")
    print(f"{len(ids)} tokens for {len(args.text.encode('utf-8'))} bytes: {ids}")
    width = len(str(max(ids, default=0)))
    for token_id in ids:
        print(f"  {token_id:>{width}}  {_show_piece(tokenizer.token_bytes(token_id))}")
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
                            "outputs/ in the project, or $TINYGRAD_LLM_OUT. "
                            "'tinygrad-llm COMMAND --help' describes each command.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    positive = positive_int

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
    model.add_argument("--d-model", type=positive, metavar="N")
    model.add_argument("--n-layer", type=positive, metavar="N")
    model.add_argument("--n-head", type=positive, metavar="N")
    model.add_argument("--context-length", type=positive, metavar="N")
    model.add_argument("--dropout", type=float, metavar="P")
    model.add_argument("--position", choices=("learned", "sinusoidal"))
    model.add_argument("--no-bias", action="store_true", help="no biases in Linear and LayerNorm")
    model.add_argument("--untied", action="store_true", help="an output head of its own")
    training = p.add_argument_group("training (default: the course recipe of lesson 07)")
    training.add_argument("--steps", type=positive, metavar="N",
                          help="total optimizer steps (a resumed run continues up to N)")
    training.add_argument("--batch-size", type=positive, metavar="N")
    training.add_argument("--lr", type=float, metavar="LR", help="peak learning rate")
    training.add_argument("--min-lr", type=float, metavar="LR", help="learning rate at the end of the decay")
    training.add_argument("--warmup-steps", type=int, metavar="N")
    training.add_argument("--weight-decay", type=float, metavar="W")
    training.add_argument("--grad-clip", type=float, metavar="NORM")
    training.add_argument("--eval-interval", type=positive, metavar="N")
    training.add_argument("--eval-batches", type=positive, metavar="N")
    training.add_argument("--log-interval", type=positive, metavar="N")
    training.add_argument("--seed", type=int, metavar="S")
    training.add_argument("--save-every", type=positive, metavar="N", help="also save every N steps")
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
    p.add_argument("--num-samples", type=positive, default=1, metavar="N")
    p.add_argument("--seed", type=int, default=0, metavar="S")
    p.add_argument("--no-cache", action="store_true", help="recompute every position (no KV cache)")
    p.set_defaults(run=cmd_generate)

    p = commands.add_parser("eval", help="perplexity of a model on a text file",
                            description="Perplexity on a UTF-8 text file, with a sliding window.")
    _add_model_source(p)
    p.add_argument("text", metavar="TEXT_FILE")
    p.add_argument("--stride", type=positive, metavar="N",
                   help="move the window by N tokens (default: the context length, no overlap)")
    p.add_argument("--batch-size", type=positive, default=8, metavar="N")
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

    p = commands.add_parser("exercise", help="list the course's exercises or check an answer",
                            description="List the exercises, or check the answer in exercises/NN_K.py.")
    p.add_argument("action", choices=("list", "check"))
    p.add_argument("id", nargs="?", help="the exercise, e.g. 05.2")
    p.add_argument("--dir", help="the folder of answer files (default: exercises/ in the project)")
    p.set_defaults(run=cmd_exercise)
    return parser


def _one_line(error: BaseException) -> str:
    # careful: str(KeyError("x")) is "'x'", with quotes; its message is args[0]
    message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    return " ".join(str(message).split()) or type(error).__name__


def main(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as error:
        print(f"{PROG} {args.command}: error: {_one_line(error)}", file=sys.stderr)
        return 1
