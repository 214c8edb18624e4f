# %% [markdown]
"""
# 12. LoRA and other parameter-efficient fine-tuning

**The question.** Lessons 10 and 11 fine-tuned every weight of the course GPT. That works, but
each task then needs its own copy of the whole model, and training keeps a gradient and two AdamW
moments for every one of its ~1.07M parameters. How few parameters can we train instead, and
what do we lose in accuracy, memory and time?

**The idea.** LoRA (low-rank adaptation) freezes a pretrained weight W, shape (out, in), and
learns a correction of rank r beside it:

    W' = W + (alpha / r) B A,      A: (r, in),  B: (out, r),  r << in, out
    y  = x W^T + b + (alpha / r) (x A^T) B^T

Only A and B train: r (in + out) numbers instead of in * out. For the attention's
query/key/value projection of the course model (128 -> 384) with r = 4 that is 2,048 numbers
instead of 49,152. B starts at zero, so the adapted model starts exactly at the pretrained one;
A starts random, so that B gets a gradient at the first step. Dividing by r keeps the size of
the update about the same when r changes. After training, (alpha / r) B A can be added into W
(*merged*, no extra inference cost), or A and B saved alone: a small file, used on top of the
one base model it was trained for, next to other adapters for other tasks.

Two other families train something other than weights: *prompt tuning* learns P "virtual token"
vectors put in front of every input (P x C numbers), and *bottleneck adapters* add a small
residual network h + up(gelu(down(h))) after the attention and the MLP of every block. We compare
all of them with full fine-tuning on lesson 10's topic classification and lesson 11's
instruction task: accuracy, trainable parameters, AdamW state and seconds per step.

**Builds on:** lessons 10 (the classification task, `GPTClassifier`, `train_classifier`) and 11
(the instruction data, `InstructionTrainer`, exact match and ROUGE-L).
**Adds:** `tinygrad_llm.finetune.lora`: `LoRALinear`, `LoRAAdapter`, `apply_lora`, `add_adapter`,
`set_active_adapter`, `active_adapter`, `adapter_names`, `lora_layers`, `merge_lora`,
`unmerge_lora`, `unload_lora`, `save_lora`, `load_lora`, `base_fingerprint`;
`tinygrad_llm.finetune.adapters`: `PromptTunedGPT`, `BottleneckAdapter`, `apply_bottleneck_adapters`,
`remove_bottleneck_adapters`; `tinygrad_llm.scale.memory`: `finetune_cost`, `FinetuneCost`,
`trainable_parameters`, `trainable_parameter_count`, `trainable_percentage`.

**Run:** `python lessons/12_lora_and_peft.py` (about 3 minutes on 2 cores with lesson 07's
checkpoint; without it the model is pretrained first, about 6 minutes more) or `--quick`
(under 10 seconds).
"""

# %%
import time

import matplotlib.pyplot as plt
import numpy as np

from tinygrad_llm import GPT, Linear, Module, Tensor, no_grad, course_corpus
from tinygrad_llm.finetune.adapters import PromptTunedGPT, apply_bottleneck_adapters
from tinygrad_llm.model.state import CheckpointError, save_safetensors
from tinygrad_llm.finetune.classifier import (ClassifierHead, FineTuneConfig, GPTClassifier, extract_features,
                                         freeze, pool, predict_logits, train_classifier)
from tinygrad_llm.text.corpus import embedded_documents
from tinygrad_llm.course import output_dir, quick_mode, save_figure
from tinygrad_llm.course.figures import label_axes, legend_outside, series_style
from tinygrad_llm.finetune.instruction_data import (INSTRUCTIONS, PromptTemplate, build_instruction_data,
                                                    collate, encode_examples, response_loss,
                                                    validation_topics)
from tinygrad_llm.finetune.instruction_tuning import InstructConfig, InstructionTrainer, evaluate_responses
from tinygrad_llm.evaluate.metrics import accuracy
from tinygrad_llm.scale.memory import (finetune_cost, format_bytes, optimizer_state_bytes,
                                      trainable_parameter_count)
from tinygrad_llm.finetune.lora import (LoRALinear, active_adapter, adapter_names, apply_lora, base_fingerprint,
                               load_lora, merge_lora, save_lora, set_active_adapter, unmerge_lora)
from tinygrad_llm.finetune.baselines import majority_class
from tinygrad_llm.finetune.topic_task import topic_classification_task
from tinygrad_llm.course import course_model

# %% [markdown]
# ## Settings (quick mode shrinks everything for smoke tests)

# %%
SEED = 0
QUICK = quick_mode()
DEMO_IN, DEMO_OUT, DEMO_RANK = 48, 32, 4   # section 1: one Linear, adapted by hand
SMALL_RANK, LARGE_RANK = (2, 4) if QUICK else (4, 16)
LORA_ALPHA = 16.0                          # the same alpha for every rank: the update scales as alpha / r
ATTENTION = ("attn.qkv", "attn.proj")      # dotted suffixes of the layers to adapt
ATTENTION_MLP = ATTENTION + ("mlp.up", "mlp.down")
N_VIRTUAL_TOKENS = 4 if QUICK else 8       # prompt tuning's P
BOTTLENECK = 4 if QUICK else 16            # bottleneck adapters' width m

# Lesson 10's task: the largest documentation topics, passages of the model's whole context.
NUM_CLASSES = 4 if QUICK else 6
PASSAGE_LENGTH = 32 if QUICK else 128
MAX_PER_CLASS = 40 if QUICK else None
HEAD_ONLY = FineTuneConfig(steps=150 if QUICK else 300, batch_size=32, learning_rate=1e-2,
                           warmup_steps=10, eval_interval=25)      # the reference: frozen body, new head
CLASSIFY_STEPS = 15 if QUICK else 40       # per method, batch 16: about 3 passes over the training passages
CLASSIFY_EVAL = 5 if QUICK else 10         # validation every this many steps; the best weights are kept
# method: (what trains, its setting, peak learning rate); the same rates serve both tasks.
# Adapters start at zero and have few parameters: they take larger steps than full fine-tuning
# (lesson 10 used 3e-4 for full fine-tuning over 100 steps; 40 steps need larger ones).
SMALL_ATTENTION = f"LoRA r={SMALL_RANK}, attention"
LARGE_ATTENTION = f"LoRA r={LARGE_RANK}, attention"
LARGE_ATTENTION_MLP = f"LoRA r={LARGE_RANK}, attention+MLP"
CLASSIFY_METHODS = {
    "full fine-tune": ("full", None, 1e-3),
    SMALL_ATTENTION: ("lora", (SMALL_RANK, ATTENTION), 3e-3),
    LARGE_ATTENTION: ("lora", (LARGE_RANK, ATTENTION), 3e-3),
    LARGE_ATTENTION_MLP: ("lora", (LARGE_RANK, ATTENTION_MLP), 3e-3),
    "prompt tuning": ("prompt", N_VIRTUAL_TOKENS, 3e-2),
    "bottleneck adapters": ("bottleneck", BOTTLENECK, 3e-3),
}

# Lesson 11's task, with two changes for a short budget: only the questions with short answers
# (the topic of a passage and the title of its section; "continue with the next words" stays
# near zero for every method at this size), and scored on held-out passages of the topics
# training saw (the title of a topic never seen in training cannot be guessed).
TEMPLATE = PromptTemplate.compact() if QUICK else PromptTemplate()
TASK_INSTRUCTIONS = {"topic": "Topic?", "section": "Section?", "continue": "Next?"} if QUICK else INSTRUCTIONS
INSTRUCTION_TASKS = ("topic", "section")
PASSAGE_WORDS = 3 if QUICK else 24
ANSWER_WORDS = 2 if QUICK else 4
HELD_OUT_FRACTION = 0.15
EVAL_EXAMPLES = 12 if QUICK else 90        # held-out questions answered by every method
MAX_NEW_TOKENS = 12 if QUICK else 16       # the longest reference answer is 16 tokens
INSTRUCT_STEPS = 20 if QUICK else 160
INSTRUCT_BATCH = 8
INSTRUCT_METHODS = {
    "full fine-tune": ("full", None, 1e-3),
    SMALL_ATTENTION: ("lora", (SMALL_RANK, ATTENTION), 3e-3),
    LARGE_ATTENTION_MLP: ("lora", (LARGE_RANK, ATTENTION_MLP), 3e-3),
    "prompt tuning": ("prompt", N_VIRTUAL_TOKENS, 3e-2),
}
SHOWN_ADAPTER = LARGE_ATTENTION_MLP   # the instruction adapter merged, saved and reloaded (sections 5, 6)
TOPICS_ADAPTER = LARGE_ATTENTION      # the classification body adapter of section 6

rng = np.random.default_rng(SEED)
lesson_start = time.perf_counter()

# %% [markdown]
# ## 1. LoRA on one Linear layer
# By hand first, in NumPy: a frozen W and b, then A (small, random) and B (zero). With B = 0 the
# update (alpha / r) B A is exactly zero, so the output is the base layer's, bit for bit. Then the
# package's `LoRALinear`, which wraps an existing `Linear`, keeps its weight and bias (frozen) and
# adds the same path. Computing (x A^T) B^T instead of x (B A)^T never forms the (out, in) update:
# r (in + out) multiplications per row instead of in * out.

# %%
scale = LORA_ALPHA / DEMO_RANK
x = rng.normal(size=(5, DEMO_IN)).astype(np.float32)                         # (N, in)
base_layer = Linear(DEMO_IN, DEMO_OUT, rng=rng)
W, b = base_layer.weight.data, base_layer.bias.data                         # (out, in), (out,)
bound = 1 / np.sqrt(DEMO_IN)
A = rng.uniform(-bound, bound, (DEMO_RANK, DEMO_IN)).astype(np.float32)     # (r, in)
B = np.zeros((DEMO_OUT, DEMO_RANK), dtype=np.float32)                       # (out, r)
y_base = x @ W.T + b                                                        # (N, out)
y_lora = y_base + scale * (x @ A.T) @ B.T                                   # (N, r) -> (N, out)
print(f"by hand, B = 0: max |LoRA output - base output| = {np.abs(y_lora - y_base).max()} (reference 0)")

layer = LoRALinear(base_layer, r=DEMO_RANK, alpha=LORA_ALPHA, rng=rng)
lora = layer.lora["default"]
at_init_equal = np.array_equal(layer(Tensor(x)).data, base_layer(Tensor(x)).data)
print(f"LoRALinear at init equals the base layer exactly: {at_init_equal}")

# Give B values (as if trained) and compare with the formula; the update has rank r.
lora.B.data[...] = rng.normal(0, 0.1, lora.B.shape)
by_hand = x @ W.T + b + scale * (x @ lora.A.data.T) @ lora.B.data.T
formula_error = np.abs(layer(Tensor(x)).data - by_hand).max()
update_rank = np.linalg.matrix_rank(lora.delta_weight())
print(f"with B != 0: max |LoRALinear - (x W^T + b + (alpha/r) x A^T B^T)| = {formula_error:.1e}; "
      f"rank of (alpha/r) B A = {update_rank} (r = {DEMO_RANK})")

lora_count = trainable_parameter_count(layer)
print(f"trainable: r (in + out) = {DEMO_RANK} x ({DEMO_IN} + {DEMO_OUT}) = {lora_count} "
      f"(A {lora.A.shape}, B {lora.B.shape}) vs in x out = {DEMO_IN * DEMO_OUT} for the full weight; "
      f"frozen: {layer.num_parameters() - lora_count}")

# %% [markdown]
# Why B = 0 and not A = 0 (or both)? The gradients at the start, for a loss L with upstream
# gradient G = dL/dy (N, out) and h = x A^T (N, r):
#
#     dL/dB = (alpha / r) G^T h        nonzero: B moves at the first step
#     dL/dA = (alpha / r) B^T G^T x    zero while B = 0; A follows once B has moved
#
# If both started at zero, both gradients would be zero forever.

# %%
fresh_layer = LoRALinear(Linear(DEMO_IN, DEMO_OUT, rng=rng), r=DEMO_RANK, alpha=LORA_ALPHA, rng=rng)
weights = rng.normal(size=(5, DEMO_OUT)).astype(np.float32)   # fixed random weights: L = sum(y * w)
(fresh_layer(Tensor(x)) * weights).sum().backward()
grad_a = np.abs(fresh_layer.lora["default"].A.grad).max()
grad_b = np.abs(fresh_layer.lora["default"].B.grad).max()
print(f"at init: max |dL/dA| = {grad_a} (reference 0), max |dL/dB| = {grad_b:.3f} (nonzero); "
      f"the base weight has no gradient: {fresh_layer.weight.grad is None}")

# %% [markdown]
# ## 2. Injecting LoRA into the course model by name
# `apply_lora(model, target, r)` wraps every `Linear` whose dotted name matches `target` and
# freezes everything else. A target is a list of dotted suffixes (`"attn.qkv"` matches
# `blocks.3.attn.qkv`), globs (`"blocks.[23].attn.qkv"`) or one regular expression. The LoRA
# paper adapts the attention projections only; the MLPs hold twice as many weights. Each row
# below starts from a fresh copy of the pretrained weights; AdamW keeps 2 floats (8 bytes) per
# trainable parameter.

# %%
model, tokenizer = course_model(QUICK)
pretrained = {name: array.copy() for name, array in model.state_dict().items()}
T = model.config.context_length


def pretrained_gpt() -> GPT:
    """A fresh copy of the pretrained weights (every method starts from its own)."""
    gpt = GPT(model.config, rng=np.random.default_rng(SEED))
    gpt.load_state_dict(pretrained)
    return gpt


def lm_logits(lm, inputs: np.ndarray) -> np.ndarray:
    """Next-token logits (B, T, V) in eval mode, without a graph."""
    lm.eval()
    with no_grad():
        return lm(inputs).data


full_parameters = model.num_parameters()
print(f"course model: {full_parameters:,} parameters, context {T}, {model.config.n_layer} blocks")
top_two = f"blocks.[{model.config.n_layer - 2}{model.config.n_layer - 1}].attn.qkv"   # a glob
targets = [("attention (suffixes)", ATTENTION, SMALL_RANK), ("attention (suffixes)", ATTENTION, LARGE_RANK),
           ("attention + MLP (suffixes)", ATTENTION_MLP, LARGE_RANK),
           ("top two blocks' qkv (a glob)", [top_two], LARGE_RANK),
           ("MLPs only (a regex)", r"mlp\.(up|down)$", LARGE_RANK)]
print(f"{'target':<30} {'r':>3} {'layers':>6} {'trainable':>10} {'% of all':>8} {'AdamW state':>12}")
for label, target, r in targets:
    adapted_gpt = pretrained_gpt()
    adapted = apply_lora(adapted_gpt, target, r=r, alpha=LORA_ALPHA, rng=rng)
    cost = finetune_cost(adapted_gpt)
    print(f"{label:<30} {r:>3} {len(adapted):>6} {cost.trainable:>10,} {cost.trainable_percent:>7.2f}% "
          f"{format_bytes(cost.optimizer_bytes):>12}")
full_cost = finetune_cost(pretrained_gpt())
print(f"{'full fine-tuning':<30} {'-':>3} {'-':>6} {full_cost.trainable:>10,} {100:>7.2f}% "
      f"{format_bytes(full_cost.optimizer_bytes):>12}")
print(f"last one adapted: {', '.join(adapted[:2])}, ... ; the weight names are unchanged "
      f"({adapted[0]}.weight), the adapter adds {adapted[0]}.lora.default.A and .B")

probe = np.stack([np.arange(T) % model.config.vocab_size, (7 * np.arange(T)) % model.config.vocab_size])
injected_equals_base = np.array_equal(lm_logits(adapted_gpt, probe), lm_logits(pretrained_gpt(), probe))
print(f"logits right after injection equal the pretrained model's exactly: {injected_equals_base}")

# %% [markdown]
# ## 3. Lesson 10's classification task: six ways to fine-tune
# Which documentation topic does a passage come from? Every method starts from the pretrained
# weights and trains a new linear head on the mean over positions (lesson 10's best pooling),
# for the same number of steps of the same batch size; the weights of the best validation
# accuracy are kept and scored once on the test split. The head is new, so every PEFT method
# trains it too (774 parameters for 6 classes). The reference is lesson 10's cheapest approach,
# a frozen body with a head trained on cached features.
#
# careful: prompt tuning's P virtual tokens take P of the T positions, so its passages keep only
# their last T - P tokens. `GPTClassifier` cannot wrap a `PromptTunedGPT` (it reads the token
# embedding of the GPT it wraps and passes an attention mask), so a small module below does the
# same three steps: hidden states, mean pooling, head.

# %%
task = topic_classification_task(tokenizer, NUM_CLASSES, PASSAGE_LENGTH, context_length=T,
                                 max_per_class=MAX_PER_CLASS, seed=SEED)
K = task.num_classes
y_train, y_val, y_test = task.train.labels, task.val.labels, task.test.labels
majority_accuracy = accuracy(np.full(len(y_test), majority_class(y_train)), y_test)
print(f"{K} classes, {len(y_train)} / {len(y_val)} / {len(y_test)} passages of {PASSAGE_LENGTH} tokens "
      f"(train / val / test); majority class: test accuracy {majority_accuracy:.3f}")


class PromptTunedClassifier(Module):
    """Token ids (B, T) -> class logits (B, K) through a prompt-tuned GPT, mean pooling and a head."""

    def __init__(self, prompted: PromptTunedGPT, num_classes: int, rng: np.random.Generator):
        self.prompted = prompted
        self.head = ClassifierHead(prompted.gpt.config.d_model, num_classes, rng=rng)

    def forward(self, idx: np.ndarray):
        keep = self.prompted.config.context_length               # T - P real tokens fit
        hidden = self.prompted.hidden_states(idx[:, -keep:])     # (B, T-P, C), prompt positions dropped
        return self.head(pool(hidden, pooling="mean"))           # (B, C) -> (B, K)


def classifier_for(kind: str, setting) -> Module:
    """A classifier on fresh pretrained weights, with exactly the method's parameters trainable."""
    if kind == "prompt":
        return PromptTunedClassifier(PromptTunedGPT(pretrained_gpt(), setting, rng=rng), K, rng)
    classifier = GPTClassifier(pretrained_gpt(), K, pooling="mean", rng=rng)
    if kind == "full":
        return freeze(classifier, "all")
    if kind == "lora":
        r, target = setting
        apply_lora(classifier.gpt, target, r=r, alpha=LORA_ALPHA, rng=rng)
    else:
        apply_bottleneck_adapters(classifier.gpt, bottleneck=setting, rng=rng)
    classifier.head.requires_grad_(True)   # the new head trains with every method
    return classifier


head_only = GPTClassifier(pretrained_gpt(), K, pooling="mean", rng=rng)
cached = {name: extract_features(head_only, task.split(name).inputs) for name in ("train", "val", "test")}
history = train_classifier(head_only.head, cached["train"], y_train, HEAD_ONLY, rng,
                           val=(cached["val"], y_val))
classify = {"head only (lesson 10)": dict(
    accuracy=accuracy(np.argmax(predict_logits(head_only.head, cached["test"]), axis=1), y_test),
    trainable=trainable_parameter_count(head_only.head), optimizer_bytes=history.optimizer_state_bytes,
    seconds=history.seconds_per_step)}
print(f"head only (lesson 10): test accuracy {classify['head only (lesson 10)']['accuracy']:.3f}")

classifiers = {}
for name, (kind, setting, learning_rate) in CLASSIFY_METHODS.items():
    classifier = classifier_for(kind, setting)
    config = FineTuneConfig(steps=CLASSIFY_STEPS, batch_size=16, learning_rate=learning_rate,
                            warmup_steps=CLASSIFY_STEPS // 4, eval_interval=CLASSIFY_EVAL)
    history = train_classifier(classifier, task.train.inputs, y_train, config, rng,
                               val=(task.val.inputs, y_val))
    predictions = np.argmax(predict_logits(classifier, task.test.inputs), axis=1)
    classifiers[name] = classifier
    classify[name] = dict(accuracy=accuracy(predictions, y_test), predictions=predictions,
                          trainable=trainable_parameter_count(classifier),
                          optimizer_bytes=history.optimizer_state_bytes, seconds=history.seconds_per_step,
                          cost=finetune_cost(classifier))
    print(f"{name:<26} validation {max(history.val_accuracy):.3f} (best at step {history.best_step}), "
          f"test {classify[name]['accuracy']:.3f}")


def print_table(results: dict, score_columns: list[tuple[str, str]]) -> None:
    """One row per method: its scores, trainable parameters (and % of full fine-tuning's),
    AdamW state and seconds per training step."""
    full = results["full fine-tune"]["trainable"]
    header = " ".join(f"{title:>9}" for title, _ in score_columns)
    print(f"{'method':<26} {header} {'trainable':>10} {'% of full':>9} {'AdamW state':>12} {'s/step':>7}")
    for name, r in results.items():
        scores = " ".join(f"{r[key]:9.3f}" for _, key in score_columns)
        print(f"{name:<26} {scores} {r['trainable']:>10,} {100 * r['trainable'] / full:>8.2f}% "
              f"{format_bytes(r['optimizer_bytes']):>12} {r['seconds']:7.3f}")


print(f"\nmajority class: {majority_accuracy:.3f}; head-only steps read cached features "
      f"(no pass through the GPT)")
print_table(classify, [("test acc", "accuracy")])
print(f"({time.perf_counter() - lesson_start:.0f} s since the start of the lesson)")

# %% [markdown]
# ## 4. Lesson 11's instruction task: full fine-tuning, LoRA and prompt tuning
# The same training recipe for every method (lesson 11's `InstructionTrainer`, no replay): the
# loss counts the response tokens only, answers are greedy, scored by exact match and ROUGE-L
# on the same held-out questions, together with the held-out response loss (how well each model
# predicts the reference answers).
#
# careful: two things differ for prompt tuning. Its P virtual tokens take P positions, so
# examples are encoded for a context of T - P (a few long prompts no longer fit), and every
# method is scored on questions whose prompt fits T - P. And `PromptTunedGPT` has no KV cache,
# while answer generation asks for one: the subclass below accepts the cache and never fills it,
# and with an empty cache `generate` feeds the whole sequence at every step (recomputation).

# %%


class PromptTunedLM(PromptTunedGPT):
    """A PromptTunedGPT that `generate` can call with a KV cache (which it leaves empty)."""

    def forward(self, idx: np.ndarray, targets: np.ndarray | None = None, cache=None):
        if cache is not None and cache.length:
            raise RuntimeError("PromptTunedLM never fills a KV cache, so it cannot continue one")
        return super().forward(idx, targets)


corpus = course_corpus(QUICK)
documents = embedded_documents()
data = build_instruction_data(documents, PASSAGE_WORDS, ANSWER_WORDS,
                              held_out_topics=validation_topics(documents, tokenizer, len(corpus.train)),
                              held_out_fraction=HELD_OUT_FRACTION, tasks=INSTRUCTION_TASKS,
                              instructions=TASK_INSTRUCTIONS, seed=SEED)
prompt_context = T - N_VIRTUAL_TOKENS
train_rows = {context: encode_examples(tokenizer, data.train, context, TEMPLATE, skip_too_long=True)
              for context in (T, prompt_context)}
held_out = [e for e in data.held_out if data.seen_topic(e)]
picked = rng.choice(len(held_out), min(EVAL_EXAMPLES, len(held_out)), replace=False)
chosen = [held_out[i] for i in sorted(picked)]
eval_rows = encode_examples(tokenizer, chosen, prompt_context, TEMPLATE, skip_too_long=True)
eval_examples = [row.example for row in eval_rows]
print(f"{len(data.train):,} training examples: {len(train_rows[T]):,} fit a context of {T}, "
      f"{len(train_rows[prompt_context]):,} fit {prompt_context} (prompt tuning); "
      f"{len(eval_examples)} held-out questions")


def score_answers(lm) -> dict:
    evaluation = evaluate_responses(lm, tokenizer, eval_examples, TEMPLATE, MAX_NEW_TOKENS)
    scores = evaluation.scores()
    return dict(exact_match=scores.exact_match, rouge_l=scores.rouge_l, predictions=evaluation.predictions,
                response_loss=response_loss(lm, eval_rows, tokenizer.eot_id))


untuned = score_answers(pretrained_gpt())
print(f"untuned: exact match {untuned['exact_match']:.3f}, ROUGE-L {untuned['rouge_l']:.3f}, "
      f"response loss {untuned['response_loss']:.2f}")

instruct, language_models = {}, {}
for name, (kind, setting, learning_rate) in INSTRUCT_METHODS.items():
    lm, context = pretrained_gpt(), T
    if kind == "lora":
        r, target = setting
        apply_lora(lm, target, r=r, alpha=LORA_ALPHA, adapter_name="instruct", rng=rng)
    elif kind == "prompt":
        lm, context = PromptTunedLM(lm, setting, rng=rng), prompt_context
    config = InstructConfig(steps=INSTRUCT_STEPS, batch_size=INSTRUCT_BATCH, learning_rate=learning_rate,
                            min_learning_rate=learning_rate / 10, warmup_steps=INSTRUCT_STEPS // 15,
                            seed=SEED, log_interval=INSTRUCT_STEPS)
    trainer = InstructionTrainer(lm, train_rows[context], config, pad_id=tokenizer.eot_id, log=None)
    history = trainer.train()
    language_models[name] = lm
    instruct[name] = dict(**score_answers(lm), trainable=trainable_parameter_count(lm),
                          optimizer_bytes=optimizer_state_bytes(trainer.optimizer),
                          seconds=history.seconds / INSTRUCT_STEPS, cost=finetune_cost(lm),
                          final_loss=float(np.mean(history.loss[-INSTRUCT_STEPS // 8:])))
    print(f"{name:<26} training loss at the end {instruct[name]['final_loss']:.2f}, "
          f"exact match {instruct[name]['exact_match']:.3f}")

print()
print_table(instruct, [("exact", "exact_match"), ("ROUGE-L", "rouge_l"), ("resp.loss", "response_loss")])
for k in range(min(3, len(eval_examples))):
    e = eval_examples[k]
    print(f"[{e.task}] reference {e.response!r}: " +
          ", ".join(f"{name.split(',')[0]} {r['predictions'][k]!r}" for name, r in instruct.items()))
print(f"({time.perf_counter() - lesson_start:.0f} s since the start of the lesson)")

# %% [markdown]
# ## 5. Saving only the adapter, merging and unmerging
# `save_lora` writes only A and B, with each layer's rank, alpha and shape, and a SHA-256
# fingerprint of the base weights; `load_lora` checks it, so an adapter is never silently used
# on a model it was not trained for. Merging adds (alpha / r) B A into each adapted weight; the
# LoRA path is then skipped, so the model costs exactly what the base costs at inference, and its
# logits equal the unmerged ones up to float32 rounding. Unmerging gives W back.
#
# careful: (W + D) - D is W only up to rounding, and the fingerprint sees every bit, so
# subtracting the update again would leave a base that no adapter file names any more. `merge`
# therefore keeps a copy of W and `unmerge` restores it: the fingerprint survives the round trip.

# %%
lora_lm = language_models[SHOWN_ADAPTER]
adapter_dir = output_dir("adapters")
instruct_path, topics_path = adapter_dir / "12_instruct.safetensors", adapter_dir / "12_topics.safetensors"
weights_path = adapter_dir / "12_base_weights.safetensors"
save_lora(lora_lm, instruct_path)
save_lora(classifiers[TOPICS_ADAPTER].gpt, topics_path)   # the body adapter only; the head is separate
save_safetensors(weights_path, pretrained)                # the whole base model, for comparison
sizes = {path.name: path.stat().st_size for path in (instruct_path, topics_path, weights_path)}
adapter_parameters = {instruct_path.name: instruct[SHOWN_ADAPTER]["trainable"],
                      topics_path.name: classify[TOPICS_ADAPTER]["trainable"] - trainable_parameter_count(
                          classifiers[TOPICS_ADAPTER].head)}
for file_name, size in sizes.items():
    count = adapter_parameters.get(file_name, full_parameters)
    print(f"  {file_name:<28} {format_bytes(size):>10}  ({count:,} float32 = {format_bytes(4 * count)} "
          f"of arrays; {100 * size / sizes[weights_path.name]:.1f}% of the full weights file)")

inputs, _ = collate(eval_rows[:8], tokenizer.eot_id)
unmerged_logits = lm_logits(lora_lm, inputs)
fingerprint_before = base_fingerprint(lora_lm)
merged_layers = merge_lora(lora_lm)
merged_logits = lm_logits(lora_lm, inputs)
merge_error = float(np.abs(merged_logits - unmerged_logits).max())
merge_equal = np.allclose(merged_logits, unmerged_logits, rtol=1e-5, atol=1e-5)
unmerge_lora(lora_lm)
restored_error = max(
    float(np.abs(lora_lm.get_submodule(name).weight.data - pretrained[f"{name}.weight"]).max())
    for name in merged_layers)
print(f"merged {len(merged_layers)} layers: max |merged - unmerged logits| = {merge_error:.1e} with logits "
      f"up to {np.abs(unmerged_logits).max():.1f}; equal to 1e-5 (absolute or relative): {merge_equal}")
print(f"after unmerge, max |W - W_pretrained| = {restored_error:.1e}; "
      f"same fingerprint as before the merge: {base_fingerprint(lora_lm) == fingerprint_before}")

fresh_base = pretrained_gpt()
loaded = load_lora(fresh_base, instruct_path)
reloaded_error = float(np.abs(lm_logits(fresh_base, inputs) - unmerged_logits).max())
reloaded_answers = evaluate_responses(fresh_base, tokenizer, eval_examples, TEMPLATE, MAX_NEW_TOKENS)
same_answers = reloaded_answers.predictions == instruct[SHOWN_ADAPTER]["predictions"]
print(f"loaded onto a fresh copy of the base ({len(loaded)} layers, adapter {active_adapter(fresh_base)!r}): "
      f"max |logits - trained model's| = {reloaded_error:.1e}; same answers to all "
      f"{len(eval_examples)} questions: {same_answers}")

different_base = language_models["full fine-tune"]   # a model whose weights are not the adapter's base
try:
    load_lora(different_base, instruct_path)
    refused = False
except CheckpointError as error:
    refused = True
    message = str(error).replace(str(instruct_path), instruct_path.name)
    print(f"loading onto the fully fine-tuned model is refused: {message[:160]}...")
print(f"base fingerprint of the pretrained model: {base_fingerprint(fresh_base)[:23]}..., "
      f"of the fully fine-tuned one: {base_fingerprint(different_base)[:23]}...")


# %% [markdown]
# ## 6. Two adapters on one base model
# One copy of the pretrained weights in memory, two small adapters loaded into it: the
# classification body adapter of section 3 (its head is a separate 774-parameter layer, kept
# beside) and the instruction adapter of section 4. `set_active_adapter` switches every LoRA
# layer at once; the MLPs have only the instruction adapter, so with `topics` active they run as
# the base. `None` is the pretrained model itself.

# %%
shared = pretrained_gpt()
load_lora(shared, instruct_path, adapter_name="instruct")
load_lora(shared, topics_path, adapter_name="topics")
topic_view = GPTClassifier(shared, K, pooling="mean")   # the shared GPT, with the trained head
topic_view.head.load_state_dict(classifiers[TOPICS_ADAPTER].head.state_dict())
base_logits = lm_logits(pretrained_gpt(), inputs)
print(f"adapters in the shared model: {adapter_names(shared)}; the pretrained weights are held once")
topic_predictions = classify[TOPICS_ADAPTER]["predictions"]
print(f"{'active':>9} | {'topic test acc':>14} | {'same topic predictions':>22} | "
      f"{'max |logits - instruct model|':>29} | {'logits == base':>14}")
switching = {}
for name in ("topics", "instruct", None):
    set_active_adapter(shared, name)
    predictions = np.argmax(predict_logits(topic_view, task.test.inputs), axis=1)
    logits = lm_logits(shared, inputs)
    switching[name] = dict(accuracy=accuracy(predictions, y_test),
                           agreement=float(np.mean(predictions == topic_predictions)),
                           instruct_error=float(np.abs(logits - unmerged_logits).max()),
                           base_equal=bool(np.array_equal(logits, base_logits)))
    r = switching[name]
    print(f"{str(name):>9} | {r['accuracy']:14.3f} | {r['agreement']:22.3f} | {r['instruct_error']:29.1e} | "
          f"{str(r['base_equal']):>14}")
print(f"references: the {TOPICS_ADAPTER} classifier of section 3 scored "
      f"{classify[TOPICS_ADAPTER]['accuracy']:.3f}; "
      f"the instruction model's logits are the unmerged ones of section 5")

# %% [markdown]
# ## 7. Accuracy against trainable parameters

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(14, 4.6), layout="constrained")
panels = ((left, classify, "accuracy", "test accuracy", "Topic classification (lesson 10's task)",
           majority_accuracy, "majority class"),
          (right, instruct, "exact_match", "held-out exact match", "Instruction answers (lesson 11's task)",
           untuned["exact_match"], "untuned model"))
styles = {name: series_style(k) for k, name in enumerate(dict.fromkeys([*classify, *instruct]))}  # one per method
for ax, results, key, ylabel, title, floor, floor_label in panels:
    for name, r in results.items():
        ax.scatter(r["trainable"], r[key], s=60, **styles[name], label=name)
    ax.axhline(floor, color="gray", linestyle=":", label=floor_label)
    ax.set_xscale("log")
    label_axes(ax, "trainable parameters (log scale)", ylabel, title)
    ax.grid(alpha=0.3)
    legend_outside(ax, fontsize=8)   # outside the axes: it used to cover a point
left.set_ylim(0, 1)
save_figure(fig, "12_accuracy_vs_trainable")

# %% [markdown]
# ## 8. What we found
# The numbers below are this run's, printed from its results; the closing checks assert the
# claims that hold in every full run:
#
# * on classification the method matters little at this budget: the pretrained features carry
#   most of the answer, and LoRA on the attention comes close to full fine-tuning while training
#   under 5% of its parameters, with an AdamW state smaller in proportion;
# * producing an exact answer token by token is harder, and there the fit follows the trainable
#   parameters: on held-out response loss, prompt tuning < small LoRA < large LoRA (asserted),
#   and prompt tuning trails full fine-tuning on exact match. (Prompt tuning is known to catch up
#   with full fine-tuning only for models of billions of parameters.)
# * LoRA saves memory: its optimizer state is a small fraction of full fine-tuning's (asserted).
#   Whether it saves time is a measurement, printed below as seconds per step (the mean over one
#   training run, on a shared machine): the backward pass still runs through every layer above
#   the lowest adapter, so a LoRA step need not be much cheaper than a full one: compare the
#   milliseconds per step below;
# * an adapter file is a small part of the weights file, merged logits match unmerged ones to
#   float32 rounding, a reloaded adapter reproduces its model, the fingerprint refuses the fully
#   fine-tuned model as a base, and one copy of the base weights serves both tasks.

# %%
print(f"{len(y_test)} test passages; held-out questions scored by exact match and response loss")
for task_name, results in (("classification", classify), ("instructions", instruct)):
    full_run = results["full fine-tune"]
    for name, r in results.items():
        score = f"accuracy {r['accuracy']:.2f}" if "accuracy" in r else \
            f"exact match {r['exact_match']:.2f}, response loss {r['response_loss']:.2f}"
        print(f"  {task_name:<14} {name:<28} {score}; trains {r['trainable'] / full_run['trainable']:6.1%} of full, "
              f"AdamW state {format_bytes(r['optimizer_bytes'])}, {r['seconds'] * 1e3:.0f} ms per step")
for file_name, size in sizes.items():
    print(f"  {file_name}: {size / sizes[weights_path.name]:.1%} of the weights file")

# %% [markdown]
# ## Closing checks
# The claims of this lesson.

# %%
assert np.array_equal(y_lora, y_base) and at_init_equal, "B = 0 must give the base output exactly"
assert formula_error < 1e-5 and update_rank == DEMO_RANK, "LoRALinear must compute W + (alpha/r) B A"
assert lora_count == DEMO_RANK * (DEMO_IN + DEMO_OUT), "LoRA trains r (in + out) numbers"
assert grad_a == 0 and grad_b > 0, "at init only B gets a gradient"
assert injected_equals_base, "injecting LoRA must not change the model's output"
for results in (classify, instruct):
    for name, r in results.items():
        assert r["optimizer_bytes"] == 8 * r["trainable"], \
            f"{name}: AdamW keeps 2 floats per trainable parameter"
        if "cost" in r:
            assert r["cost"].optimizer_bytes == r["optimizer_bytes"], f"{name}: finetune_cost must agree"
assert merge_equal, "merged logits must equal unmerged logits to 1e-5"
assert restored_error == 0.0, "unmerge must restore the base weights bit for bit"
assert base_fingerprint(lora_lm) == fingerprint_before, "the base fingerprint must survive merge + unmerge"
assert reloaded_error < 1e-6 and same_answers, "a reloaded adapter must give the trained model's outputs"
assert refused, "an adapter must refuse a base model it was not trained on"
for file_name, count in adapter_parameters.items():
    assert sizes[file_name] < 4 * count + 16_384, f"{file_name} must hold only the adapter"
    if not QUICK:   # the quick model is so small that a rank-4 adapter is a large part of it
        assert sizes[file_name] < 0.15 * sizes[weights_path.name], \
            f"{file_name} must be small next to the model"
assert switching[None]["base_equal"], "with no adapter active the model must be the base model"
assert switching["instruct"]["instruct_error"] < 1e-6, "the instruct adapter must reproduce its model"
assert switching["topics"]["agreement"] == 1.0, "the topics adapter must reproduce its classifier"
for name, r in instruct.items():
    assert r["response_loss"] < untuned["response_loss"], f"{name} should predict held-out answers better"
for results in (classify, instruct):
    lora_state = max(r["optimizer_bytes"] for name, r in results.items() if name.startswith("LoRA"))
    # the quick model is so small that its LoRA ranks are a large share of every matrix
    assert lora_state < (0.5 if QUICK else 0.2) * results["full fine-tune"]["optimizer_bytes"], \
        "LoRA saves optimizer memory"
if not QUICK:
    full = classify["full fine-tune"]
    lora_runs = [r for name, r in classify.items() if name.startswith("LoRA") and "MLP" not in name]
    assert all(r["trainable"] < 0.05 * full["trainable"] for r in lora_runs), "LoRA on attention is < 5%"
    assert max(r["accuracy"] for r in lora_runs) >= full["accuracy"] - 0.08, \
        "LoRA should come within 8 points of full fine-tuning on classification"
    for name, r in classify.items():
        assert r["accuracy"] > majority_accuracy + 0.3, f"{name} should beat the majority class clearly"
    assert instruct[SHOWN_ADAPTER]["exact_match"] > untuned["exact_match"], "LoRA should learn to answer"
    assert instruct["full fine-tune"]["exact_match"] > instruct["prompt tuning"]["exact_match"], \
        "prompt tuning should trail full fine-tuning on generation at this size"
    losses = [instruct[name]["response_loss"]
              for name in ("prompt tuning", SMALL_ATTENTION, LARGE_ATTENTION_MLP)]
    assert losses[0] > losses[1] > losses[2], \
        "on generation, more adapter parameters should fit the answers better"
print(f"lesson 12 checks passed ({time.perf_counter() - lesson_start:.0f} s)")


# %% [markdown]
# ## Exercises
# Each exercise is one file you edit; its checker runs your answer on tiny inputs in seconds and,
# when it is not right yet, says what kind of result it expected and gives a hint.
#
# 1. **Predict: the trainable parameters of one LoRA adapter.** Predict the trainable parameters of a
#    rank-8 LoRA adapter on a Linear from 128 to 384 features. Edit `exercises/12_1.py`, then run
#    `tinygrad-llm exercise check 12.1`.
# 2. **The LoRA forward pass.** The forward pass of a Linear with a LoRA adapter. Edit
#    `exercises/12_2.py`, then run `tinygrad-llm exercise check 12.2`.
#
# `python -m pytest -m exercises` checks every answer at once. Reference solutions are in
# `exercises/solutions/`: look there after you have tried.
