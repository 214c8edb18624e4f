# %% [markdown]
"""
# 10. Fine-tuning the GPT to classify

**The question.** The course GPT was pretrained to predict the next token. Can it answer a
different question, *which documentation topic does this passage come from?*, and how much of it
must we train to get there: a new output layer, the top of the network, or everything? What does
each choice cost in memory and time, and does it beat a model that only counts words?

**The idea.** The GPT turns a passage into one vector per position; we pool them into one vector
h (the last token's, or the mean over tokens) and train a new head on it:

    logits = W h + b,   loss = -log softmax(logits)[y]          (W: K x C for K classes)

Training all N parameters with AdamW keeps four floats per parameter (weight, gradient and the two
moments m and v) plus the activations every layer saved for the backward pass. Freezing a
parameter (`requires_grad_(False)`) removes its gradient and its moments, and, because the engine
only records operations that involve something trainable, a frozen layer at the bottom of the
network saves no activations either. With the whole body frozen the features h never change: we
compute them once under `no_grad` and train the head on the cached (N, C) array, so a training
step costs a (B, C) x (C, K) product instead of a pass through the transformer.

The task is built from the corpus itself, so the labels cost nothing: passages of 128 tokens (the
model's context) cut from the largest documentation topics, split into training, validation and
test text that never overlap. Baselines first: the majority class, the best single-keyword rule,
and bag-of-words logistic regression.

**Builds on:** lessons 07-09 (the pretrained course model, `no_grad`, `accuracy`,
`confusion_matrix`).
**Adds:** `tinygrad_llm.finetune.topic_task`: `topic_classification_task`, `ClassificationTask`,
`ClassificationSplit`, `select_topics`, `passage_starts`; `tinygrad_llm.finetune.baselines`:
`best_keyword_rule`, `KeywordRule`, `majority_class`, `words`, `word_vocabulary`, `bag_of_words`, `SoftmaxRegression`;
`tinygrad_llm.finetune.classifier`: `GPTClassifier`, `ClassifierHead`, `pool`, `pad_batch`,
`padding_attention_mask`, `freeze`, `extract_features`, `predict_logits`, `train_classifier`,
`FineTuneConfig`, `FineTuneHistory`; `tinygrad_llm.scale.memory`: `gradient_bytes`,
`saved_activation_bytes`, `peak_memory`, `optimizer_state_bytes`.

**Run:** `python lessons/10_classification_finetuning.py` (under 2 minutes on 2 cores with lesson
07's checkpoint; without it the model is pretrained first, about 6 minutes more) or `--quick`
(about 10 seconds).
"""

# %%
import dataclasses
import time

import matplotlib.pyplot as plt
import numpy as np

from tinygrad_llm import GPT, functional as F
from tinygrad_llm.finetune.classifier import (ClassifierHead, FineTuneConfig, GPTClassifier, extract_features,
                                         freeze, predict_logits, train_classifier)
from tinygrad_llm.course import quick_mode, save_figure
from tinygrad_llm.course.figures import legend_outside
from tinygrad_llm.evaluate.metrics import accuracy, confusion_matrix, macro_f1
from tinygrad_llm.scale.memory import format_bytes, gradient_bytes, peak_memory, saved_activation_bytes
from tinygrad_llm.finetune.baselines import (SoftmaxRegression, bag_of_words, best_keyword_rule,
                                             majority_class, word_vocabulary)
from tinygrad_llm.finetune.topic_task import topic_classification_task
from tinygrad_llm.course import course_model

# %% [markdown]
# ## Settings (quick mode shrinks everything for smoke tests)

# %%
SEED = 0
QUICK = quick_mode()
NUM_CLASSES = 4 if QUICK else 6            # the largest topics with text of their own
PASSAGE_LENGTH = 32 if QUICK else 128      # tokens per passage: the model's whole context
MAX_PER_CLASS = 40 if QUICK else None      # cap per class and split (quick mode only)
BOW_L2 = (1e-3, 1e-2, 1e-1)                # L2 strengths tried for bag-of-words, chosen on validation
HEAD = FineTuneConfig(steps=150 if QUICK else 300, batch_size=32, learning_rate=1e-2,
                      warmup_steps=10, eval_interval=25)          # heads on cached features
TOP = FineTuneConfig(steps=40 if QUICK else 100, batch_size=16, learning_rate=3e-3,
                     warmup_steps=10, eval_interval=10)           # approach 3, through the GPT
FULL = dataclasses.replace(TOP, learning_rate=3e-4)                # approach 4: smaller steps
TOP_K = 1                                  # blocks unfrozen in approach 3
MLP_HIDDEN = 128                           # width of approach 2's head
MEMORY_BATCH = 8                           # batch of the one-step memory measurement

rng = np.random.default_rng(SEED)

# %% [markdown]
# ## 1. The task: which topic is this passage from?
# Each class is one of the largest documentation topics; a topic whose lines mostly reappear in a
# larger one (`customization` is a section of `specialnames`) is skipped, or the same passage
# would carry two labels. Each topic is cut into segments of two consecutive passages with a gap
# of 32 tokens after each; segments take turns (train, test, train, validation, train, test), so
# the splits share no text and each covers the whole topic (a passage that a topic repeats word
# for word elsewhere is dropped from evaluation). The classes are not balanced: we keep
# all the text and report the counts, and the majority class is the baseline to beat.

# %%
model, tokenizer = course_model(QUICK)
T = model.config.context_length
task = topic_classification_task(tokenizer, NUM_CLASSES, PASSAGE_LENGTH, context_length=T,
                                 max_per_class=MAX_PER_CLASS, seed=SEED)
K = task.num_classes
print(f"{K} classes, passages of {task.passage_length} tokens (context {T})")
print(task.counts_table())
for k, name in enumerate(task.class_names):
    of_class = np.flatnonzero(task.train.labels == k)
    example = task.train.texts[int(of_class[len(of_class) // 2])]   # one from mid-topic
    print(f"  {name:>14}: {' '.join(example.split())[:90]!r}")
shared = set(task.train.texts) & (set(task.val.texts) | set(task.test.texts))
print(f"{task.duplicates_removed} evaluation passages dropped because a topic repeats their text "
      f"elsewhere; passages shared between training and evaluation: {len(shared)} (must be 0)")

# %% [markdown]
# ## 2. Is one keyword enough?
# If one word gave the topic away, the task would teach nothing. The best single-keyword rule,
# "if word w occurs say class a, else class b", is searched over every word of the training
# passages. It can name only two of the K classes, so it should stay far below a real classifier;
# the majority class is the floor.

# %%
y_train, y_val, y_test = task.train.labels, task.val.labels, task.test.labels
majority = majority_class(y_train)
majority_accuracy = accuracy(np.full(len(y_test), majority), y_test)
rule, rule_train_accuracy = best_keyword_rule(task.train.texts, y_train, K)
keyword_accuracy = accuracy(rule.predict(task.test.texts), y_test)
two_class_ceiling = np.sort(np.bincount(y_test, minlength=K))[-2:].sum() / len(y_test)
print(f"majority class ({task.class_names[majority]}): test accuracy {majority_accuracy:.3f} "
      f"(1/K = {1 / K:.3f} if the classes were balanced)")
print(f"best keyword rule: if {rule.word!r} occurs say {task.class_names[rule.present_class]}, else "
      f"{task.class_names[rule.absent_class]}: train {rule_train_accuracy:.3f}, test {keyword_accuracy:.3f} "
      f"(ceiling of any two-class rule on this test set: {two_class_ceiling:.3f})")

# %% [markdown]
# ## 3. Bag-of-words logistic regression
# Count the words of each passage (features log(1 + count), vocabulary: words seen twice in
# training), then softmax regression with an L2 penalty, trained by gradient descent with the
# step 1/L that the curvature bound allows (no learning rate to tune). The penalty is chosen on
# the validation split; the test split is touched once.

# %%
vocabulary = word_vocabulary(task.train.texts, min_count=2)
bow = {name: np.log1p(bag_of_words(task.split(name).texts, vocabulary)) for name in ("train", "val", "test")}
candidates = {}
for l2 in BOW_L2:
    regression = SoftmaxRegression(len(vocabulary), K, l2=l2)
    regression.fit(bow["train"], y_train, steps=500)
    candidates[l2] = (accuracy(regression.predict(bow["val"]), y_val), regression)
    print(f"  l2 = {l2:<6}: validation accuracy {candidates[l2][0]:.3f}")
best_l2 = max(candidates, key=lambda l2: candidates[l2][0])
regression = candidates[best_l2][1]
bow_accuracy = accuracy(regression.predict(bow["test"]), y_test)
print(f"bag of words ({len(vocabulary):,} words, l2 = {best_l2}): test accuracy {bow_accuracy:.3f}, "
      f"{regression.num_parameters:,} parameters")

# %% [markdown]
# ## 4. The pretrained model's features, computed once
# Every approach starts from the same pretrained weights: we keep a copy and load it into a fresh
# GPT each time, so that no approach inherits another's training. With the body frozen, the
# pooled features of every passage are fixed: we compute them once, for both poolings. As a
# control, the same features from a GPT with random weights show what pretraining contributes.
#
# careful: pretraining read most of these passages as plain text (lesson 07 trained on the first
# 90% of the corpus; only `typesseq` and the end of `typesmapping` lie in its validation part).
# It never saw a label. What we test is whether the model can learn a new question about text like
# the text it has read, which is the usual situation of fine-tuning.

# %%
pretrained = {name: array.copy() for name, array in model.state_dict().items()}


def fresh_gpt() -> GPT:
    gpt = GPT(model.config)
    gpt.load_state_dict(pretrained)
    return gpt


def cached_features(classifier: GPTClassifier) -> dict[str, np.ndarray]:
    return {name: extract_features(classifier, task.split(name).inputs) for name in ("train", "val", "test")}


start = time.perf_counter()
features = {pooling: cached_features(GPTClassifier(fresh_gpt(), K, pooling=pooling))
            for pooling in ("last", "mean")}
extraction_seconds = time.perf_counter() - start
random_gpt = GPT(model.config, rng=np.random.default_rng(SEED + 1))
features["random"] = cached_features(GPTClassifier(random_gpt, K, pooling="mean"))
print(f"features: {features['last']['train'].shape} for training, both poolings in "
      f"{extraction_seconds:.1f} s, once for every head trained on them")

# %% [markdown]
# ## 5. Approaches 1 and 2: a frozen model and a new head
# A linear head on the last token's vector and on the mean over tokens; then a small MLP (one
# hidden layer of GELUs) on the mean. A step reads a batch of cached features, so it takes
# well under a millisecond. The weights with the best validation accuracy are kept.

# %%
results = {}   # approach -> dict of the table's columns and the model's test predictions


def record(name, head_or_classifier, inputs_test, history):
    predictions = np.argmax(predict_logits(head_or_classifier, inputs_test), axis=1)
    results[name] = dict(accuracy=accuracy(predictions, y_test), predictions=predictions,
                         trainable=head_or_classifier.num_parameters(trainable_only=True),
                         optimizer_bytes=history.optimizer_state_bytes, seconds=history.seconds_per_step,
                         val=max(history.val_accuracy), history=history)
    print(f"{name}: validation {results[name]['val']:.3f} (best at step {history.best_step}), "
          f"test {results[name]['accuracy']:.3f}, {history.seconds_per_step * 1e3:.1f} ms/step")


head_runs = [("1. frozen, linear head, last token", "last", "linear"),
             ("1. frozen, linear head, mean", "mean", "linear"),
             ("2. frozen, MLP head, mean", "mean", "mlp"),
             ("control: random body, linear head", "random", "linear")]
for name, pooling, kind in head_runs:
    head = ClassifierHead(model.config.d_model, K, kind, hidden=MLP_HIDDEN, rng=rng)
    cached = features[pooling]
    history = train_classifier(head, cached["train"], y_train, HEAD, rng, val=(cached["val"], y_val))
    record(name, head, cached["test"], history)

# %% [markdown]
# ## 6. Approach 3: unfreeze the top block
# The last `TOP_K` blocks and the final norm train with a new linear head on the mean. Below the
# first trainable layer nothing requires grad, so the forward pass through the frozen blocks
# records no graph; only the top of the network pays for backward.

# %%
top = freeze(GPTClassifier(fresh_gpt(), K, pooling="mean", rng=rng), "top_k", k=TOP_K)
history = train_classifier(top, task.train.inputs, y_train, TOP, rng, val=(task.val.inputs, y_val))
record(f"3. top {TOP_K} block + final norm", top, task.test.inputs, history)

# %% [markdown]
# ## 7. Approach 4: full fine-tuning
# Every weight trains, with a learning rate ten times smaller than approach 3's: the pretrained
# weights are a good starting point, and large steps on all of them would wreck it.

# %%
full = freeze(GPTClassifier(fresh_gpt(), K, pooling="mean", rng=rng), "all")
history = train_classifier(full, task.train.inputs, y_train, FULL, rng, val=(task.val.inputs, y_val))
record("4. full fine-tune", full, task.test.inputs, history)

# %% [markdown]
# ## 8. What freezing saves: one training step, measured
# One step (forward, loss, backward) on a batch of `MEMORY_BATCH` passages, for the three ways of
# freezing, with no cached features: gradients stored, bytes the graph keeps alive for backward
# (activations), and the peak of everything NumPy allocated during the step (`tracemalloc`).
# Reference: a gradient is 4 bytes per trainable parameter, so the frozen body stores only the
# head's.

# %%
memory = {}
batch_inputs, batch_labels = task.train.inputs[:MEMORY_BATCH], y_train[:MEMORY_BATCH]
for trainable in ("head", "top_k", "all"):
    classifier = freeze(GPTClassifier(fresh_gpt(), K, pooling="mean"), trainable, k=TOP_K)

    def step():
        loss = F.cross_entropy(classifier(batch_inputs), batch_labels)
        saved = saved_activation_bytes(loss)
        loss.backward()
        return saved

    saved, peak = peak_memory(step)
    memory[trainable] = dict(gradients=gradient_bytes(classifier), saved=saved, peak=peak,
                             trainable=classifier.num_parameters(trainable_only=True))
print(f"{'trainable':>9} {'parameters':>11} {'gradients':>11} {'activations':>12} {'peak':>11}")
for trainable, m in memory.items():
    print(f"{trainable:>9} {m['trainable']:>11,} {format_bytes(m['gradients']):>11} "
          f"{format_bytes(m['saved']):>12} {format_bytes(m['peak']):>11}")
print(f"gradient bytes = 4 x trainable parameters: "
      f"{all(m['gradients'] == 4 * m['trainable'] for m in memory.values())}")

# %% [markdown]
# ## 9. All approaches side by side
# Test accuracy, trainable parameters, AdamW's state (m and v: 2 floats, 8 bytes, per trainable
# parameter) and seconds per training step. The heads' steps read cached features; computing
# those once took the time printed in section 4.

# %%
print(f"{'approach':<38} {'test acc':>8} {'trainable':>10} {'AdamW state':>12} {'s/step':>8}")
print(f"{'majority class':<38} {majority_accuracy:8.3f} {0:>10} {'-':>12} {'-':>8}")
print(f"{'best single keyword':<38} {keyword_accuracy:8.3f} {0:>10} {'-':>12} {'-':>8}")
print(f"{'bag-of-words logistic regression':<38} {bow_accuracy:8.3f} {regression.num_parameters:>10,} "
      f"{'-':>12} {'-':>8}")
for name, r in results.items():
    print(f"{name:<38} {r['accuracy']:8.3f} {r['trainable']:>10,} {format_bytes(r['optimizer_bytes']):>12} "
          f"{r['seconds']:8.4f}")

passages = sum(len(task.split(name)) for name in ("train", "val", "test"))
uncached = extraction_seconds / (2 * passages) * HEAD.batch_size   # two poolings were extracted
print(f"(without the cache, every head step would first run the frozen GPT on its batch: about "
      f"{uncached:.2f} s/step)")

approaches = [name for name in results if not name.startswith("control")]
best = max(approaches, key=lambda name: results[name]["val"])    # chosen on validation, not test
matrix = confusion_matrix(y_test, results[best]["predictions"], num_classes=K)
print(f"best on validation: {best} (test accuracy {results[best]['accuracy']:.3f}, "
      f"macro F1 {macro_f1(matrix):.3f}); confusion matrix, rows true, columns predicted:")
for k, name in enumerate(task.class_names):
    print(f"  {name:>14} " + " ".join(f"{n:4d}" for n in matrix[k]))

# %%
fig, (ax, ax_curves) = plt.subplots(1, 2, figsize=(12, 4.5))
for name, r in results.items():
    tag = name.replace("frozen, ", "").replace(" head", "").replace(" block + final norm", "")
    ax.scatter(r["trainable"], r["accuracy"], s=40)
    ax.annotate(tag, (r["trainable"], r["accuracy"]), fontsize=7, xytext=(5, 3), textcoords="offset points")
baselines = ((majority_accuracy, "majority class", ":"), (keyword_accuracy, "best keyword", "-."),
             (bow_accuracy, "bag of words", "--"))
for value, label, style in baselines:
    ax.axhline(value, color="gray", linestyle=style, label=label)
ax.set_xscale("log")
ax.set_xlabel("trainable parameters")
ax.set_ylabel("test accuracy")
ax.set_title("Accuracy against what is trained")
ax.set_xlim(right=ax.get_xlim()[1] * 8)   # room for the labels of the rightmost points
legend_outside(ax, fontsize=8)
for name, r in results.items():
    ax_curves.plot(r["history"].eval_steps, r["history"].val_accuracy, "o-", markersize=3, label=name)
ax_curves.set_xlabel("training step")
ax_curves.set_ylabel("validation accuracy")
ax_curves.set_title("Validation accuracy during training")
legend_outside(ax_curves, fontsize=7)
save_figure(fig, "10_accuracy_vs_trainable")

fig, ax = plt.subplots(figsize=(5.5, 5))
ax.imshow(matrix, cmap="Blues")
for (i, j), n in np.ndenumerate(matrix):
    ax.text(j, i, str(n), ha="center", va="center", color="white" if n > matrix.max() / 2 else "black")
ax.set_xticks(range(K), task.class_names, rotation=45, ha="right")
ax.set_yticks(range(K), task.class_names)
ax.set_xlabel("predicted")
ax.set_ylabel("true")
ax.set_title(f"Confusion matrix: {best}", fontsize=9)
save_figure(fig, "10_confusion_matrix")

# %% [markdown]
# ## 10. What we found
# The numbers are this run's, printed from its results (the test set is small, so differences of
# a few hundredths are noise; its size is printed too):
#
# * one keyword is far from enough, while counting all the words does much better: the task needs
#   many weak clues;
# * pooling matters more than the head. The last token's vector is shaped by pretraining to
#   predict the *next* token, a local question; the mean over all positions summarises the
#   passage, and a linear head on it is a strong start;
# * pretraining is what makes the features useful: compare the same probe on a random GPT;
# * training more of the network costs memory: a full step stores a gradient and two AdamW
#   moments for every parameter and the activations of every block (section 8, checked). A head
#   on cached features also skips the body's forward and backward passes: compare the
#   milliseconds per step printed below.

# %%
noise = 1 / np.sqrt(len(y_test))   # about the standard error of an accuracy near 0.5
print(f"test set: {len(y_test)} passages (differences under about {noise:.2f} are noise)")
print(f"best keyword {keyword_accuracy:.2f}, bag of words {bow_accuracy:.2f}, majority class {majority_accuracy:.2f}")
for name, r in results.items():
    print(f"  {name:<40} test accuracy {r['accuracy']:.2f}, {r['trainable']:>9,} trainable parameters, "
          f"{r['seconds'] * 1e3:8.2f} ms per step")
print(f"gradient bytes of a step: head {format_bytes(memory['head']['gradients'])}, top block "
      f"{format_bytes(memory['top_k']['gradients'])}, everything {format_bytes(memory['all']['gradients'])}; "
      f"saved activations {format_bytes(memory['head']['saved'])}, {format_bytes(memory['top_k']['saved'])}, "
      f"{format_bytes(memory['all']['saved'])}")

# %% [markdown]
# ## Closing checks
# The claims of this lesson.

# %%
fine_tuned = max(results[name]["accuracy"] for name in approaches)
assert not shared, "training passages must not reappear in validation or test"
assert keyword_accuracy < bow_accuracy, "one keyword should not match a bag-of-words model"
assert fine_tuned >= majority_accuracy + (0.05 if QUICK else 0.3), "fine-tuning should beat the majority class"
assert memory["head"]["gradients"] < 0.01 * memory["all"]["gradients"], "a frozen body stores no gradients"
assert memory["head"]["saved"] < 0.01 * memory["all"]["saved"], "a frozen body saves no activations"
assert memory["head"]["peak"] < 0.5 * memory["all"]["peak"], "a frozen-body step should peak far lower"
assert memory["head"]["gradients"] < memory["top_k"]["gradients"] < memory["all"]["gradients"]
for name, r in results.items():
    assert r["optimizer_bytes"] == 8 * r["trainable"], f"{name}: AdamW keeps 2 floats per trainable parameter"
if not QUICK:
    linear_mean = results["1. frozen, linear head, mean"]["accuracy"]
    assert keyword_accuracy < 0.5, "the task must not be solvable by one keyword"
    assert linear_mean > results["control: random body, linear head"]["accuracy"] + 0.2, \
        "pretrained features should beat random ones clearly"
    assert linear_mean > results["1. frozen, linear head, last token"]["accuracy"] + 0.1, \
        "mean pooling should beat the last token for a frozen model"
    assert results["4. full fine-tune"]["accuracy"] >= bow_accuracy - 0.05, \
        "full fine-tuning should at least match bag-of-words"
print("lesson 10 checks passed")


# %% [markdown]
# ## Exercises
# Each exercise is one file you edit; its checker runs your answer on tiny inputs in seconds and,
# when it is not right yet, says what kind of result it expected and gives a hint.
#
# 1. **A confusion matrix.** A confusion matrix from true and predicted class ids. Edit
#    `exercises/10_1.py`, then run `tinygrad-llm exercise check 10.1`.
# 2. **Macro-averaged F1 from a confusion matrix.** Macro-averaged F1 from a confusion matrix (rows
#    true, columns predicted). Edit `exercises/10_2.py`, then run `tinygrad-llm exercise check 10.2`.
#
# `python -m pytest -m exercises` checks every answer at once. Reference solutions are in
# `exercises/solutions/`: look there after you have tried.
