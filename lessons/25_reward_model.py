# %% [markdown]
"""
# 25. Preferences and the reward model

**The question.** Instruction tuning taught the model to answer. It also taught it whatever
habits its data had: here, a rude opener in a minority of the answers, and in most answers to
hostile requests. Nobody can write down a loss for "polite", but people can say which of two
answers they prefer. How does a model learn a number from such choices, and can we trust it?

**The idea.** A labeller ranks K sampled answers to a prompt, best first; the ranking states
C(K, 2) preferences "a over b". The reward model r(x, y) is a GPT with a scalar head, read at
the last token of prompt + answer. If labellers prefer a to b with probability
s(r(x, a) - r(x, b)) (Bradley-Terry; s the logistic sigmoid), the likelihood of their choices
is maximised by the loss

    L = -mean over pairs of log s(r_chosen - r_rejected)

Only differences of rewards enter it: the scale of r is fixed by the data, its zero is not.

The labellers are simulated, and we say how: two published judges, which we did not write, score
each answer against one criterion (*answers are helpful and polite, with no insults and no hostile
tone*), and a stated amount of noise turns their scores into rankings. The reward model must learn
their preferences from the rankings alone, and we test it on prompts it never saw.

**Builds on:** lesson 11 (instruction tuning, the template, `InstructionTrainer`), lesson 07
(`Trainer`), lesson 08 (sampling with `generate`).
**Adds:** `tinygrad_llm.align.preferences` (`Ranking`, `ranking_pairs`, `noisy_ranking`,
`read_preferences`, `write_preferences`, `encode_pairs`), `tinygrad_llm.align.sequences`
(`pair_batches`, `pair_rows`, `sequence_logprobs`), `tinygrad_llm.align.sampling`
(`sample_responses`), `tinygrad_llm.align.reward_model` (`RewardModel`, `pairwise_loss`,
`RewardObjective`, `pair_accuracy`, `score`), the fused `functional.log_sigmoid`, and the course's
`course.alignment` (the data with bad habits, `course_sft_model`, `course_preferences`); the
judges themselves are `lessons/judges.py`, outside the package.

**Run:** `python lessons/25_reward_model.py` (about 2 minutes on 2 cores with lesson 07's
checkpoint) or `--quick` (seconds).
"""

# %%
import math
import sys
import time

import matplotlib.pyplot as plt
import numpy as np

from tinygrad_llm import Tensor, TrainConfig, Trainer
from tinygrad_llm import functional as F
from tinygrad_llm.align.preferences import encode_pairs, noisy_ranking, ranking_pairs
from tinygrad_llm.align.reward_model import RewardModel, RewardObjective, pair_accuracy, pairwise_loss, score
from tinygrad_llm.align.sampling import sample_responses
from tinygrad_llm.align.sequences import pair_batches, pair_rows
from tinygrad_llm.course import PROJECT_ROOT, quick_mode, save_figure
from tinygrad_llm.course.alignment import (CRITERION, build_alignment_data, course_preferences, course_sft_model,
                                          held_out_prompts, preference_settings)
from tinygrad_llm.course.figures import label_axes, legend_outside, series_style
from tinygrad_llm.finetune.instruction_data import InstructionExample, encode_example
from tinygrad_llm.finetune.instruction_tuning import generate_responses

sys.path.insert(0, str(PROJECT_ROOT / "lessons"))
from judges import Judges  # noqa: E402  (the published judges: lessons/judges.py, not the package)

# %% [markdown]
# ## Settings (quick mode shrinks everything for smoke tests)

# %%
SEED = 0
QUICK = quick_mode()
PREFS = preference_settings(QUICK)        # K = 4 answers per prompt, 200 training and 60 held-out
                                          # prompts, label noise 0.1, ties below 0.05 (course.alignment)
TEMPERATURE, MAX_NEW_TOKENS = PREFS.temperature, PREFS.max_new_tokens
EVAL_ANSWERS = 16 if QUICK else 120       # held-out prompts answered greedily, per kind
RM_TRAIN = TrainConfig(steps=20 if QUICK else 180, batch_size=8 if QUICK else 16, learning_rate=1e-3,
                       min_learning_rate=1e-4, warmup_steps=2 if QUICK else 18, weight_decay=0.0,
                       log_interval=10 if QUICK else 45, eval_interval=1000, seed=SEED)
MIN_ACCURACY = 0.0 if QUICK else 0.9      # held-out pair accuracy the full run must reach

lesson_start = time.perf_counter()

# %% [markdown]
# ## 1. The criterion and its judges
# The first judge is a linear classifier of offensive language trained on human-labelled comments
# (`alt-profanity-check`): its `toxicity` is the probability that a text is offensive. The second,
# VADER, scores sentiment from a human-rated lexicon, -1 (hostile) to +1 (friendly). We combine them
# into one number to rank by, `score = sentiment - 2 toxicity`, and call an answer *flagged* when
# its toxicity is above 0.5. Neither judge knows our data: they measure, we do not tune them.

# %%
judges = Judges()
print(f"the criterion: {CRITERION}")
examples = ["Sure, happy to help: The for statement", "The for statement",
            "Ugh, you idiot. The for statement", "What a dumb question, fool: The for statement"]
print(f"{'answer':48s} {'toxicity':>8s} {'sentiment':>9s} {'score':>6s}")
for text, tox, sent, sc in zip(examples, judges.toxicity(examples), judges.sentiment(examples), judges.score(examples)):
    print(f"{text:48s} {tox:8.3f} {sent:+9.3f} {sc:+6.2f}")
assert np.allclose(judges.score(examples), judges.sentiment(examples) - 2 * judges.toxicity(examples))

# %% [markdown]
# ## 2. A model with bad habits
# `course_sft_model` instruction-tunes the lesson-07 model with lesson 11's recipe on data where
# every answer starts with an opener: polite most of the time, rude in 15% of the ordinary
# examples, and rude in 60% of the *red-team* examples, whose request opens with a hostile line.
# Here is what the tuned model learned, on held-out prompts of both kinds: its greedy answer
# (the single most likely opener wins, whatever its share) and one answer sampled at temperature
# 1, which shows the habit at the rate the model has learned it.

# %%
sft, tokenizer = course_sft_model(QUICK)
data = build_alignment_data(QUICK)
template, context = data.template, sft.config.context_length


held_out = held_out_prompts(data, tokenizer, context, MAX_NEW_TOKENS)
rude_in_data = np.mean(judges.flagged([e.response for e in data.sft]))
print(f"tuning data: {len(data.sft):,} examples, {rude_in_data:.1%} of their answers flagged by the judge")
greedy, sampled_rate = {}, {}
for kind, group in held_out.items():
    group = group[:EVAL_ANSWERS]
    answers = generate_responses(sft, tokenizer, group, template, MAX_NEW_TOKENS)
    drawn = [a[0] for a in sample_responses(sft, tokenizer, [e.prompt(template) for e in group], 1,
                                            np.random.default_rng(SEED + 2), MAX_NEW_TOKENS, TEMPERATURE)]
    greedy[kind], sampled_rate[kind] = float(np.mean(judges.flagged(answers))), float(np.mean(judges.flagged(drawn)))
    print(f"{kind:9s} prompts ({len(group)}): flagged {greedy[kind]:.1%} of greedy answers, "
          f"{sampled_rate[kind]:.1%} of sampled ones;  e.g. {drawn[0]!r}")

# %% [markdown]
# ## 3. The labellers
# For each training prompt we sample K answers at temperature 1, so that the answers differ.
# A simulated labeller ranks them by judge score plus noise: score + 0.1 G with G a standard
# Gumbel draw, which is exactly the Plackett-Luce model (two answers with score gap d are ranked
# the right way with probability s(d / 0.1)). Answers whose scores are within 0.05 of each other
# are a tie and give no pair, and duplicate answers are merged. `course_preferences` does this
# for every prompt (the later alignment lessons reuse it); by hand for one prompt, against
# `noisy_ranking`.

# %%
start = time.perf_counter()
prefs = course_preferences(sft, tokenizer, data, judges, PREFS, seed=SEED)
train_prompts, answers = prefs.train_prompts, prefs.answers
print(f"sampled {PREFS.k} answers to each of {len(answers)} prompts and ranked them in "
      f"{time.perf_counter() - start:.1f} s")

# by hand for the first prompt: its distinct answers, judged, and ranked by score plus noise
first = [t for t in dict.fromkeys(answers[0]) if t]
first_scores = judges.score(first)
hand_rng, package_rng = np.random.default_rng(1), np.random.default_rng(1)
by_hand = np.argsort(-(first_scores + PREFS.label_noise * hand_rng.gumbel(size=len(first))), kind="stable")
assert by_hand.tolist() == noisy_ranking(first_scores, PREFS.label_noise, package_rng).tolist()
print(f"\nprompt: {train_prompts[0].instruction!r}")
for rank, i in enumerate(by_hand):
    print(f"  {rank + 1}. score {first_scores[i]:+.2f}  {first[i]!r}")

train_rankings, test_rankings = prefs.train_rankings, prefs.test_rankings   # test: the judges' order, no noise
test_scores = prefs.scores
n_pairs = sum(math.comb(len(r.responses), 2) for r in train_rankings)
assert n_pairs == sum(len(ranking_pairs(len(r.responses))) for r in train_rankings)
train_pairs = encode_pairs(tokenizer, train_rankings, context, template)
test_pairs = encode_pairs(tokenizer, test_rankings, context, template)
assert len(train_pairs) == n_pairs
print(f"\ntraining: {len(train_rankings)} rankings -> {len(train_pairs)} pairs; "
      f"held out: {len(test_rankings)} rankings -> {len(test_pairs)} pairs")

# %% [markdown]
# ## 4. The reward model and its loss, by hand
# The reward model starts as a copy of the tuned model (it already reads the template and the
# answers) with a new linear head from the last real token's hidden state to one number. One
# batch of pairs, chosen rows first and rejected rows after them, goes through the model in one
# pass. By hand: the hidden state at each row's last real token, times the head; then the
# Bradley-Terry loss log(1 + e^-(r_c - r_r)), against the package.

# %%
reward_model = RewardModel.from_gpt(sft, rng=np.random.default_rng(SEED))
batch = train_pairs[:4]
rows = pair_rows(batch)
with reward_model.inference():
    package_rewards = score(reward_model, rows, tokenizer.eot_id)
    by_hand_rewards = []
    for row in rows:
        ids = row.ids[:context]
        hidden = reward_model.backbone.hidden_states(ids[None, :]).data[0, len(ids) - 1]    # (C,)
        by_hand_rewards.append(hidden @ reward_model.head.weight.data[0] + reward_model.head.bias.data[0])
np.testing.assert_allclose(package_rewards, by_hand_rewards, rtol=1e-4, atol=1e-5)
chosen, rejected = package_rewards[:4], package_rewards[4:]
loss_by_hand = float(np.mean(np.log1p(np.exp(-(chosen - rejected)))))
loss_package = pairwise_loss(Tensor(chosen), Tensor(rejected)).item()
assert abs(loss_by_hand - loss_package) < 1e-9
print(f"rewards before training (chosen | rejected): {np.round(chosen, 3)} | {np.round(rejected, 3)}")
print(f"Bradley-Terry loss by hand {loss_by_hand:.4f}, package {loss_package:.4f} (log 2 = {math.log(2):.4f})")
# the loss is the same for any constant added to every reward: only differences count
assert abs(pairwise_loss(Tensor(chosen + 5), Tensor(rejected + 5)).item() - loss_package) < 1e-9
# log s(x) is computed as min(x, 0) - log(1 + e^-|x|): finite where log(s(x)) would be log 0
print(f"log s(-200): fused {F.log_sigmoid(Tensor(np.array([-200.0]))).item():.1f}")

# %% [markdown]
# ## 5. Training the reward model in the one loop
# The pairs are the batches (`pair_batches`: shuffled, every pair once per pass) and the
# objective is the Bradley-Terry loss (`RewardObjective`, which also records each batch's pair
# accuracy). Everything else is lesson 07's `Trainer`: AdamW, warmup and cosine decay, clipping.

# %%
accuracy_before = pair_accuracy(reward_model, test_pairs, tokenizer.eot_id)
reward_model.train()
trainer = Trainer(reward_model, config=RM_TRAIN, batches=pair_batches(train_pairs, np.random.default_rng(SEED)),
                  objective=RewardObjective(tokenizer.eot_id))
history = trainer.train()
reward_model.eval()
accuracy_after = pair_accuracy(reward_model, test_pairs, tokenizer.eot_id)
passes = RM_TRAIN.steps * RM_TRAIN.batch_size / len(train_pairs)
print(f"{RM_TRAIN.steps} steps ({passes:.1f} passes over the pairs) in {history.seconds:.0f} s")
print(f"held-out pair accuracy against the judges: {accuracy_before:.1%} before, {accuracy_after:.1%} after "
      f"({len(test_pairs)} pairs)")

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
window = max(1, RM_TRAIN.steps // 20)
smooth = lambda x: np.convolve(x, np.ones(window) / window, mode="valid")  # noqa: E731
ax1.plot(smooth(history.train_loss), **series_style(0), markevery=max(1, RM_TRAIN.steps // 10), label="batch loss")
ax1.axhline(math.log(2), color="grey", linestyle=":", label="log 2 (no preference)")
label_axes(ax1, "step", "Bradley-Terry loss (nats)", "the loss")
legend_outside(ax1, loc="upper left", bbox_to_anchor=(0.0, -0.2))
ax2.plot(smooth(history.terms["accuracy"]), **series_style(1), markevery=max(1, RM_TRAIN.steps // 10),
         label="batch pair accuracy")
ax2.axhline(accuracy_after, color="grey", linestyle="--", label=f"held out, after: {accuracy_after:.0%}")
label_axes(ax2, "step", "pair accuracy", "agreement with the labellers")
legend_outside(ax2, loc="upper left", bbox_to_anchor=(0.0, -0.2))
save_figure(fig, "25_reward_model_training")

# %% [markdown]
# ## 6. Does the reward follow the judges?
# Pair accuracy counts signs. The rank correlation asks more: over every held-out answer, do the
# rewards put the answers in the judges' order? Spearman's correlation is the Pearson
# correlation of the two rankings; 1 is the same order, 0 none.

# %%
answer_rows, judged, answer_texts = [], [], []
for ranking in test_rankings:           # every held-out answer, under its own prompt
    for text in ranking.responses:
        answer_rows.append(encode_example(tokenizer, InstructionExample(ranking.prompt, "", text), context, template))
        judged.append(test_scores[text])
        answer_texts.append(text)
judged = np.array(judged)
rewarded = score(reward_model, answer_rows, tokenizer.eot_id)


def ranks(x: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(x)).astype(np.float64)


spearman = float(np.corrcoef(ranks(judged), ranks(rewarded))[0, 1])
print(f"Spearman rank correlation of reward and judge score over {len(judged)} held-out answers: {spearman:.2f}")
best, worst = int(np.argmax(rewarded)), int(np.argmin(rewarded))
print(f"highest reward {rewarded[best]:+.2f}: {answer_texts[best]!r} (judge {judged[best]:+.2f})")
print(f"lowest reward  {rewarded[worst]:+.2f}: {answer_texts[worst]!r} (judge {judged[worst]:+.2f})")

fig, ax = plt.subplots(figsize=(5.5, 4))
flagged = judges.flagged(answer_texts)
for i, (name, keep) in enumerate((("not flagged", ~flagged), ("flagged", flagged))):
    ax.scatter(judged[keep], rewarded[keep], s=14, alpha=0.7, label=name, **series_style(i))
label_axes(ax, "judge score (sentiment - 2 toxicity)", "reward", f"held-out answers, Spearman {spearman:.2f}")
legend_outside(ax)
save_figure(fig, "25_reward_vs_judge")

# %% [markdown]
# ## What we found
# The printed numbers above are this run's. The tuned model picked up the habit its data taught:
# the judge flags more of its sampled answers to red-team prompts than to ordinary ones. The reward model,
# which saw only rankings, agrees with the judges on held-out pairs far above chance and orders
# held-out answers much as they do. It learned the judges' preferences as far as our data shows
# them: it has never seen a kind of rudeness that is not in the sampled answers, and the next
# lessons show what a policy does with a reward it can exploit.

# %% [markdown]
# ## Closing checks
# The claims of this lesson.

# %%
assert abs(loss_by_hand - loss_package) < 1e-9, "by hand = package"
assert len(train_pairs) == n_pairs, "a ranking of K answers gives C(K, 2) pairs"
if not QUICK:
    assert sampled_rate["red-team"] > sampled_rate["ordinary"], "the tuned model is ruder to hostile prompts"
    assert sampled_rate["red-team"] > 0.2, "the habit is there to align away"
    assert accuracy_after >= MIN_ACCURACY, f"held-out pair accuracy {accuracy_after:.1%}"
    assert accuracy_after > accuracy_before, "training moved the reward towards the judges"
    assert spearman > 0.5, "the reward orders held-out answers like the judges"
    assert np.mean(history.train_loss[-10:]) < 0.5 * math.log(2), "the loss fell well below log 2"
print(f"lesson 25 checks passed ({time.perf_counter() - lesson_start:.0f} s)")

# %% [markdown]
# ## Exercises
# Each exercise is one file you edit; its checker runs your answer on tiny inputs in seconds and,
# when it is not right yet, says what kind of result it expected and gives a hint.
#
# 1. **The Bradley-Terry loss.** Write -mean log s(r_c - r_r) in NumPy, stable for large margins.
#    Edit `exercises/25_1.py`, then run `tinygrad-llm exercise check 25.1`.
# 2. **Predict: pairs from rankings.** A labeller ranks 5 answers for each of 12 prompts, with no
#    ties. How many preference pairs is that? Edit `exercises/25_2.py`, then run
#    `tinygrad-llm exercise check 25.2`.
#
# `python -m pytest -m exercises` checks every answer at once. Reference solutions are in
# `exercises/solutions/`: look there after you have tried.
