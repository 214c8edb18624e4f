# %% [markdown]
"""
# 23. Benchmarks and in-context learning

**The question.** Perplexity says how well a model predicts text. When practitioners compare
models they run *benchmarks* instead: questions with known answers, scored automatically, a
number per task with an error bar. How is such a number made, what does it measure, and how far
can we trust it? And can a model learn a task from a few examples in its prompt, with no
training at all (*in-context learning*)?

**The idea.** A multiple-choice question is not answered by generating text. Each choice c is
scored by the log-likelihood the model gives it after the context x,

    score(c) = log p(c | x) = sum over the tokens t_i of c of log p(t_i | x, t_1 .. t_(i-1))

and the model's answer is the choice of highest score: accuracy `acc`. Long choices collect more
negative terms, so `acc_norm` divides each score by the choice's length in characters first. A
*k-shot* prompt puts k solved examples (demonstrations) before the question, in
lm-evaluation-harness's layout: `context + " " + answer`, joined by blank lines. Accuracy over n
questions is a mean of n zeros and ones, so it has a standard error, about sqrt(p (1 - p) / n),
and a 95 % interval of about two of them each side: an accuracy is only above chance when its
interval is.

**Builds on:** lesson 07 (the course model), lesson 08 (the KV cache), lesson 09 (perplexity and
ROUGE), lesson 02 (the tokenizer).
**Adds:** `tinygrad_llm.evaluate.harness`: `Doc`, `Task`, `save_task`, `load_task`, `fewshot_context`,
`encode_pair`, `score_choices`, `evaluate_task`, `evaluate_tasks`, `bootstrap_stderr`, `format_table`;
`tinygrad_llm.evaluate.benchmarks`: `continuation_task`, `identifier_cloze_task`,
`module_of_function_task`, `arithmetic_task`, `builtin_task`, `builtin_tasks`, `TASK_NAMES`;
`tinygrad_llm.evaluate.lm_eval_adapter`: `lm_eval_model`, `lm_eval_task_config`, `run_lm_eval`; and
`tinygrad-llm eval --tasks`.

**Run:** `python lessons/23_benchmarks_and_icl.py` (about a minute on 2 cores with lesson 07's
checkpoint; without it the model is pretrained first, about 6 minutes more) or `--quick` (a few
seconds). Section 8 runs lm-evaluation-harness when it is installed (`pip install -e ".[harness]"`).
"""

# %%
import importlib.util
import json
import re
import time

import matplotlib.pyplot as plt
import numpy as np

from tinygrad_llm.course import course_corpus, course_model, output_dir, quick_mode, save_figure
from tinygrad_llm.evaluate.benchmarks import TASK_NAMES, builtin_task, continuation_task
from tinygrad_llm.evaluate.harness import (Doc, Task, bootstrap_stderr, encode_pair, evaluate_task,
                                           evaluate_tasks, fewshot_context, format_table, load_task,
                                           save_task, score_choices)
from tinygrad_llm.text.corpus import split_documents

# %% [markdown]
# ## Settings (quick mode shrinks everything for smoke tests)

# %%
SEED = 0
QUICK = quick_mode()
COUNT = 24 if QUICK else 200              # test documents per task
CONTINUATION_WORDS = 3 if QUICK else 6    # words of context, and of each choice (quick: a 32-token window)
BY_HAND = 6 if QUICK else 40              # documents scored by hand, one forward pass per choice
SHOTS = (0, 1, 2, 4) if QUICK else (0, 1, 2, 4, 8)
ICL_TASKS = ("copy", "arithmetic", "module_of_function", "continuation")
LOOKUPS = 5 if QUICK else 25              # section 5: random word mappings of LOOKUP_PAIRS pairs each
LOOKUP_PAIRS = 8
ORDER_SHOTS = 4                           # section 6: demonstrations per prompt
DRAWS = 3 if QUICK else 8                 # section 6: demonstration sets, and orders of one set
COPY_WORDS = 60 if QUICK else 240         # section 1: the words of the copying task
LM_EVAL_DOCS = 12 if QUICK else 100       # section 8: documents scored by lm-evaluation-harness too
Z95 = 1.96                                # a 95 % interval is the mean +- 1.96 standard errors
TEMPLATES = {                             # section 7: one question, four phrasings
    "The function f() is defined in the module": "The function {f}() is defined in the module",
    "f() is a function of the module": "{f}() is a function of the module",
    "Q: Which module defines f()? A:": "Q: Which module defines {f}()? A:",
    "import": "from the standard library, {f}() is found in the module named",
}

rng = np.random.default_rng(SEED)
lesson_start = time.perf_counter()
folder = output_dir("benchmarks")

# %% [markdown]
# ## 1. A task is data
# A task holds documents (a context, the choices, the index of the right one), a separate
# *few-shot split* to draw demonstrations from, and how to lay out a prompt. The four built-in
# tasks are made from real text with answers a program can check: the real continuation of a
# documentation sentence, the identifier that follows in a sentence, the module that defines a
# standard-library function, a sum. A fifth we make here, with a rule the model was never
# taught: *copy the word*. Its context is a word and "=", its answer the same word; the other
# choices are other words. Nothing in the question says that the rule is copying: only
# demonstrations can. On disk a task is JSON lines, a header and then one document per line.

# %%
model, tokenizer = course_model(QUICK)
corpus = course_corpus(QUICK)
print(f"the lesson-07 model: {model.num_parameters():,} parameters, a window of "
      f"{model.config.context_length} tokens")

train_text = tokenizer.decode(corpus.train.tolist())
words = [w for w, _ in sorted(
    {w: train_text.count(" " + w + " ") for w in set(re.findall(r"(?<= )[a-z]{4,10}(?= )", train_text))}.items(),
    key=lambda item: (-item[1], item[0]))][:COPY_WORDS]


def copy_task(pool: list[str], seed: int) -> Task:
    """'river =' -> 'river', among three other words; a fifth of the words for demonstrations, and
    each split's wrong choices from its own words only (a demonstration's word is never a choice)."""
    r = np.random.default_rng(seed)
    order = r.permutation(len(pool))
    cut = int(len(pool) * 0.8)
    splits = []
    for part in ([pool[i] for i in order[:cut]], [pool[i] for i in order[cut:]]):
        docs = []
        for i, word in enumerate(part):
            others = [part[j] for j in r.permutation(len(part)) if j != i][:3]
            choices = [(others + [word])[j] for j in r.permutation(4)]
            docs.append(Doc(f"{word} =", tuple(choices), choices.index(word)))
        splits.append(tuple(docs))
    return Task("copy", "multiple_choice", splits[0], fewshot_docs=splits[1])


tasks = {name: builtin_task(name, COUNT, SEED) for name in TASK_NAMES if name != "continuation"}
tasks = {"continuation": continuation_task(None, COUNT, SEED, words=CONTINUATION_WORDS), **tasks}
tasks["copy"] = copy_task(words, SEED)
for task in tasks.values():
    print(f"{task.name:<19} {len(task.docs):>4} test and {len(task.fewshot_docs):>3} few-shot documents; "
          f"e.g. {task.docs[0].context!r} -> {task.docs[0].gold()!r} among {list(task.docs[0].choices)}")
path = folder / "copy.jsonl"
save_task(tasks["copy"], path)
print(f"\n{path.name}, its first three lines:")
print("\n".join(path.read_text(encoding="utf-8").splitlines()[:3]))
round_trip = load_task(path) == tasks["copy"]
print(f"read back equal: {round_trip}")

# %% [markdown]
# ## 2. Scoring by hand, then the harness
# By hand: for each document and each choice, one forward pass over the context and the choice,
# a log-softmax over the vocabulary, and the sum of the log-probabilities of the choice's tokens.
# The tokens follow lm-evaluation-harness's rule: the choice is what the tokenizer makes of
# context + " " + choice after the context's own tokens (so the space belongs to the choice),
# and a prompt too long for the window loses its oldest tokens. The harness does the same work
# differently: it runs each context once into a KV cache and only the choices' tokens after it,
# for a batch of documents at a time. Both must give the same numbers, and the same `acc` and
# `acc_norm`, with no demonstrations and with 4 (the prompt drawn by `fewshot_context`).

# %%
def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def choice_loglik(context: str, choice: str) -> float:
    """log p(choice | context) from one full forward pass (the context cut from the left to fit)."""
    context_ids = tokenizer.encode(context)
    choice_ids = tokenizer.encode(context + choice)[len(context_ids):]
    assert (context_ids, choice_ids) == encode_pair(tokenizer, context, choice)
    ids = (context_ids + choice_ids)[-(model.config.context_length + 1):]
    logprobs = log_softmax(model(np.array([ids[:-1]])).data[0, -len(choice_ids):])   # (n, V)
    return float(logprobs[np.arange(len(choice_ids)), choice_ids].sum())


task = tasks["continuation"]
docs = task.docs[:BY_HAND]
by_hand = {}
for k in (0, ORDER_SHOTS):
    draw = np.random.default_rng(SEED)   # evaluate_task draws its prompts the same way, in order
    prompts = [fewshot_context(task, d, k, draw) for d in docs]
    start = time.perf_counter()
    scores = [np.array([choice_loglik(prompt, " " + c) for c in d.choices]) for prompt, d in zip(prompts, docs)]
    seconds = time.perf_counter() - start
    acc = [float(s.argmax() == d.answer) for s, d in zip(scores, docs)]
    acc_norm = [float((s / np.array([len(c) for c in d.choices])).argmax() == d.answer) for s, d in zip(scores, docs)]
    harness = evaluate_task(model, tokenizer, task, num_fewshot=k, seed=SEED, limit=BY_HAND)
    cached = score_choices(model, tokenizer, [(p, [" " + c for c in d.choices]) for p, d in zip(prompts, docs)])
    # the work in token positions: by hand every choice reruns its context, the harness runs it once
    window = model.config.context_length
    pairs = [[encode_pair(tokenizer, p, " " + c) for c in d.choices] for p, d in zip(prompts, docs)]
    hand_positions = sum(min(len(ctx) + len(ch) - 1, window) for doc_pairs in pairs for ctx, ch in doc_pairs)
    harness_positions = sum(min(len(doc_pairs[0][0]), window) + sum(len(ch) - 1 for _, ch in doc_pairs)
                            for doc_pairs in pairs)
    by_hand[k] = dict(scores=scores, seconds=seconds, harness=harness, acc=np.mean(acc), acc_norm=np.mean(acc_norm),
                      gap=max(float(np.abs(np.array(c.logprobs) - s).max()) for c, s in zip(cached, scores)),
                      same=harness.per_doc == {"acc": acc, "acc_norm": acc_norm},
                      speedup=seconds / harness.seconds, work=hand_positions / harness_positions)
doc = docs[0]
print(f"context: {doc.context!r}")
for c, choice in enumerate(doc.choices):
    mark = "  <- the real continuation" if c == doc.answer else ""
    score = by_hand[0]["scores"][0][c]
    print(f"  {choice!r:<44} log p {score:8.2f}, per character {score / len(choice):6.3f}{mark}")
print(f"\n{'shots':>5} {'acc by hand':>11} {'harness':>8} {'acc_norm by hand':>16} {'harness':>8} "
      f"{'max |difference|':>16} {'equal':>6} {'positions':>9} {'speed-up':>8}")
for k, r in by_hand.items():
    m = r["harness"].metrics
    print(f"{k:>5} {r['acc']:11.3f} {m['acc']:8.3f} {r['acc_norm']:16.3f} {m['acc_norm']:8.3f} {r['gap']:16.1e} "
          f"{str(r['same']):>6} {r['work']:8.1f}x {r['speedup']:7.1f}x")
score_gap = max(r["gap"] for r in by_hand.values())
same_metrics = all(r["same"] for r in by_hand.values())
timed = evaluate_task(model, tokenizer, task)
harness_rate = timed.count / timed.seconds
print("(float32 log-likelihoods; 'positions': how many times fewer token positions the harness runs "
      "through the model, 'speed-up': the time this run measured)")
print(f"the harness scores all {timed.count} documents, 0-shot, at "
      f"{harness_rate:.0f} documents/s")

# %% [markdown]
# ## 3. Five tasks, zero-shot, with error bars
# Every task has four choices, so guessing scores 25 %. The standard error comes from the
# bootstrap (resample the documents with replacement, take the standard deviation of the mean);
# for a mean of zeros and ones it is close to the binomial sqrt(p (1 - p) / n), printed beside
# it. An accuracy counts as better than guessing only when its 95 % interval lies above 25 %.

# %%
zero_shot = evaluate_tasks(model, tokenizer, list(tasks.values()), progress=print)
print()
print(format_table(zero_shot))
(folder / "23_zero_shot.json").write_text(json.dumps([r.as_dict() for r in zero_shot], indent=2), encoding="utf-8")
above_chance = {}
print(f"\n{'task':<19} {'acc':>6} {'bootstrap':>9} {'binomial':>8}   95 % interval     above 25 %?")
for r in zero_shot:
    p, se = r.metrics["acc"], r.stderr["acc"]
    low, high = p - Z95 * se, p + Z95 * se
    above_chance[r.task] = low > r.baseline
    print(f"{r.task:<19} {p:6.3f} {se:9.3f} {np.sqrt(p * (1 - p) / r.count):8.3f}   [{low:.3f}, {high:.3f}]   "
          f"{'yes' if above_chance[r.task] else 'no'}")
accuracy = {r.task: r.metrics["acc"] for r in zero_shot}
stderr = {r.task: r.stderr["acc"] for r in zero_shot}

# %% [markdown]
# ## 4. What a benchmark cannot tell: seen and unseen text
# The continuation task is made from the documentation the model was trained on: a right answer
# may be memory, not understanding. A benchmark whose questions leaked into the training data is
# *contaminated*, and it flatters the model. We can measure how much here, because we know what
# the model saw: the same task made once from the training part of the corpus and once from the
# held-out validation part (the last tenth of its tokens, which the model never trained on).

# %%
val_text = tokenizer.decode(corpus.val.tolist())
seen_task = continuation_task(split_documents(train_text, "train"), COUNT, SEED, words=CONTINUATION_WORDS)
unseen_task = continuation_task(split_documents(val_text, "validation"), COUNT, SEED, words=CONTINUATION_WORDS)
seen, unseen = evaluate_task(model, tokenizer, seen_task), evaluate_task(model, tokenizer, unseen_task)
for name, r in (("seen in training", seen), ("held out", unseen)):
    print(f"continuation, {name:<16}: acc {r.metrics['acc']:.3f} +- {r.stderr['acc']:.3f} "
          f"({r.count} documents)")
contamination_gap = seen.metrics["acc"] - unseen.metrics["acc"]
gap_se = float(np.hypot(seen.stderr["acc"], unseen.stderr["acc"]))
print(f"the model scores {contamination_gap:+.3f} higher on sentences it trained on "
      f"({contamination_gap / gap_se:.1f} standard errors)")

# %% [markdown]
# ## 5. In-context learning: 0 to 8 demonstrations
# The same documents with k demonstrations from the few-shot split before each question, drawn
# afresh for each document with a fixed seed. For the copy task the demonstrations are the only
# place the rule is stated. A sixth task goes further: *lookup*. Each of its tasks is a random
# mapping of eight words to eight others ("river: blue"), which no training text can hold; the
# demonstrations are pairs of that mapping and the question asks one of its words, so with k of
# the 8 pairs shown the answer stands in the prompt with probability k / 8. A model that could
# find it there and copy it would follow the ideal line 1/4 + (k / 8)(3 / 4). The window holds
# 128 tokens: long prompts lose their oldest tokens (the harness counts them).

# %%
def lookup_tasks(pool: list[str], count: int, seed: int) -> list[Task]:
    """Random 8-pair mappings of pool words; each mapping's pairs are its questions and its demonstrations."""
    r = np.random.default_rng(seed)
    out = []
    for m in range(count):
        chosen = r.choice(len(pool), 2 * LOOKUP_PAIRS, replace=False)
        keys, values = [pool[j] for j in chosen[:LOOKUP_PAIRS]], [pool[j] for j in chosen[LOOKUP_PAIRS:]]
        docs = []
        for key, value in zip(keys, values):
            wrong = [values[j] for j in r.permutation(LOOKUP_PAIRS) if values[j] != value][:3]
            choices = [(wrong + [value])[j] for j in r.permutation(4)]
            docs.append(Doc(f"{key}:", tuple(choices), choices.index(value)))
        out.append(Task(f"lookup_{m}", "multiple_choice", tuple(docs), fewshot_docs=tuple(docs)))
    return out


def pooled(results: list) -> dict:
    """One accuracy and its bootstrap error over the documents of several tasks."""
    values = [v for r in results for v in r.per_doc["acc"]]
    return dict(acc=float(np.mean(values)), se=bootstrap_stderr(values), truncated=sum(r.truncated for r in results))


lookups = lookup_tasks(words, LOOKUPS, SEED)
curves = {}
for name in ICL_TASKS:
    curves[name] = [pooled([evaluate_task(model, tokenizer, tasks[name], num_fewshot=k, seed=SEED)]) for k in SHOTS]
curves["lookup"] = [pooled([evaluate_task(model, tokenizer, t, num_fewshot=k, seed=SEED) for t in lookups])
                    for k in SHOTS]
ideal_lookup = [0.25 + k / LOOKUP_PAIRS * 0.75 for k in SHOTS]
print(f"{'task':<19} " + " ".join(f"{k:>2}-shot" for k in SHOTS) + "   cut prompts at the largest k")
for name, points in curves.items():
    print(f"{name:<19} " + " ".join(f"{p['acc']:7.3f}" for p in points) + f"   {points[-1]['truncated']}")
print(f"{'lookup, ideal':<19} " + " ".join(f"{a:7.3f}" for a in ideal_lookup))
gain = {name: points[-1]["acc"] - points[0]["acc"] for name, points in curves.items()}
gain_se = {name: float(np.hypot(points[-1]["se"], points[0]["se"])) for name, points in curves.items()}
for name in curves:
    print(f"{name}: {SHOTS[-1]}-shot minus 0-shot {gain[name]:+.3f} "
          f"({gain[name] / gain_se[name]:+.1f} standard errors)")
no_gain = all(gain[name] < 2 * gain_se[name] for name in curves)

# %% [markdown]
# ## 6. Which demonstrations, in which order
# A k-shot accuracy depends on which demonstrations were drawn and in what order they stand. We
# fix one set of k for all documents (so the prompt differs only in its last question) and
# measure two spreads on the copy task: over different sets, and over orders of one set. By
# hand the prompt is the demonstrations joined in layout; the package's `fewshot_context` makes
# the same string from the same draw.

# %%
def fixed_prompt_accuracy(task: Task, demos: list[Doc]) -> float:
    """acc with the same demonstrations, in this order, before every question."""
    prefix = "".join(d.context + " " + d.gold() + "\n\n" for d in demos)
    requests = [(prefix + d.context, [" " + c for c in d.choices]) for d in task.docs]
    scored = score_choices(model, tokenizer, requests)
    return float(np.mean([int(np.argmax(s.logprobs)) == d.answer for s, d in zip(scored, task.docs)]))


copy = tasks["copy"]
first_draw = np.random.default_rng(SEED).choice(len(copy.fewshot_docs), ORDER_SHOTS, replace=False)
first = [copy.fewshot_docs[i] for i in first_draw]
by_hand_prompt = "".join(d.context + " " + d.gold() + "\n\n" for d in first) + copy.docs[0].context
package_prompt = fewshot_context(copy, copy.docs[0], ORDER_SHOTS, np.random.default_rng(SEED))
print(f"a {ORDER_SHOTS}-shot prompt by hand equals fewshot_context's: {by_hand_prompt == package_prompt}")
print(repr(package_prompt))
set_accuracy = []
for draw in range(DRAWS):
    chosen = np.random.default_rng(SEED + 1 + draw).choice(len(copy.fewshot_docs), ORDER_SHOTS, replace=False)
    set_accuracy.append(fixed_prompt_accuracy(copy, [copy.fewshot_docs[i] for i in chosen]))
orders = [np.random.default_rng(SEED + 100 + draw).permutation(ORDER_SHOTS) for draw in range(DRAWS)]
order_accuracy = [fixed_prompt_accuracy(copy, [first[i] for i in order]) for order in orders]
one_run_se = float(np.sqrt(np.mean(set_accuracy) * (1 - np.mean(set_accuracy)) / len(copy.docs)))
print(f"{DRAWS} sets of {ORDER_SHOTS}:   acc {min(set_accuracy):.3f} .. {max(set_accuracy):.3f} "
      f"(standard deviation {np.std(set_accuracy, ddof=1):.3f})")
print(f"{DRAWS} orders of one set: acc {min(order_accuracy):.3f} .. {max(order_accuracy):.3f} "
      f"(standard deviation {np.std(order_accuracy, ddof=1):.3f})")
print(f"the standard error of one run of {len(copy.docs)} documents is about {one_run_se:.3f}")

# %% [markdown]
# ## 7. The phrasing of the question
# A benchmark fixes a prompt template, and a model's score belongs to that template as much as
# to the model. The module task asked four ways, zero-shot: the same functions, the same
# choices, only the words around the function's name change.

# %%
module_task = tasks["module_of_function"]
template_accuracy = {}
for label, template in TEMPLATES.items():
    docs = tuple(Doc(template.format(f=re.search(r"function (\w+)\(\)", d.context).group(1)), d.choices, d.answer)
                 for d in module_task.docs)
    phrased = Task(module_task.name, "multiple_choice", docs, description=module_task.description)
    r = evaluate_task(model, tokenizer, phrased)
    template_accuracy[label] = (r.metrics["acc"], r.stderr["acc"])
    print(f"{label:<45} acc {r.metrics['acc']:.3f} +- {r.stderr['acc']:.3f}")
template_values = [a for a, _ in template_accuracy.values()]
template_spread = max(template_values) - min(template_values)
print(f"spread over the phrasings: {template_spread:.3f}")

# %% [markdown]
# ## 8. The same task through lm-evaluation-harness
# The reference tool of the field, with our model inside it: `lm_eval_model` wraps the GPT in
# lm-eval's `LM` interface (each request answered by a full forward pass of its own, not by our
# cached scoring), `lm_eval_task_config` describes our task in lm-eval's terms, and
# `run_lm_eval` runs lm-eval's own evaluator over it. The prompts, the per-choice
# log-likelihoods and the accuracies must agree with ours.

# %%
LM_EVAL = importlib.util.find_spec("lm_eval") is not None
if LM_EVAL:
    from tinygrad_llm.evaluate.lm_eval_adapter import run_lm_eval

    sums = tasks["arithmetic"]
    small = Task(sums.name, sums.output_type, sums.docs[:LM_EVAL_DOCS], sums.fewshot_docs)
    start = time.perf_counter()
    theirs = run_lm_eval(model, tokenizer, [small], output_dir("benchmarks", "lm_eval"))
    lm_eval_seconds = time.perf_counter() - start
    ours = evaluate_task(model, tokenizer, small)
    samples = sorted(theirs["samples"][small.name], key=lambda s: s["doc_id"])
    ours_ll = score_choices(model, tokenizer, [(d.context, [" " + c for c in d.choices]) for d in small.docs])
    lm_eval_gap = max(float(np.abs(np.array(o.logprobs) - [ll for ll, _ in s["filtered_resps"]]).max())
                      for o, s in zip(ours_ll, samples))
    lm_eval_same = (ours.per_doc["acc"] == [s["acc"] for s in samples]
                    and ours.per_doc["acc_norm"] == [s["acc_norm"] for s in samples])
    print(f"lm-eval: acc {theirs['results'][small.name]['acc,none']:.3f}, acc_norm "
          f"{theirs['results'][small.name]['acc_norm,none']:.3f}; ours: acc {ours.metrics['acc']:.3f}, "
          f"acc_norm {ours.metrics['acc_norm']:.3f} on {len(small.docs)} documents ({lm_eval_seconds:.1f} s)")
    print(f"largest difference of a log-likelihood {lm_eval_gap:.1e}; every document's acc and acc_norm "
          f"equal: {lm_eval_same}")
else:
    print('lm-evaluation-harness is not installed (pip install -e ".[harness]"): this cross-check is skipped')

# %% [markdown]
# ## 9. The figure: accuracy against demonstrations, and the spread of one setting

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.6), gridspec_kw={"width_ratios": [3, 2]})
for name, points in curves.items():
    left.errorbar(SHOTS, [p["acc"] for p in points], yerr=[Z95 * p["se"] for p in points],
                  marker="o", capsize=3, label=name)
left.plot(SHOTS, ideal_lookup, color="black", linestyle=":", label="lookup, if the answer in the prompt were copied")
left.axhline(0.25, color="gray", linestyle="--", label="chance (4 choices)")
left.set_xscale("symlog", linthresh=1)
left.set_xticks(SHOTS)
left.set_xticklabels([str(k) for k in SHOTS])
left.set_xlabel("demonstrations in the prompt (k)")
left.set_ylabel("accuracy (95 % interval)")
left.set_title(f"k-shot accuracy of the lesson-07 model, {COUNT} documents per task")
left.grid(alpha=0.3)
left.legend(fontsize=8, loc="upper left")   # the right panel leaves no room outside
groups = {"different sets": set_accuracy, "one set, reordered": order_accuracy,
          "phrasings (module, 0-shot)": template_values}
for x, (label, values) in enumerate(groups.items()):
    right.scatter(np.full(len(values), x) + np.linspace(-0.12, 0.12, len(values)), values, s=24)
    right.hlines(np.mean(values), x - 0.25, x + 0.25, color="black")
right.set_xticks(range(len(groups)))
right.set_xticklabels(list(groups), fontsize=8)
right.set_ylabel("accuracy")
right.set_title(f"Spread of one setting (copy task {ORDER_SHOTS}-shot; module task)")
right.grid(alpha=0.3, axis="y")
save_figure(fig, "23_benchmarks_and_icl")

# %% [markdown]
# ## 10. What we found
# This run's numbers are printed below from its results; the closing checks assert the claims
# marked (checked).
#
# * a benchmark score is a sum of log-likelihoods per choice: by hand and by the cached harness
#   the numbers agree, and so do `acc` and `acc_norm`, with and without demonstrations (checked).
#   Running each context once pays most where contexts are long: with 4 demonstrations the
#   harness runs several times fewer token positions through the model than one forward pass
#   per choice does (checked), and takes correspondingly less time (printed: a timing on a
#   shared machine varies from run to run);
# * zero-shot, the course model beats guessing on the tasks made of the text it was trained on,
#   continuation and identifier cloze (checked), and on copying a word; it is at chance on sums
#   and on which module defines a function (checked for the sums), knowledge its corpus hardly
#   holds;
# * contamination: the continuation task scored on sentences the model trained on and on
#   held-out ones; the gap is printed with its size in standard errors. The held-out tail of the
#   corpus yields far fewer questions (checked), and with so few a benchmark cannot tell a real
#   gap from noise unless the gap is large;
# * in-context learning does not appear in a model this small. No task gains from 8
#   demonstrations beyond two standard errors (checked); lookup stays far below the ideal line
#   even when the answer is in the prompt (checked), and the copy task gets worse with
#   demonstrations than without (printed). Learning from a prompt needs heads that find an
#   earlier match and copy what followed it (induction heads), which larger models trained on
#   far more text develop;
# * which demonstrations and which phrasing we pick moves accuracy by a few points, of the order
#   of the error bar of one run (printed), so a single benchmark number hides a spread;
# * lm-evaluation-harness, running our model through its own `LM` interface, gives the same
#   log-likelihoods and the same accuracies as our harness (checked, when it is installed).

# %%
above = [t for t, ok in above_chance.items() if ok]
at_chance = [t for t, ok in above_chance.items() if not ok]
print("zero-shot above chance: " + ", ".join(f"{t} ({accuracy[t]:.2f})" for t in above)
      + "; at chance: " + (", ".join(f"{t} ({accuracy[t]:.2f})" for t in at_chance) or "none"))
print(f"contamination: seen {seen.metrics['acc']:.3f} ({seen.count} questions) vs held out "
      f"{unseen.metrics['acc']:.3f} ({unseen.count} questions), a gap of {contamination_gap / gap_se:.1f} "
      f"standard errors")
print(f"{SHOTS[-1]} demonstrations: copy {curves['copy'][0]['acc']:.3f} -> {curves['copy'][-1]['acc']:.3f}, lookup "
      f"{curves['lookup'][0]['acc']:.3f} -> {curves['lookup'][-1]['acc']:.3f} (ideal {ideal_lookup[-1]:.3f})")
print(f"spreads of one setting: demonstration sets {max(set_accuracy) - min(set_accuracy):.3f}, orders "
      f"{max(order_accuracy) - min(order_accuracy):.3f}, phrasings {template_spread:.3f}; one run's standard "
      f"error {one_run_se:.3f}")

# %% [markdown]
# ## Closing checks
# The claims of this lesson.

# %%
assert round_trip, "a task file reads back as the same task"
assert score_gap < 1e-3 and same_metrics, "by hand and the harness score alike"
assert all(r.baseline == 0.25 for r in zero_shot), "every task has four choices"
assert by_hand_prompt == package_prompt, "the prompt layout is lm-evaluation-harness's"
assert by_hand[ORDER_SHOTS]["work"] > by_hand[0]["work"] > 1, "the cache saves more the longer the context"
if not QUICK:   # the quick model is untrained and its window of 32 tokens cuts every prompt
    assert by_hand[ORDER_SHOTS]["work"] > 2.5, "one forward pass per context saves most of the work"
    assert above_chance["continuation"] and above_chance["identifier_cloze"], "the corpus tasks beat guessing"
    assert not above_chance["arithmetic"], "sums are at chance"
    assert unseen.count < seen.count / 2, "the held-out text yields far fewer questions"
    assert no_gain, "no task gains from demonstrations"
    assert curves["lookup"][-1]["acc"] < ideal_lookup[-1] - 3 * curves["lookup"][-1]["se"], \
        "lookup stays far below copying the answer from the prompt"
if LM_EVAL:
    assert lm_eval_gap < 1e-3 and lm_eval_same, "lm-evaluation-harness agrees with our harness"
print(f"lesson 23 checks passed ({time.perf_counter() - lesson_start:.0f} s)")


# %% [markdown]
# ## Exercises
# Each exercise is one file you edit; its checker runs your answer on tiny inputs in seconds and,
# when it is not right yet, says what kind of result it expected and gives a hint.
#
# 1. **A k-shot prompt.** Lay out demonstrations and a question as lm-evaluation-harness does.
#    Edit `exercises/23_1.py`, then run `tinygrad-llm exercise check 23.1`.
# 2. **acc and acc_norm.** From one question's log-likelihoods, the choice each metric picks. Edit
#    `exercises/23_2.py`, then run `tinygrad-llm exercise check 23.2`.
# 3. **Predict: an error bar.** The standard error of a 25 % accuracy on 300 questions. Edit
#    `exercises/23_3.py`, then run `tinygrad-llm exercise check 23.3`.
#
# `python -m pytest -m exercises` checks every answer at once. Reference solutions are in
# `exercises/solutions/`: look there after you have tried.
