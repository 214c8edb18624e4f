"""A benchmark harness: tasks as data, few-shot prompts, log-likelihood scoring (lesson 23).

Unlike ``perplexity``, which scores every token of a text, a benchmark asks questions with known
answers and counts how many the model gets right. Two kinds of question, as in
lm-evaluation-harness:

* **multiple choice**: the model is not asked to write anything. Each choice is scored by the
  summed log-probability of its tokens after the context, log p(choice | context), and the model
  "answers" the choice with the highest score (``acc``). Long choices collect more negative terms,
  so ``acc_norm`` divides each score by the choice's length in characters first;
* **generation**: the model writes greedily until a line break, scored by exact match and ROUGE-L.

A prompt with k demonstrations (k-shot) puts k solved examples from a separate *few-shot split*
before the question, in lm-evaluation-harness's layout: each demonstration is its context, the
target delimiter " " and its answer; demonstrations are joined by the few-shot delimiter "\\n\\n".
Where we differ from it: demonstrations are drawn with NumPy's generator from ``seed`` (it uses
Python's ``random`` with seed 1234), so the same k gives the same demonstrations for a given
document in both runs of ours, not across the two tools.

Scoring reuses one forward pass per context: the contexts of a batch of documents (of equal token
length) run once and fill a KV cache, the cache is copied once per choice, and only the choices'
tokens run after it. A context too long for the model's window is cut from the left (its oldest
tokens go first), as lm-evaluation-harness does, and the result counts how often that happened:
a choice of n tokens keeps the last window - (n - 1) tokens of the context, so when a cut context
is followed by choices of different lengths, each length gets a row (and a forward pass) of its
own.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..core.checks import check_int, check_positive_int
from ..model.generation import generate
from ..model.gpt import KVCache
from .answers import exact_match
from .metrics import rouge_l

OUTPUT_TYPES = ("multiple_choice", "generate_until")
TARGET_DELIMITER = " "
FEWSHOT_DELIMITER = "\n\n"


@dataclass(frozen=True)
class Doc:
    """One question: a ``context``, and either ``choices`` with the index of the right one
    (``answer``) or a ``target`` text to generate."""

    context: str
    choices: tuple[str, ...] = ()
    answer: int | None = None
    target: str | None = None

    def gold(self) -> str:
        """The right answer's text (what a demonstration shows after the context)."""
        return self.choices[self.answer] if self.choices else self.target


@dataclass(frozen=True)
class Task:
    """A benchmark task: documents to score, a few-shot split to draw demonstrations from."""

    name: str
    output_type: str
    docs: tuple[Doc, ...]
    fewshot_docs: tuple[Doc, ...] = ()
    description: str = ""               # put before everything, as a task's instructions
    target_delimiter: str = TARGET_DELIMITER
    fewshot_delimiter: str = FEWSHOT_DELIMITER
    max_gen_tokens: int = 16

    def __post_init__(self):
        if self.output_type not in OUTPUT_TYPES:
            raise ValueError(f"task {self.name!r}: output_type must be one of {OUTPUT_TYPES}, got {self.output_type!r}")
        if not self.docs:
            raise ValueError(f"task {self.name!r} has no documents to score")
        for split, docs in (("docs", self.docs), ("fewshot_docs", self.fewshot_docs)):
            for i, doc in enumerate(docs):
                _check_doc(doc, self.output_type, f"task {self.name!r}, {split}[{i}]")

    def random_baseline(self) -> float | None:
        """The accuracy of answering at random (multiple choice), averaged over documents."""
        if self.output_type != "multiple_choice":
            return None
        return float(np.mean([1.0 / len(doc.choices) for doc in self.docs]))


def _check_doc(doc: Doc, output_type: str, where: str) -> None:
    if not isinstance(doc.context, str):
        raise ValueError(f"{where}: 'context' must be a string")
    if output_type == "multiple_choice":
        if len(doc.choices) < 2:
            raise ValueError(f"{where}: a multiple-choice document needs at least 2 choices, got {len(doc.choices)}")
        if not all(isinstance(c, str) and c for c in doc.choices):
            raise ValueError(f"{where}: every choice must be a non-empty string")
        if doc.answer is None or isinstance(doc.answer, bool) or not 0 <= doc.answer < len(doc.choices):
            raise ValueError(f"{where}: 'answer' must index one of the {len(doc.choices)} choices, got {doc.answer!r}")
    elif not isinstance(doc.target, str) or not doc.target:
        raise ValueError(f"{where}: a generation document needs a non-empty 'target'")


# ----------------------------------------------------------------------------------------------
# Task files: JSON lines, a header first


TASK_KEYS = {"task", "output_type", "description", "target_delimiter", "fewshot_delimiter", "max_gen_tokens"}
DOC_KEYS = {"context", "choices", "answer", "target", "split"}


def save_task(task: Task, path: str | Path) -> None:
    """Write ``task`` as JSON lines: a header object, then one object per document with its
    ``split`` ("test" or "fewshot")."""
    header = {"task": task.name, "output_type": task.output_type, "description": task.description,
              "target_delimiter": task.target_delimiter, "fewshot_delimiter": task.fewshot_delimiter,
              "max_gen_tokens": task.max_gen_tokens}
    lines = [json.dumps(header)]
    for split, docs in (("test", task.docs), ("fewshot", task.fewshot_docs)):
        for doc in docs:
            record = {"split": split, "context": doc.context}
            if doc.choices:
                record.update(choices=list(doc.choices), answer=doc.answer)
            else:
                record["target"] = doc.target
            lines.append(json.dumps(record, ensure_ascii=False))
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def load_task(path: str | Path) -> Task:
    """Read a task file written by ``save_task`` (or by hand); errors name the file, line and field."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}, line {number}: not valid JSON ({error.msg})") from None
        if not isinstance(record, dict):
            raise ValueError(f"{path}, line {number}: expected a JSON object")
        records.append((number, record))
    if not records or "task" not in records[0][1]:
        raise ValueError(f"{path}, line 1: the first line must be a header with a 'task' name")
    number, header = records[0]
    unknown = set(header) - TASK_KEYS
    if unknown:
        raise ValueError(f"{path}, line {number}: unknown header field(s) {sorted(unknown)}")
    output_type = header.get("output_type", "multiple_choice")
    name = header["task"]
    splits = {"test": [], "fewshot": []}
    for number, record in records[1:]:
        where = f"{path}, line {number}"
        unknown = set(record) - DOC_KEYS
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {sorted(unknown)}")
        split = record.get("split", "test")
        if split not in splits:
            raise ValueError(f"{where}: 'split' must be 'test' or 'fewshot', got {split!r}")
        if "context" not in record:
            raise ValueError(f"{where}: missing field 'context'")
        if output_type == "multiple_choice":
            for key in ("choices", "answer"):
                if key not in record:
                    raise ValueError(f"{where}: missing field {key!r}")
            if not isinstance(record["choices"], list):
                raise ValueError(f"{where}: 'choices' must be a list")
            doc = Doc(record["context"], tuple(record["choices"]), record["answer"])
        else:
            if "target" not in record:
                raise ValueError(f"{where}: missing field 'target'")
            doc = Doc(record["context"], target=record["target"])
        _check_doc(doc, output_type, where)
        splits[split].append(doc)
    return Task(name=name, output_type=output_type, docs=tuple(splits["test"]),
                fewshot_docs=tuple(splits["fewshot"]), description=header.get("description", ""),
                target_delimiter=header.get("target_delimiter", TARGET_DELIMITER),
                fewshot_delimiter=header.get("fewshot_delimiter", FEWSHOT_DELIMITER),
                max_gen_tokens=header.get("max_gen_tokens", 16))


# ----------------------------------------------------------------------------------------------
# Prompts


def fewshot_context(task: Task, doc: Doc, k: int, rng: np.random.Generator) -> str:
    """The prompt for ``doc`` with ``k`` demonstrations drawn without replacement from the few-shot split.

    >>> t = Task("add", "multiple_choice", (Doc("2+2=", ("4", "5"), 0),),
    ...          fewshot_docs=(Doc("1+1=", ("2", "3"), 0),))
    >>> fewshot_context(t, t.docs[0], 1, np.random.default_rng(0))
    '1+1= 2\\n\\n2+2='
    """
    k = check_int("num_fewshot", k, minimum=0)
    if k > len(task.fewshot_docs):
        raise ValueError(f"task {task.name!r}: {k}-shot needs {k} few-shot documents, it has {len(task.fewshot_docs)}")
    chosen = rng.choice(len(task.fewshot_docs), size=k, replace=False) if k else []
    shots = [task.fewshot_docs[i].context + task.target_delimiter + task.fewshot_docs[i].gold() for i in chosen]
    prefix = task.description + (task.fewshot_delimiter if task.description else "")
    return prefix + "".join(shot + task.fewshot_delimiter for shot in shots) + doc.context


def encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """Token ids of a context and its continuation, the way lm-evaluation-harness makes them:
    trailing spaces of the context move to the continuation, the whole text is encoded, and the
    continuation is what follows the context's own tokens."""
    stripped = context.rstrip(" ")
    continuation = context[len(stripped):] + continuation
    context_ids = tokenizer.encode(stripped)
    whole = tokenizer.encode(stripped + continuation)
    return context_ids, whole[len(context_ids):]


# ----------------------------------------------------------------------------------------------
# Log-likelihoods


@dataclass
class ChoiceScores:
    """Per choice of one document: summed log-probability, and whether greedy decoding would
    have produced exactly that continuation."""

    logprobs: list[float]
    greedy: list[bool]
    truncated: bool


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _score_batch(model, contexts: np.ndarray, continuations: list[list[list[int]]],
                 group_size: int = 32) -> list[tuple[list[float], list[bool]]]:
    """Contexts (D, L) of one length, each with its choices' token lists: one forward over the
    contexts into a cache, then the choices' tokens after copies of it. The choices run sorted by
    length in groups of ``group_size`` rows, so a group pads its rows to nearly the same length."""
    D, L = contexts.shape
    cache = KVCache(model.config, D, dtype=model.output_weight().data.dtype)
    # only the last context position predicts a choice token: the head runs on it alone
    last = model.hidden_states(contexts, cache=cache).data[:, -1]     # (D, C)
    first = _log_softmax(last @ model.output_weight().data.T)         # (D, V): the first choice token
    rows = [(d, c) for d in range(D) for c in range(len(continuations[d]))]
    scores = {(d, c): (float(first[d, continuations[d][c][0]]), int(first[d].argmax()) == continuations[d][c][0])
              for d, c in rows}
    longer = sorted((row for row in rows if len(continuations[row[0]][row[1]]) > 1),
                    key=lambda row: len(continuations[row[0]][row[1]]))
    for start in range(0, len(longer), group_size):
        group = longer[start:start + group_size]
        copy = KVCache.__new__(KVCache)   # shares the context's buffers; reorder replaces them
        copy.__dict__.update(cache.__dict__)
        copy.reorder(np.array([d for d, _ in group]))
        longest = len(continuations[group[-1][0]][group[-1][1]])
        inputs = np.zeros((len(group), longest - 1), dtype=np.int64)   # right-padded: causal, so harmless
        for i, (d, c) in enumerate(group):
            tokens = continuations[d][c]
            inputs[i, :len(tokens) - 1] = tokens[:-1]
        logits = model(inputs, cache=copy).data                          # (rows, longest - 1, V)
        peak = logits.max(axis=-1, keepdims=True)
        log_norm = (peak + np.log(np.exp(logits - peak).sum(axis=-1, keepdims=True)))[..., 0]   # (rows, longest - 1)
        for i, (d, c) in enumerate(group):
            tokens = np.asarray(continuations[d][c][1:])
            positions = np.arange(tokens.size)
            picked = logits[i, positions, tokens] - log_norm[i, positions]
            logprob, greedy = scores[(d, c)]
            greedy = greedy and bool((logits[i, :tokens.size].argmax(axis=-1) == tokens).all())
            scores[(d, c)] = (logprob + float(picked.sum()), greedy)
    out = []
    for d in range(D):
        pairs = [scores[(d, c)] for c in range(len(continuations[d]))]
        out.append(([p for p, _ in pairs], [g for _, g in pairs]))
    return out


def score_choices(model, tokenizer, requests: Sequence[tuple[str, Sequence[str]]],
                  batch_size: int = 64) -> list[ChoiceScores]:
    """For each (context, continuations), the log-likelihood of every continuation given the context."""
    batch_size = check_positive_int("batch_size", batch_size)
    window = model.config.context_length
    encoded = []           # rows: (request, its choices in this row, the context kept, their tokens)
    context_lengths = []   # each request's whole context, in tokens
    for index, (context, continuations) in enumerate(requests):
        pairs = [encode_pair(tokenizer, context, c) for c in continuations]
        context_ids = pairs[0][0]
        if any(p[0] != context_ids for p in pairs):   # a choice that starts by merging into the context
            raise ValueError(f"request {index}: the choices do not share the context's tokens; "
                             f"start each choice with the target delimiter")
        choice_ids = [p[1] for p in pairs]
        if any(not ids for ids in choice_ids):
            raise ValueError(f"request {index}: a choice encodes to no tokens")
        longest = max(len(ids) for ids in choice_ids)
        if longest > window:
            raise ValueError(f"request {index}: a choice of {longest} tokens does not fit "
                             f"the model's window of {window}")
        if not context_ids:
            raise ValueError(f"request {index}: the context is empty (a choice needs something to follow)")
        context_lengths.append(len(context_ids))
        # a choice of n tokens leaves window - (n - 1) positions for the context; choices that keep
        # the same context share one row (all of them, unless the context had to be cut)
        rows: dict[int, list[int]] = {}
        for c, ids in enumerate(choice_ids):
            rows.setdefault(min(len(context_ids), window - (len(ids) - 1)), []).append(c)
        for kept, members in rows.items():
            encoded.append((index, members, context_ids[len(context_ids) - kept:], [choice_ids[c] for c in members]))
    logprobs = [[0.0] * len(continuations) for _, continuations in requests]
    greedy = [[False] * len(continuations) for _, continuations in requests]
    truncated = [False] * len(requests)
    by_length: dict[int, list[int]] = {}
    for i, (_, _, context_ids, _) in enumerate(encoded):
        by_length.setdefault(len(context_ids), []).append(i)
    with model.inference():
        for members in by_length.values():
            for start in range(0, len(members), batch_size):
                chunk = members[start:start + batch_size]
                contexts = np.array([encoded[i][2] for i in chunk], dtype=np.int64)
                scored = _score_batch(model, contexts, [encoded[i][3] for i in chunk])
                for i, (row_logprobs, row_greedy) in zip(chunk, scored):
                    index, choices, context_ids, _ = encoded[i]
                    truncated[index] |= len(context_ids) < context_lengths[index]
                    for c, logprob, is_greedy in zip(choices, row_logprobs, row_greedy):
                        logprobs[index][c], greedy[index][c] = logprob, is_greedy
    return [ChoiceScores(lp, g, t) for lp, g, t in zip(logprobs, greedy, truncated)]


# ----------------------------------------------------------------------------------------------
# Metrics with error bars


def bootstrap_stderr(values: Sequence[float], resamples: int = 1000, seed: int = 1234) -> float:
    """The standard deviation of the mean over ``resamples`` resamplings with replacement."""
    values = np.asarray(values, dtype=float)
    if values.size < 2:
        return float("nan")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, (resamples, values.size))].mean(axis=1)
    return float(means.std(ddof=1))


@dataclass
class TaskResult:
    """One task's metrics, their bootstrap standard errors, and what was scored."""

    task: str
    num_fewshot: int
    metrics: dict[str, float]
    stderr: dict[str, float]
    count: int
    truncated: int
    baseline: float | None
    seconds: float
    per_doc: dict[str, list[float]] = field(default_factory=dict, repr=False)

    def as_dict(self) -> dict:
        return {"task": self.task, "num_fewshot": self.num_fewshot, "metrics": self.metrics,
                "stderr": self.stderr, "count": self.count, "truncated": self.truncated,
                "random_baseline": self.baseline, "seconds": round(self.seconds, 3)}


def line_break_token_ids(tokenizer) -> list[int]:
    """``<|endoftext|>`` (when the tokenizer has it) and every token whose bytes hold a line break."""
    special = set(tokenizer.special_tokens.values())  # their "bytes" are their names
    stops = {i for i in range(tokenizer.vocab_size) if i not in special and b"\n" in tokenizer.token_bytes(i)}
    if getattr(tokenizer, "eot_id", None) is not None:
        stops.add(tokenizer.eot_id)
    return sorted(stops)


def evaluate_task(model, tokenizer, task: Task, num_fewshot: int = 0, seed: int = 0,
                  batch_size: int = 32, limit: int | None = None) -> TaskResult:
    """Score ``task`` (its first ``limit`` documents) with ``num_fewshot`` demonstrations per prompt."""
    start = time.perf_counter()
    docs = task.docs if limit is None else task.docs[:check_positive_int("limit", limit)]
    rng = np.random.default_rng(seed)
    contexts = [fewshot_context(task, doc, num_fewshot, rng) for doc in docs]
    per_doc: dict[str, list[float]] = {}
    truncated = 0
    if task.output_type == "multiple_choice":
        requests = [(ctx, [task.target_delimiter + c for c in doc.choices]) for ctx, doc in zip(contexts, docs)]
        try:
            scored = score_choices(model, tokenizer, requests, batch_size)
        except ValueError as error:   # name the task and the document
            raise ValueError(f"task {task.name!r}, {str(error).replace('request', 'document', 1)}") from None
        acc, acc_norm = [], []
        for doc, s in zip(docs, scored):
            lengths = np.array([len(c) for c in doc.choices], dtype=float)
            acc.append(float(int(np.argmax(s.logprobs)) == doc.answer))
            acc_norm.append(float(int(np.argmax(np.array(s.logprobs) / lengths)) == doc.answer))
            truncated += s.truncated
        per_doc = {"acc": acc, "acc_norm": acc_norm}
    else:
        stops = line_break_token_ids(tokenizer)
        window = model.config.context_length
        match, rouge = [], []
        for ctx, doc in zip(contexts, docs):
            ids = tokenizer.encode(ctx)
            room = window - task.max_gen_tokens
            if len(ids) > room:
                ids, truncated = ids[-room:], truncated + 1
            out = generate(model, np.array([ids]), task.max_gen_tokens, temperature=0.0, stop_tokens=stops)
            answer = tokenizer.decode([t for t in out[0, len(ids):].tolist() if t not in stops]).strip()
            match.append(float(exact_match(answer, doc.target)))
            rouge.append(rouge_l(answer, doc.target).f1 if answer.strip() else 0.0)
        per_doc = {"exact_match": match, "rouge_l": rouge}
    metrics = {name: float(np.mean(v)) for name, v in per_doc.items()}
    stderr = {name: bootstrap_stderr(v) for name, v in per_doc.items()}
    return TaskResult(task.name, num_fewshot, metrics, stderr, len(docs), truncated, task.random_baseline(),
                      time.perf_counter() - start, per_doc)


def evaluate_tasks(model, tokenizer, tasks: Sequence[Task], num_fewshot: int = 0, seed: int = 0,
                   batch_size: int = 32, limit: int | None = None,
                   progress: Callable[[str], None] | None = None) -> list[TaskResult]:
    """``evaluate_task`` for each task in turn, reporting each finished one to ``progress``."""
    results = []
    for number, task in enumerate(tasks, start=1):
        result = evaluate_task(model, tokenizer, task, num_fewshot, seed, batch_size, limit)
        results.append(result)
        if progress is not None:
            main = next(iter(result.metrics))
            progress(f"[{number}/{len(tasks)}] {task.name}: {main} {result.metrics[main]:.3f} "
                     f"({result.count} documents, {result.seconds:.1f} s)")
    return results


def format_table(results: Sequence[TaskResult]) -> str:
    """A readable table: task, shots, metric, value ± standard error, random baseline."""
    rows = [("task", "shots", "metric", "value", "stderr", "random")]
    for r in results:
        for name, value in r.metrics.items():
            err = r.stderr[name]
            rows.append((r.task, str(r.num_fewshot), name, f"{value:.4f}",
                         "" if math.isnan(err) else f"± {err:.4f}",
                         "" if r.baseline is None or not name.startswith("acc") else f"{r.baseline:.4f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
