# %% [markdown]
"""
# 11. Instruction fine-tuning, and what it makes the model forget

**The question.** The course GPT of lesson 07 continues text. Give it "Name the topic of this
passage" followed by a passage, and it carries on writing documentation; it has no idea that an
answer is wanted, or when to stop. Can a few hundred steps on (request, answer) pairs teach it to
answer, and what does that cost the language model it was, measured on the text it was
pretrained on?

**The idea.** Every example is laid out in one fixed template, the prompt, followed by the
response and `<|endoftext|>`:

    ### Instruction:
    Name the topic of this passage.

    ### Input:
    The "for" statement is used to iterate over the elements of a sequence ...

    ### Response:
    The "for" statement<|endoftext|>

The model is trained exactly as in pretraining, next-token cross-entropy, except that only the
response counts. With R the positions whose next token belongs to the response (the last prompt
position predicts the first response token; prompt and padding are ignored, target -100):

    L = -(1/|R|) sum_{t in R} log p(x_{t+1} | x_1 .. x_t)

The questions are made from the corpus, so every answer can be checked: the topic of a passage
(the topic's title), the title of its section, and the next four words. Answers are generated
greedily and scored by exact match and ROUGE-L (lesson 09). Forgetting is the rise of perplexity
on the pretraining validation text. Two remedies are compared with plain full fine-tuning:
*replay*, where a fraction w of every batch is pretraining text and the loss becomes
(1 - w) L_instruction + w L_pretraining, and *LoRA*, which freezes every weight W and trains
only a low-rank correction beside it, W + (alpha / r) B A (lesson 12 studies LoRA in depth).

**Builds on:** lessons 07 (the course model, `Trainer`'s recipe, `perplexity`), 08 (`generate`),
09 (`rouge_l`), 10 (fine-tuning a pretrained GPT).
**Adds:** `finetune.instruction_data`: the template (`PromptTemplate`), the dataset
(`InstructionExample`, `Passage`, `section_owners`, `corpus_passages`, `passage_examples`,
`build_instruction_data`, `InstructionData`, `validation_topics`), tokens and batches
(`encode_example`, `encode_examples`, `EncodedExample`, `PromptTooLongError`, `collate`,
`response_loss`); `finetune.instruction_tuning`: training (`InstructConfig`, `InstructionTrainer`, `InstructHistory`,
`replay_rows`) and answering (`stop_token_ids`, `generate_responses`, `evaluate_responses`,
`ResponseEvaluation`); `evaluate.answers`: scoring (`normalize_answer`, `exact_match`,
`score_responses`, `ResponseScores`);
it borrows `apply_lora` from `tinygrad_llm.finetune.lora` ahead of lesson 12.

**Run:** `python lessons/11_instruction_finetuning.py` (about 3 minutes on 2 cores with lesson 07's
checkpoint; without it the model is pretrained first, about 6 minutes more) or `--quick` (seconds).
"""

# %%
import time

import matplotlib.pyplot as plt
import numpy as np

from tinygrad_llm import GPT, perplexity, course_corpus
from tinygrad_llm.text.corpus import embedded_documents
from tinygrad_llm.course import quick_mode, save_figure
from tinygrad_llm.course.figures import label_axes, legend_outside, line_style
from tinygrad_llm.finetune.instruction_data import (INSTRUCTIONS, IGNORE_INDEX, PromptTemplate,
                                                    build_instruction_data, collate, encode_examples,
                                                    response_loss, validation_topics)
from tinygrad_llm.finetune.instruction_tuning import InstructConfig, InstructionTrainer, evaluate_responses
from tinygrad_llm.finetune.lora import apply_lora
from tinygrad_llm.course import course_model

# %% [markdown]
# ## Settings (quick mode shrinks everything for smoke tests)

# %%
SEED = 0
QUICK = quick_mode()
# The quick model reads only 32 tokens: it gets a few-token layout, short instructions and passages.
TEMPLATE = PromptTemplate.compact() if QUICK else PromptTemplate()
TASK_INSTRUCTIONS = {"topic": "Topic?", "section": "Section?", "continue": "Next?"} if QUICK else INSTRUCTIONS
PASSAGE_WORDS = 3 if QUICK else 24       # words of input text per example
ANSWER_WORDS = 2 if QUICK else 4         # words a "continue" answer has
HELD_OUT_FRACTION = 0.15                 # of the training topics' passages, never trained on
EVAL_EXAMPLES = 12 if QUICK else 90      # held-out examples answered, per group (seen / unseen topics)
MAX_NEW_TOKENS = 12 if QUICK else 24     # an answer longer than this is cut
VAL_TOKENS = 2048 if QUICK else None     # pretraining validation tokens scored (None: all)
STEPS = 30 if QUICK else 200
BATCH_SIZE = 8 if QUICK else 16
EVAL_INTERVAL = 10 if QUICK else 25      # validation perplexity every this many steps
REPLAY_FRACTION = 0.25                   # of every batch, for the replay run
LORA_RANK, LORA_ALPHA = 8, 16.0
# LoRA's updates start at zero and have few parameters: it takes a larger learning rate.
RUNS = {  # name: (LoRA?, replay fraction, peak learning rate)
    "full fine-tune": (False, 0.0, 1e-3),
    "full + replay": (False, REPLAY_FRACTION, 1e-3),
    "LoRA": (True, 0.0, 3e-3),
}

rng = np.random.default_rng(SEED)

# %% [markdown]
# ## 1. The pretrained model and the text it must not forget
# `course_model` loads lesson 07's checkpoint (or pretrains one). Its validation tokens, the last
# 10% of the corpus, measure forgetting. The topics those tokens come from are held out of
# instruction tuning altogether: tuning on their passages would teach the model the very text
# its validation perplexity is measured on. They become the held-out "unseen topics".

# %%
base, tokenizer = course_model(QUICK)
corpus = course_corpus(QUICK)
val_tokens = corpus.val if VAL_TOKENS is None else corpus.val[:VAL_TOKENS]
context = base.config.context_length
documents = embedded_documents()
unseen_topics = validation_topics(documents, tokenizer, len(corpus.train))
base_ppl = perplexity(base, val_tokens)
print(f"course model: {base.num_parameters():,} parameters, context {context} tokens")
print(f"pretraining validation: {len(val_tokens):,} tokens, perplexity {base_ppl:.1f}")
print(f"topics held out of instruction tuning ({len(unseen_topics)}): {', '.join(unseen_topics)}")

# %% [markdown]
# ## 2. The instruction dataset
# Every section of the corpus (each distinct section once) is cut into chunks of passage words
# plus answer words. One chunk gives up to three examples, all on the same side of the split:
# train and held-out never share a passage.

# %%
data = build_instruction_data(documents, PASSAGE_WORDS, ANSWER_WORDS, held_out_topics=unseen_topics,
                              held_out_fraction=HELD_OUT_FRACTION, instructions=TASK_INSTRUCTIONS, seed=SEED)
for group, counts in data.summary().items():
    print(f"  {group:24s} " + "  ".join(f"{task} {n:5,}" for task, n in counts.items()))
assert not {e.passage for e in data.train} & {e.passage for e in data.held_out}

example = data.train[0]
print("\none training example, as the model reads it:")
print(example.prompt(TEMPLATE) + example.response + "<|endoftext|>")

# %% [markdown]
# ## 3. Batches: padding, shifted targets and the masked loss
# Prompt + response + `<|endoftext|>` become one row of ids; rows are right-padded with
# `<|endoftext|>` (causal attention never lets a real token see the padding after it). The
# targets are the ids shifted by one, with -100 wherever the next token is not part of the
# response. Prompts are never cut: a prompt longer than the context raises an error, and we drop
# those few examples; a response that does not fit loses its end.

# %%
train_rows = encode_examples(tokenizer, data.train, context, TEMPLATE, skip_too_long=True)
print(f"{len(train_rows):,} of {len(data.train):,} training examples fit in {context} tokens "
      f"(mean length {np.mean([len(r.ids) for r in train_rows]):.0f} ids)")

inputs, targets = collate(train_rows[:2], tokenizer.eot_id)
row = train_rows[0]
print(f"\nrow 0: {row.prompt_length} prompt tokens, {len(row.response_ids)} response tokens "
      f"(the last is <|endoftext|>); batch shape {inputs.shape}")
print("  position | input token          | target token         | counts")
for t in range(row.prompt_length - 3, inputs.shape[1]):
    target = "-100" if targets[0, t] == IGNORE_INDEX else repr(tokenizer.decode([int(targets[0, t])]))
    print(f"  {t:8d} | {tokenizer.decode([int(inputs[0, t])])!r:20s} | {target:20s} | "
          f"{targets[0, t] != IGNORE_INDEX}")
counted = int((targets[0] != IGNORE_INDEX).sum())
print(f"positions that count in row 0: {counted} = its response tokens")
assert counted == len(row.response_ids)

# %% [markdown]
# ## 4. The held-out questions, and the untuned model
# A fixed sample of held-out examples, half from topics seen in training (other passages) and
# half from topics never seen. Answers are greedy and end at `<|endoftext|>` or at the first line
# break; exact match compares answers after case-folding, collapsing whitespace and dropping one
# final period. The untuned model has never seen the template.

# %%
seen = [e for e in data.held_out if data.seen_topic(e)]
unseen = [e for e in data.held_out if not data.seen_topic(e)]
eval_examples = [group[i] for group in (seen, unseen)
                 for i in sorted(rng.choice(len(group), min(EVAL_EXAMPLES, len(group)), replace=False))]
eval_rows = encode_examples(tokenizer, eval_examples, context, TEMPLATE, skip_too_long=True)
eval_examples = [r.example for r in eval_rows]
print(f"{len(eval_examples)} held-out examples: "
      f"{sum(data.seen_topic(e) for e in eval_examples)} from seen topics, "
      f"{sum(not data.seen_topic(e) for e in eval_examples)} from unseen topics")


def measure(model) -> dict:
    evaluation = evaluate_responses(model, tokenizer, eval_examples, TEMPLATE, MAX_NEW_TOKENS)
    scores = evaluation.scores()
    return {"evaluation": evaluation, "exact_match": scores.exact_match, "rouge_l": scores.rouge_l,
            "response_loss": response_loss(model, eval_rows, tokenizer.eot_id)}


start = time.perf_counter()
untuned = measure(base)
print(f"untuned: exact match {untuned['exact_match']:.1%}, ROUGE-L {untuned['rouge_l']:.3f}, "
      f"held-out response loss {untuned['response_loss']:.2f} ({time.perf_counter() - start:.0f} s)")
for e, answer in list(zip(eval_examples, untuned["evaluation"].predictions))[:2]:
    print(f"  asked {e.task!r}, reference {e.response!r}, untuned answer {answer!r}")

# %% [markdown]
# ## 5. Three ways to tune
# Each run starts from a fresh copy of the pretrained weights and takes the same number of steps
# of the same batch size:
#
# * **full fine-tune**: every weight trains on instruction batches only;
# * **full + replay**: a quarter of every batch is random windows of the pretraining training
#   text, loss (1 - w) L_instruction + w L_pretraining with w = 1/4;
# * **LoRA**: the weights are frozen; rank-8 adapters on the attention projections train alone.
#
# The perplexity on the pretraining validation text is measured every few steps.

# %%


def pretrained_copy() -> GPT:
    model = GPT(base.config, rng=np.random.default_rng(SEED))
    model.load_state_dict(base.state_dict())
    return model


results = {}
for name, (lora, replay_fraction, learning_rate) in RUNS.items():
    print(f"\n--- {name} ---")
    model = pretrained_copy()
    if lora:
        adapted = apply_lora(model, r=LORA_RANK, alpha=LORA_ALPHA, rng=np.random.default_rng(SEED))
        print(f"LoRA on {len(adapted)} layers: {', '.join(adapted[:2])}, ...")
    config = InstructConfig(steps=STEPS, batch_size=BATCH_SIZE, learning_rate=learning_rate,
                            min_learning_rate=learning_rate / 10, warmup_steps=STEPS // 15,
                            replay_fraction=replay_fraction, eval_interval=EVAL_INTERVAL,
                            log_interval=EVAL_INTERVAL * 2, seed=SEED)
    trainer = InstructionTrainer(model, train_rows, config, pad_id=tokenizer.eot_id,
                                 replay_tokens=corpus.train, val_tokens=val_tokens)
    history = trainer.train()
    results[name] = {**measure(model), "history": history, "seconds": history.seconds,
                     "trainable": model.num_parameters(trainable_only=True),
                     "ppl_after": history.val_perplexity[-1]}

# %% [markdown]
# ## 6. The comparison
# Exact match and ROUGE-L on the held-out questions, the held-out response loss, perplexity on
# the pretraining validation text before and after, what each run trained, and the seconds of
# training (evaluations excluded).
#
# What to look for (the closing checks assert the first three points in a full run). Every run
# learns the format: the response loss on held-out questions drops below the untuned model's.
# Plain full fine-tuning pays for it with a rise in perplexity on the pretraining text: a small
# model that sees nothing but titles and four-word answers for a few hundred steps drifts away
# from the prose it was trained on. Replay and LoRA both forget less than plain full
# fine-tuning: replay because a quarter of every batch is pretraining text, LoRA because a
# rank-8 change of the attention cannot move far from the pretrained weights. What they give up
# in return, fewer exact answers in the same number of steps or not, is for the table below to
# say; it differs from run to run. Topics never seen in training can only be answered by copying
# from the passage, not by recall: compare the seen and unseen columns. Four exact words of
# continuation are rare for a model this small, which is what ROUGE-L's partial credit is for.

# %%
print(f"{'run':15s} | {'trainable':>9s} | {'exact':>6s} | {'ROUGE-L':>7s} | {'resp. loss':>10s} | "
      f"{'val ppl before -> after':>23s} | {'seconds':>7s}")
print(f"{'untuned':15s} | {0:9,d} | {untuned['exact_match']:6.1%} | {untuned['rouge_l']:7.3f} | "
      f"{untuned['response_loss']:10.2f} | {base_ppl:10.1f} -> {base_ppl:8.1f} | {0:7.0f}")
for name, r in results.items():
    print(f"{name:15s} | {r['trainable']:9,d} | {r['exact_match']:6.1%} | {r['rouge_l']:7.3f} | "
          f"{r['response_loss']:10.2f} | {base_ppl:10.1f} -> {r['ppl_after']:8.1f} | {r['seconds']:7.0f}")

print("\nexact match by task and by topic group:")
groups = {f"{task}": (lambda e, task=task: e.task == task) for task in ("topic", "section", "continue")}
groups["seen topics"] = data.seen_topic
groups["unseen topics"] = lambda e: not data.seen_topic(e)
print(f"{'':15s} | " + " | ".join(f"{g:>13s}" for g in groups))
for name, r in {"untuned": untuned, **results}.items():
    print(f"{name:15s} | " + " | ".join(f"{r['evaluation'].scores(keep).exact_match:13.1%}"
                                        for keep in groups.values()))

# %% [markdown]
# ## 7. Forgetting over the steps, and the scores side by side

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
for k, (name, r) in enumerate(results.items()):
    left.plot(r["history"].eval_steps, r["history"].val_perplexity, **line_style(k), label=name)
left.axhline(base_ppl, color="gray", linestyle="--", label="pretrained")
label_axes(left, "instruction-tuning step", "perplexity on pretraining validation text",
           "Forgetting during instruction tuning")
legend_outside(left, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2, fontsize=8)
names = ["untuned", *results]
scores = [untuned, *results.values()]
x = np.arange(len(names))
right.bar(x - 0.2, [s["exact_match"] for s in scores], width=0.4, color=line_style(3)["color"], label="exact match")
right.bar(x + 0.2, [s["rouge_l"] for s in scores], width=0.4, color=line_style(4)["color"], label="ROUGE-L F1")
right.set_xticks(x, names)
right.set_ylim(0, 1.3 * max(max(s["rouge_l"] for s in scores), 0.05))
label_axes(right, "model", "score on held-out instructions (0 to 1)", "Held-out answers")
legend_outside(right, fontsize=8)
save_figure(fig, "11_instruction_finetuning")

# %% [markdown]
# ## 8. Some answers
# One held-out question of each task, from a seen topic and from an unseen one.

# %%
shown = []
for task in ("topic", "section", "continue"):
    for seen_topic in (True, False):
        k = next((k for k, e in enumerate(eval_examples)
                  if e.task == task and data.seen_topic(e) == seen_topic), None)
        if k is not None:
            shown.append(k)
for k in shown:
    e = eval_examples[k]
    print(f"[{e.task}, {'seen' if data.seen_topic(e) else 'unseen'} topic {e.topic!r}] "
          f"{e.input[:70]}...")
    print(f"  reference:      {e.response!r}")
    for name, r in {"untuned": untuned, **results}.items():
        print(f"  {name + ':':15s} {r['evaluation'].predictions[k]!r}")

# %% [markdown]
# ## Closing checks
# The claims of this lesson.

# %%
full, replay, lora = results["full fine-tune"], results["full + replay"], results["LoRA"]
forgetting = {name: r["ppl_after"] - base_ppl for name, r in results.items()}
print("rise in validation perplexity: " + ", ".join(f"{n} {v:+.1f}" for n, v in forgetting.items()))
for name, r in results.items():
    assert r["response_loss"] < untuned["response_loss"], f"{name} should predict held-out answers better"
assert lora["trainable"] < full["trainable"] / 10, "LoRA trains a small fraction of the weights"
if not QUICK:
    for name, r in results.items():
        assert r["rouge_l"] > untuned["rouge_l"], f"{name} should answer closer to the references"
    for name in ("full fine-tune", "full + replay"):
        assert results[name]["exact_match"] > untuned["exact_match"], f"{name} should answer more exactly"
    assert forgetting["full fine-tune"] > 0, "plain full fine-tuning should forget some pretraining text"
    assert forgetting["full + replay"] < forgetting["full fine-tune"], "replay should forget less"
    assert forgetting["LoRA"] < forgetting["full fine-tune"], "LoRA should forget less"
print("lesson 11 checks passed")


# %% [markdown]
# ## Exercises
# Each exercise is one file you edit; its checker runs your answer on tiny inputs in seconds and,
# when it is not right yet, says what kind of result it expected and gives a hint.
#
# 1. **Mask the prompt out of the loss.** Keep only the response in the loss: targets that predict a
#    prompt token are ignored. Edit `exercises/11_1.py`, then run `tinygrad-llm exercise check 11.1`.
# 2. **Predict: how many tokens does the loss average over?** Predict how many targets the loss
#    averages over for one example: a 12-token prompt followed by a 7-token response (its end-of-text
#    token included), with the prompt masked out. Edit `exercises/11_2.py`, then run `tinygrad-llm
#    exercise check 11.2`.
#
# `python -m pytest -m exercises` checks every answer at once. Reference solutions are in
# `exercises/solutions/`: look there after you have tried.
