"""Our model inside lm-evaluation-harness, to check our harness against the real one (lesson 23).

Unlike ``harness``, which scores tasks itself, this module hands the model to lm-evaluation-harness
(``lm-eval``, an optional extra that installs without PyTorch): ``lm_eval_model`` wraps a GPT and
its tokenizer in a subclass of lm-eval's ``LM``, whose three requests it answers with our code,
``lm_eval_task_config`` describes one of our tasks in lm-eval's own terms (a local JSON data
set, the same prompt fields and delimiters), so both tools can score the same documents, and
``run_lm_eval`` runs our tasks through lm-eval's own evaluator.

``run_lm_eval`` calls ``lm_eval.evaluator.evaluate`` rather than ``simple_evaluate``: the latter
indexes every one of lm-eval's built-in task files (tens of seconds) and records the Python
environment by importing PyTorch when it is present, neither of which scoring our tasks needs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..core.checks import check_positive_int
from ..model.generation import generate
from .harness import Task, encode_pair, line_break_token_ids
from .perplexity import token_nll

EXTRA_HINT = 'lm-evaluation-harness is not installed: pip install -e ".[harness]"'


def _lm_base():
    try:
        from lm_eval.api.model import LM  # optional: the "harness" extra
    except ImportError as error:
        raise ImportError(EXTRA_HINT) from error
    return LM


def lm_eval_model(model, tokenizer, batch_size: int = 32):
    """An ``lm_eval.api.model.LM`` answering with ``model``: each log-likelihood request by a full
    forward pass of its own (batch size ``batch_size`` is accepted for lm-eval's interface), rolling
    log-likelihoods through ``perplexity.token_nll``, greedy generation through ``generate``."""
    batch_size = check_positive_int("batch_size", batch_size)
    base = _lm_base()

    class TinygradLM(base):
        def loglikelihood(self, requests, disable_tqdm: bool = False):
            # careful: deliberately not ``harness.score_choices``: each request runs its own full
            # forward pass, cut as lm-eval's HF models cut it, (context + continuation)[-(T + 1):],
            # so that agreement with our harness checks our cached scoring, not itself
            window = model.config.context_length
            answers = []
            with model.inference():
                for request in requests:
                    context, continuation = request.args
                    context_ids, continuation_ids = encode_pair(tokenizer, context, continuation)
                    if not context_ids:
                        context_ids = [tokenizer.eot_id]   # lm-eval's rule for an empty context
                    ids = (context_ids + continuation_ids)[-(window + 1):]
                    logits = model(np.array([ids[:-1]])).data[0, -len(continuation_ids):]
                    shifted = logits - logits.max(axis=-1, keepdims=True)
                    logprobs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
                    targets = np.array(continuation_ids)
                    answers.append((float(logprobs[np.arange(targets.size), targets].sum()),
                                    bool((logprobs.argmax(axis=-1) == targets).all())))
            return answers

        def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
            out = []
            for request in requests:
                ids = [tokenizer.eot_id] + tokenizer.encode(request.args[0])
                total, _ = token_nll(model, np.array(ids))
                out.append(-total)
            return out

        def generate_until(self, requests, disable_tqdm: bool = False):
            stops = line_break_token_ids(tokenizer)
            out = []
            for request in requests:
                context, options = request.args
                max_new = int(options.get("max_gen_toks", 16))
                ids = tokenizer.encode(context)[-(model.config.context_length - max_new):]
                with model.inference():
                    generated = generate(model, np.array([ids]), max_new, temperature=0.0, stop_tokens=stops)
                text = tokenizer.decode([t for t in generated[0, len(ids):].tolist() if t not in stops])
                for stop in options.get("until", []):
                    text = text.split(stop, 1)[0]
                out.append(text)
            return out

    return TinygradLM()


def lm_eval_task_config(task: Task, folder: str | Path) -> dict:
    """An lm-eval task configuration for a multiple-choice ``task``: its documents are written as
    JSON lines into ``folder`` (test split, and the few-shot split when there is one)."""
    if task.output_type != "multiple_choice":
        raise ValueError(f"task {task.name!r}: only multiple-choice tasks are described for lm-eval")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for split, docs in (("test", task.docs), ("train", task.fewshot_docs)):
        if not docs:
            continue
        path = folder / f"{task.name}.{split}.jsonl"
        path.write_text("".join(json.dumps({"context": d.context, "choices": list(d.choices), "answer": d.answer},
                                           ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
        files[split] = str(path)
    config = {
        "task": task.name, "dataset_path": "json", "dataset_kwargs": {"data_files": files},
        "test_split": "test", "output_type": "multiple_choice",
        "doc_to_text": "{{context}}", "doc_to_choice": "{{choices}}", "doc_to_target": "{{answer}}",
        "target_delimiter": task.target_delimiter, "fewshot_delimiter": task.fewshot_delimiter,
        "description": task.description + (task.fewshot_delimiter if task.description else ""),
        "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True},
                        {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True}],
    }
    if "train" in files:
        config["fewshot_split"] = "train"
    return config


def run_lm_eval(model, tokenizer, tasks: Sequence[Task], folder: str | Path, num_fewshot: int = 0,
                limit: int | None = None, fewshot_seed: int = 1234) -> dict:
    """Score multiple-choice ``tasks`` with lm-evaluation-harness on ``model``: its results
    dictionary, with ``"results"`` (``"acc,none"``, ``"acc_norm,none"`` per task) and, per task,
    every document's requests and scores under ``"samples"``. Demonstrations are drawn by lm-eval
    (Python's ``random`` from ``fewshot_seed``), so beyond 0-shot the prompts differ from ours."""
    if num_fewshot < 0:
        raise ValueError(f"num_fewshot must be 0 or more, got {num_fewshot}")
    _lm_base()
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")   # the data sets are local files: never ask the hub
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from lm_eval.evaluator import evaluate
    from lm_eval.tasks import TaskManager

    for task in tasks:
        if num_fewshot > len(task.fewshot_docs):
            raise ValueError(f"task {task.name!r}: {num_fewshot}-shot needs {num_fewshot} few-shot documents, "
                             f"it has {len(task.fewshot_docs)}")
    configs = [dict(lm_eval_task_config(task, folder), num_fewshot=num_fewshot) for task in tasks]
    loaded = TaskManager(include_defaults=False).load(configs)
    for task in loaded["tasks"].values():
        task.set_fewshot_seed(seed=fewshot_seed)
    return evaluate(lm_eval_model(model, tokenizer), loaded, limit=limit, bootstrap_iters=0, log_samples=True)
