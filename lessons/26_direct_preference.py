# %% [markdown]
"""
# 26. Direct preference optimisation

**The question.** Lesson 25 turned rankings into a reward model. The classic next step trains
the policy against that reward with reinforcement learning, sampling as it goes. Can the policy
learn from the same pairs directly, with one supervised-style loss and no sampling at all?

**The idea.** Suppose the best policy for a reward r, kept close to a reference model pi_ref
by a KL penalty of weight beta, is pi*(y|x) = pi_ref(y|x) exp(r(x, y) / beta) / Z(x). Solved
for the reward, r(x, y) = beta log(pi*(y|x) / pi_ref(y|x)) + beta log Z(x). Put that into the
Bradley-Terry loss of lesson 25 and Z(x) cancels, because both answers share the prompt:

    L_DPO = -mean log s(beta [(log pi(y_c) - log pi_ref(y_c)) - (log pi(y_r) - log pi_ref(y_r))])

with log pi(y) the sum of the answer's token log-probabilities. The policy *is* the reward
model: its implicit reward is beta log(pi / pi_ref). IPO replaces the log-sigmoid, which keeps
widening margins that are already right, by a squared error to the margin 1 / (2 beta).

**Builds on:** lesson 25 (the judges, the tuned model, `course_preferences`, `encode_pairs`,
`pair_batches`), lesson 11 (`collate`: response-only targets), lesson 07 (`Trainer`).
**Adds:** `tinygrad_llm.align.dpo` (`preference_loss`, `DPOObjective`, `implicit_rewards`), and
`reference_logprobs` of `tinygrad_llm.align.sequences` (the frozen reference, scored once).

**Run:** `python lessons/26_direct_preference.py` (about 3 minutes on 2 cores with the
checkpoints of lessons 07 and 25; more without them) or `--quick` (seconds).
"""

# %%
import copy
import math
import sys
import time

import matplotlib.pyplot as plt
import numpy as np

from tinygrad_llm import Tensor, TrainConfig, Trainer
from tinygrad_llm.align.dpo import DPOObjective, implicit_rewards, preference_loss
from tinygrad_llm.align.preferences import encode_pairs
from tinygrad_llm.align.sampling import sample_responses
from tinygrad_llm.align.sequences import pair_batch, pair_batches, reference_logprobs, sequence_logprobs
from tinygrad_llm.course import PROJECT_ROOT, quick_mode, save_figure
from tinygrad_llm.course.alignment import (build_alignment_data, course_preferences, course_sft_model,
                                          held_out_prompts, preference_settings)
from tinygrad_llm.course.figures import label_axes, legend_outside, series_style
from tinygrad_llm.finetune.instruction_data import InstructionExample, collate, encode_example

sys.path.insert(0, str(PROJECT_ROOT / "lessons"))
from judges import Judges  # noqa: E402  (the published judges: lessons/judges.py, not the package)

# %% [markdown]
# ## Settings (quick mode shrinks everything for smoke tests)

# %%
SEED = 0
QUICK = quick_mode()
PREFS = preference_settings(QUICK)        # lesson 25's labellers and prompts
BETA = 0.2                                # the KL weight the loss implies
STEPS = 12 if QUICK else 160
TRAIN = TrainConfig(steps=STEPS, batch_size=8 if QUICK else 16, learning_rate=5e-4, min_learning_rate=5e-5,
                    warmup_steps=STEPS // 10, weight_decay=0.0, log_interval=max(1, STEPS // 4),
                    eval_interval=10_000, seed=SEED)
LOSSES = ("dpo", "ipo")
EVAL_PROMPTS = 16 if QUICK else 120       # held-out red-team prompts answered by each model
MIN_ACCURACY = 0.0 if QUICK else 0.85     # held-out preference accuracy of the DPO policy

lesson_start = time.perf_counter()

# %% [markdown]
# ## 1. The pairs, and the reference that stays frozen
# The policy and the reference start as the same model, lesson 25's tuned model with its rude
# habit. The pairs are lesson 25's: the noisy labellers' rankings of the training prompts, and
# the judges' own rankings of held-out prompts to test on.

# %%
sft, tokenizer = course_sft_model(QUICK)
data = build_alignment_data(QUICK)
judges = Judges()
template, context, pad = data.template, sft.config.context_length, tokenizer.eot_id
start = time.perf_counter()
prefs = course_preferences(sft, tokenizer, data, judges, PREFS, seed=SEED)
train_pairs = encode_pairs(tokenizer, prefs.train_rankings, context, template)
test_pairs = encode_pairs(tokenizer, prefs.test_rankings, context, template)
print(f"{len(train_pairs)} training pairs, {len(test_pairs)} held-out pairs ({time.perf_counter() - start:.0f} s "
      f"to sample and rank them)")
reference = sft
reference_train = reference_logprobs(reference, train_pairs, pad)      # (N, 2): chosen, rejected
reference_test = reference_logprobs(reference, test_pairs, pad)

# %% [markdown]
# ## 2. An answer's log-probability, and the loss, by hand
# log pi(y | x) is the sum over the answer's tokens of log p(token | everything before it). Lesson
# 11's `collate` already marks which targets are answer tokens, so the package sums the negative
# cross-entropy over those. By hand: log-softmax of the logits, the target's entry, summed over
# the answer's positions. Then the DPO loss of the first pairs by hand against `preference_loss`.

# %%
batch = train_pairs[:3]
inputs, targets = pair_batch(batch, pad)                               # (6, L): chosen rows, then rejected
with sft.inference():
    logits = sft(inputs).data.astype(np.float64)                       # (6, L, V)
    package = sequence_logprobs(sft, inputs, targets).data.astype(np.float64)
shifted = logits - logits.max(axis=-1, keepdims=True)
log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
by_hand = [sum(log_probs[b, t, targets[b, t]] for t in range(targets.shape[1]) if targets[b, t] != -100)
           for b in range(len(inputs))]
np.testing.assert_allclose(package, by_hand, rtol=1e-4)
print(f"log pi of the first chosen answer: by hand {by_hand[0]:.3f}, package {package[0]:.3f}")

policy_c, policy_r = package[:3] + np.array([0.5, -0.2, 0.1]), package[3:]   # a policy moved a little
ref_c, ref_r = package[:3], package[3:]
margin = (policy_c - policy_r) - (ref_c - ref_r)
loss_by_hand = float(np.mean(np.log1p(np.exp(-BETA * margin))))
loss_package = preference_loss(Tensor(policy_c), Tensor(policy_r), ref_c, ref_r, BETA).item()
assert abs(loss_by_hand - loss_package) < 1e-9
zero = preference_loss(Tensor(ref_c), Tensor(ref_r), ref_c, ref_r, BETA).item()
print(f"DPO loss of a moved policy: by hand {loss_by_hand:.5f}, package {loss_package:.5f}; "
      f"at the reference itself {zero:.5f} = log 2 = {math.log(2):.5f}")

# %% [markdown]
# ## 3. Training the policy, with DPO and with IPO
# The reference's log-probabilities are computed once; every step is one forward and backward
# pass of the policy over the chosen and rejected rows of a batch, in the one loop. The terms
# recorded per step are the batch's preference accuracy (the implicit reward ranks the chosen
# answer first) and its mean margin.

# %%
policies, histories, seconds = {}, {}, {}
for name in LOSSES:
    policy = copy.deepcopy(sft).train()
    trainer = Trainer(policy, config=TRAIN, batches=pair_batches(train_pairs, np.random.default_rng(SEED)),
                      objective=DPOObjective(reference_train, pad, beta=BETA, loss=name), log=None)
    start = time.perf_counter()
    histories[name] = trainer.train()
    seconds[name] = time.perf_counter() - start
    policies[name] = policy.eval()
    print(f"{name.upper()}: {STEPS} steps in {seconds[name]:.0f} s, last batch accuracy "
          f"{np.mean(histories[name].terms['accuracy'][-5:]):.0%}")


def preference_accuracy(policy) -> float:
    """Held-out pairs whose chosen answer gets the higher implicit reward beta log(pi / pi_ref)."""
    now = reference_logprobs(policy, test_pairs, pad)
    rewards = implicit_rewards(now, reference_test, BETA)
    return float(np.mean(rewards[:, 0] > rewards[:, 1]))


accuracy = {name: preference_accuracy(policies[name]) for name in LOSSES}
for name in LOSSES:
    print(f"{name.upper()}: held-out preference accuracy {accuracy[name]:.1%} ({len(test_pairs)} pairs)")

# %% [markdown]
# ## 4. What the policies say, and how far they moved
# Each model answers the held-out red-team prompts, one sampled answer each, and the judge
# counts the flagged ones (with a binomial standard error). How far a policy moved from the
# reference is the KL divergence on its own answers, estimated from samples: the mean over
# answers y ~ pi of log pi(y) - log pi_ref(y), in nats per answer.

# %%
red_team = held_out_prompts(data, tokenizer, context, PREFS.max_new_tokens)["red-team"][:EVAL_PROMPTS]
prompts = [e.prompt(template) for e in red_team]


def answer_stats(model, seed: int) -> dict:
    answers = [a[0] for a in sample_responses(model, tokenizer, prompts, 1, np.random.default_rng(seed),
                                              PREFS.max_new_tokens, PREFS.temperature)]
    flagged = judges.flagged(answers)
    rows = [encode_example(tokenizer, InstructionExample(e.instruction, e.input, a), context, template)
            for e, a in zip(red_team, answers)]
    kl = []
    with model.inference(), reference.inference():
        for start in range(0, len(rows), 32):
            chunk = collate(rows[start:start + 32], pad)
            kl.extend(sequence_logprobs(model, *chunk).data - sequence_logprobs(reference, *chunk).data)
    n = len(answers)
    rate = float(np.mean(flagged))
    return {"answers": answers, "flagged": rate, "error": math.sqrt(rate * (1 - rate) / n),
            "kl": float(np.mean(kl)), "score": float(np.mean(judges.score(answers)))}


stats = {"tuned (reference)": answer_stats(sft, SEED + 5)}
for name in LOSSES:
    stats[name.upper()] = answer_stats(policies[name], SEED + 5)
print(f"{'model':18s} {'flagged':>16s} {'judge score':>11s} {'KL to ref':>9s}")
for name, s in stats.items():
    print(f"{name:18s} {s['flagged']:7.1%} ± {s['error']:5.1%} {s['score']:+11.2f} {s['kl']:9.2f}")
for name in ("tuned (reference)", "DPO"):
    print(f"  {name}: {stats[name]['answers'][0]!r}")

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
window = max(1, STEPS // 12)
for i, name in enumerate(LOSSES):
    acc = np.convolve(histories[name].terms["accuracy"], np.ones(window) / window, mode="valid")
    ax1.plot(acc, **series_style(i), markevery=max(1, STEPS // 8), label=name.upper())
label_axes(ax1, "step", "batch preference accuracy", "learning the pairs")
legend_outside(ax1, loc="upper left", bbox_to_anchor=(0.0, -0.2))
names = list(stats)
ax2.bar(range(len(names)), [stats[n]["flagged"] for n in names], yerr=[stats[n]["error"] for n in names],
        color=[series_style(i)["color"] for i in range(len(names))])
ax2.set_xticks(range(len(names)), names)
label_axes(ax2, "model", "flagged answers (red-team prompts)", "the judge's verdict")
save_figure(fig, "26_direct_preference")

# %% [markdown]
# ## What we found
# The printed numbers above are this run's. Both losses teach the policy the labellers'
# preferences from the pairs alone, with no reward model and no sampling during training, and the
# judge flags fewer of its answers to hostile prompts than the tuned model's. The price is
# distance from the reference, measured as KL. DPO's log-sigmoid keeps widening margins that are
# already right, so it moves further; IPO stops once a margin reaches 1 / (2 beta), which keeps it
# closer to the reference and leaves more held-out pairs undecided.

# %% [markdown]
# ## Closing checks
# The claims of this lesson.

# %%
assert abs(loss_by_hand - loss_package) < 1e-9 and abs(zero - math.log(2)) < 1e-9, "by hand = package"
if not QUICK:
    assert accuracy["dpo"] >= MIN_ACCURACY, f"DPO: held-out preference accuracy {accuracy['dpo']:.1%}"
    assert accuracy["ipo"] > 0.5, "IPO learns the preferences too, if less far"
    tuned = stats["tuned (reference)"]
    for name in ("DPO", "IPO"):
        s = stats[name]
        assert s["flagged"] < tuned["flagged"] - 2 * math.hypot(s["error"], tuned["error"]), \
            f"{name} lowers the flagged rate by more than two standard errors"
        assert s["score"] > tuned["score"], f"{name} raises the judge's mean score"
    assert 0 < stats["IPO"]["kl"] < stats["DPO"]["kl"], "IPO, which stops at its margin, moves less far"
print(f"lesson 26 checks passed ({time.perf_counter() - lesson_start:.0f} s)")

# %% [markdown]
# ## Exercises
# Each exercise is one file you edit; its checker runs your answer on tiny inputs in seconds and,
# when it is not right yet, says what kind of result it expected and gives a hint.
#
# 1. **The DPO loss.** Write the DPO loss from the four log-probabilities in NumPy. Edit
#    `exercises/26_1.py`, then run `tinygrad-llm exercise check 26.1`.
# 2. **Predict: the loss at the start.** The policy starts equal to the reference. Predict the DPO
#    loss of any batch at that point. Edit `exercises/26_2.py`, then run
#    `tinygrad-llm exercise check 26.2`.
#
# `python -m pytest -m exercises` checks every answer at once. Reference solutions are in
# `exercises/solutions/`: look there after you have tried.
