# %% [markdown]
"""
# 18. A scaling law measured on our own engine

**The question.** Lesson 17 took Chinchilla's law on trust: L(N, D) = E + A/N^α + B/D^β, fitted
by others to runs we could never afford. Does our own engine obey a law of that shape, at the
sizes a laptop trains in a couple of minutes? And is the law worth anything: fitted on small
models, does it predict a larger one we held back?

**The idea.** Train a grid of models (several widths × several token budgets, each run with its
own full learning-rate schedule) and record each held-out loss. Take the floor E off and a power law
is a straight line in log space,

    log(L - E) = log A - α log N,

so for each candidate E the fit is linear least squares, and E is the candidate that predicts
log L best. Resampling the runs and refitting (the *bootstrap*) says how sure each constant is.
With D as a second variable the same idea fits Chinchilla's surface, whose minimum along
6 N D = C is our own compute-optimal frontier.

**Builds on:** lesson 02 (bytes as tokens), lesson 07 (the `Trainer`, `estimate_loss`), lesson 17
(`LossLaw`, `fit_loss_law`, C = 6 N D).
**Adds:** `tinygrad_llm.scale.laws`: `PowerLaw`, `fit_power_law`, `fit_loss_surface`,
`bootstrap`, `interval`, `pareto_frontier`.

**Run:** `python lessons/18_scaling_laws.py` (about 1.5 minutes on 2 cores from an empty cache, about
20 seconds when the sweep is cached under `outputs/scaling/`) or `--quick` (a few seconds).
"""

# %%
import json
import time

import matplotlib.pyplot as plt
import numpy as np

from tinygrad_llm import GPT, GPTConfig, course_corpus
from tinygrad_llm.course import output_dir, quick_mode, save_figure
from tinygrad_llm.course.figures import label_axes, legend_outside, series_style
from tinygrad_llm.scale.compute import LossLaw, training_flops
from tinygrad_llm.scale.laws import (bootstrap, fit_loss_surface, fit_power_law, interval,
                                     pareto_frontier)
from tinygrad_llm.scale.memory import parameter_counts
from tinygrad_llm.train.trainer import TrainConfig, Trainer, estimate_loss

# %% [markdown]
# ## Settings (quick mode shrinks everything for smoke tests)

# %%
SEED = 0
QUICK = quick_mode()
WIDTHS = (4, 6, 8, 16) if QUICK else (4, 8, 12, 16, 24, 32)   # d_model of the fitted models
HELD_OUT = 24 if QUICK else 48                            # the larger width the fits must predict
N_LAYER, N_HEAD = 2, 2
CONTEXT, BATCH_SIZE = (32, 8) if QUICK else (64, 16)
TOKEN_BUDGETS = (2_048, 4_096) if QUICK else (131_072, 262_144, 524_288)   # D: tokens each run trains on
PEAK_LR, LR_WIDTH = 1e-2, 16        # learning rate 1e-2 x min(1, 16 / width): wider models want smaller steps
EVAL_BATCHES = 4 if QUICK else 16   # held-out loss on the same EVAL_BATCHES x BATCH_SIZE windows for every run
TRAIN_BYTES = 60_000 if QUICK else None     # None: the whole training split
BOOTSTRAP_LAW, BOOTSTRAP_SURFACE = (20, 10) if QUICK else (200, 60)
LEVEL = 0.9                         # bootstrap intervals: the central 90 %
# what the closing checks demand of the predictions (quick runs are too short to obey a law)
PREDICTION_TOLERANCE = 0.5 if QUICK else 0.05
SIZE_SLACK = 0.1 if QUICK else 0.02   # how much a wider model may trail the next narrower one (noise)

rng = np.random.default_rng(SEED)
lesson_start = time.perf_counter()

# %% [markdown]
# ## 1. The data: the course corpus as bytes
# The same text and the same train/validation split as lesson 07, but read byte by byte
# (lesson 02's starting point): a vocabulary of 256 keeps the embedding tables from dominating
# models this small, so that most of what grows with width is the transformer blocks. Following
# Kaplan et al. (2020), N counts the parameters outside the embedding tables, and C = 6 N D.

# %%
corpus = course_corpus(QUICK)


def as_bytes(tokens: np.ndarray) -> np.ndarray:
    return np.frombuffer(corpus.tokenizer.decode(tokens.tolist()).encode("utf-8"), dtype=np.uint8).astype(np.int64)


train_bytes, val_bytes = as_bytes(corpus.train), as_bytes(corpus.val)
if TRAIN_BYTES is not None:
    train_bytes = train_bytes[:TRAIN_BYTES]
print(f"training bytes {len(train_bytes):,}, validation bytes {len(val_bytes):,}; the longest run reads "
      f"{max(TOKEN_BUDGETS) / len(train_bytes):.2f} of an epoch")


def config_for(width: int) -> GPTConfig:
    return GPTConfig(vocab_size=256, context_length=CONTEXT, d_model=width, n_layer=N_LAYER, n_head=N_HEAD)


def non_embedding_parameters(width: int) -> int:
    counts = parameter_counts(config_for(width))
    return counts["total"] - counts["token embedding"] - counts["position embedding"]


for width in WIDTHS + (HELD_OUT,):
    total = parameter_counts(config_for(width))["total"]
    print(f"width {width:3d}: N = {non_embedding_parameters(width):7,} non-embedding parameters "
          f"({total:,} in all), learning rate {PEAK_LR * min(1, LR_WIDTH / width):.2g}")

# %% [markdown]
# ## 2. The sweep, cached
# Every (width, D) pair is its own run of the lesson-07 `Trainer`: D / (batch × context) steps,
# warm-up over the first tenth, cosine decay to a tenth of the peak at the run's own end (a run
# cut short from a longer schedule would look worse than it is: Chinchilla's correction to
# Kaplan). The held-out loss is `estimate_loss` on the same validation windows for all runs.
# Results go to `outputs/scaling/sweep.json`, keyed by everything that decides them, so a rerun
# trains only what is missing.

# %%
cache_path = output_dir("scaling") / "sweep.json"
cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}


def run_key(width: int, tokens: int) -> str:
    return (f"w{width}-L{N_LAYER}-h{N_HEAD}-T{CONTEXT}-B{BATCH_SIZE}-D{tokens}-lr{PEAK_LR}/{LR_WIDTH}"
            f"-e{EVAL_BATCHES}-s{SEED}-bytes{len(train_bytes)}/{len(val_bytes)}")


def train_run(width: int, tokens: int) -> dict:
    steps = tokens // (BATCH_SIZE * CONTEXT)
    lr = PEAK_LR * min(1.0, LR_WIDTH / width)
    config = TrainConfig(steps=steps, batch_size=BATCH_SIZE, learning_rate=lr, min_learning_rate=lr / 10,
                         warmup_steps=max(1, steps // 10), eval_interval=steps, eval_batches=EVAL_BATCHES,
                         log_interval=10 ** 9, seed=SEED)
    model = GPT(config_for(width), rng=np.random.default_rng(SEED))
    history = Trainer(model, train_bytes, val_bytes, config, log=None).train()
    return {"width": width, "n": non_embedding_parameters(width), "tokens": steps * BATCH_SIZE * CONTEXT,
            "steps": steps, "val_loss": history.val_loss[-1], "train_loss": history.train_loss[-1],
            "seconds": history.seconds}


sweep_start, trained = time.perf_counter(), 0
runs = []
for width in WIDTHS + (HELD_OUT,):
    for tokens in TOKEN_BUDGETS:
        key = run_key(width, tokens)
        if key not in cache:
            cache[key] = train_run(width, tokens)
            cache_path.write_text(json.dumps(cache, indent=1))   # after every run: an interrupted sweep keeps its work
            trained += 1
        runs.append(cache[key])
sweep_seconds = time.perf_counter() - sweep_start
print(f"{trained} runs trained now, {len(runs) - trained} read from {cache_path.name} ({sweep_seconds:.0f} s)")

N = np.array([r["n"] for r in runs], dtype=float)
D = np.array([r["tokens"] for r in runs], dtype=float)
L = np.array([r["val_loss"] for r in runs])
C = 6 * N * D
fitted = np.array([r["width"] != HELD_OUT for r in runs])
uniform = np.log(256)
print(f"\n{'width':>5} " + " ".join(f"{'D = ' + format(t, ','):>13}" for t in TOKEN_BUDGETS) +
      "   (held-out loss, nats per byte; a uniform guess: ln 256 = " + f"{uniform:.2f})")
for width in WIDTHS + (HELD_OUT,):
    row = [r["val_loss"] for r in runs if r["width"] == width]
    print(f"{width:>5} " + " ".join(f"{v:>13.3f}" for v in row) + ("   <- held out" if width == HELD_OUT else ""))
total_train_seconds = sum(r["seconds"] for r in runs)
print(f"the sweep's training steps took {total_train_seconds:.0f} s in all")

# %% [markdown]
# ## 3. L(N) by hand, in log space, then the package
# At the largest budget, loss against model size. For a floor E below every loss, take logs of
# L - E and fit a straight line with `np.polyfit`; score the line by how well E + A N^-α predicts
# log L; keep the best E on a grid. The package's `fit_power_law` does the same and then refines
# E on a finer grid around the best; at its E, the line by hand must be its line exactly. Only
# the fitted widths are used: the held-out width is predicted.

# %%
largest = D == max(D)
n_fit, l_fit = N[largest & fitted], L[largest & fitted]
n_out, l_out = float(N[largest & ~fitted][0]), float(L[largest & ~fitted][0])


def line_by_hand(E: float) -> tuple[float, float, float]:
    slope, intercept = np.polyfit(np.log(n_fit), np.log(l_fit - E), 1)   # log(L - E) = log A - alpha log N
    predicted = E + np.exp(intercept) * n_fit ** slope
    return float(np.exp(intercept)), float(-slope), float(np.sum((np.log(l_fit) - np.log(predicted)) ** 2))


floors = np.linspace(0, l_fit.min(), 201)[:-1]
E_hand = float(min(floors, key=lambda e: line_by_hand(e)[2]))
A_hand, alpha_hand, _ = line_by_hand(E_hand)
law_n = fit_power_law(n_fit, l_fit)
A_at, alpha_at, _ = line_by_hand(law_n.E)
print(f"by hand (grid of {len(floors)} floors): E {E_hand:.3f}, A {A_hand:.3g}, alpha {alpha_hand:.3f}")
print(f"fit_power_law (refined):          E {law_n.E:.3f}, A {law_n.A:.3g}, alpha {law_n.alpha:.3f}; "
      f"rms error in log L {law_n.rmse_log:.4f}")
predicted_out = float(law_n(n_out))
error_n = abs(predicted_out - l_out) / l_out
print(f"held-out width {HELD_OUT} (N = {n_out:,.0f}): predicted {predicted_out:.3f}, measured {l_out:.3f}, "
      f"error {error_n:.1%}")
pure = fit_power_law(n_fit, l_fit, irreducible=False)
error_pure = abs(float(pure(n_out)) - l_out) / l_out
print(f"without a floor (E = 0, Kaplan's form): alpha {pure.alpha:.3f}, held-out error {error_pure:.1%}")

# %% [markdown]
# ## 4. How sure is a fitted exponent? The bootstrap
# A handful of points fix three constants loosely. Draw as many runs as there are, with
# replacement, refit, and repeat: the spread of the refits is the uncertainty the data allow (a percentile interval; a
# resample with fewer than two distinct sizes cannot be fitted and is drawn again).

# %%
law_fits = bootstrap(fit_power_law, (n_fit, l_fit), samples=BOOTSTRAP_LAW, rng=rng)
alpha_low, alpha_high = interval([f.alpha for f in law_fits], LEVEL)
E_low, E_high = interval([f.E for f in law_fits], LEVEL)
out_low, out_high = interval([float(f(n_out)) for f in law_fits], LEVEL)
print(f"{LEVEL:.0%} intervals from {len(law_fits)} refits: alpha [{alpha_low:.3f}, {alpha_high:.3f}], "
      f"E [{E_low:.3f}, {E_high:.3f}], held-out loss [{out_low:.3f}, {out_high:.3f}] (measured {l_out:.3f})")

# %% [markdown]
# ## 5. L(N, D): Chinchilla's surface, fitted to our runs
# All runs of the fitted widths, three budgets each: `fit_loss_surface` searches the two
# exponents on a grid and solves E, A and B by linear least squares for each pair (lesson 17's
# `fit_loss_law`), with standard errors from the curvature of the fit and intervals from a
# bootstrap over runs. Then it predicts the held-out width at each budget.

# %%
surface = fit_loss_surface(N[fitted], D[fitted], L[fitted])
ours = surface.law
print("fitted: " + ", ".join(f"{k} {getattr(ours, k):.3g} ± {surface.stderr[k]:.2g}"
                             for k in ("E", "A", "B", "alpha", "beta")) + f"; rms error {surface.rmse:.4f}")
surface_fits = bootstrap(lambda n, d, y: fit_loss_surface(n, d, y, exponent_grid=30),
                         (N[fitted], D[fitted], L[fitted]), samples=BOOTSTRAP_SURFACE, rng=rng)
surface_intervals = {k: interval([getattr(f.law, k) for f in surface_fits], LEVEL) for k in ("alpha", "beta")}
for k, (low, high) in surface_intervals.items():
    print(f"  {k}: {LEVEL:.0%} bootstrap interval [{low:.3f}, {high:.3f}], width {high - low:.3f}; "
          f"from the standard error (±1.645 s.e.) {2 * 1.645 * surface.stderr[k]:.3f}")
held = ~fitted
predicted_surface = ours.loss(N[held], D[held])
errors_surface = np.abs(predicted_surface - L[held]) / L[held]
for d, p, m, e in zip(D[held], predicted_surface, L[held], errors_surface):
    print(f"held-out width {HELD_OUT}, D = {d:,.0f}: predicted {p:.3f}, measured {m:.3f}, error {e:.1%}")
print(f"mean error {errors_surface.mean():.1%}")
smallest_d = D == min(D)
gain_small = float(L[smallest_d & (N == N.min())][0] - L[smallest_d & fitted].min())
gain_large = float(L[largest & (N == N.min())][0] - L[largest & fitted].min())
print(f"what size buys (smallest width minus the best fitted one): {gain_small:.3f} nats at "
      f"D = {min(D):,.0f}, {gain_large:.3f} at D = {max(D):,.0f}")

# %% [markdown]
# Chinchilla's form adds a term in N to a term in D, so it grants every budget the same gain from
# size. Our runs do not quite obey that: at the smallest budget, a few hundred steps, size buys
# more than at the largest (printed above), since a wider model also learns faster per step. The
# surface averages over the budgets and errs most at the smallest one.

# %% [markdown]
# ## 6. Loss against compute: the frontier
# Every run is a point (C = 6 N D, held-out loss). The measured frontier keeps the runs that no
# cheaper run beats (`pareto_frontier`). The fitted surface gives iso-FLOP curves, the loss of
# every split of a budget between N and D, and their minima: our compute-optimal frontier,
# N_opt ∝ C^(β/(α+β)), printed beside Chinchilla's.

# %%
frontier = pareto_frontier(C, L)
frontier_exponent = ours.beta / (ours.alpha + ours.beta)
chinchilla = LossLaw()
chinchilla_exponent = chinchilla.beta / (chinchilla.alpha + chinchilla.beta)
budgets = np.geomspace(C.min(), C.max(), 4)
optima = [ours.compute_optimal(c) for c in budgets]
print(f"measured frontier: {len(frontier)} of {len(runs)} runs, widths "
      f"{[runs[i]['width'] for i in frontier]}")
print(f"our N_opt grows as C^{frontier_exponent:.2f} (Chinchilla: C^{chinchilla_exponent:.2f}); at the "
      f"largest budget the fit's optimum is N {optima[-1][0]:,.0f}, D {optima[-1][1]:,.0f} "
      f"({optima[-1][1] / optima[-1][0]:.2g} tokens per parameter)")
assert np.allclose(C, [training_flops(n, d) for n, d in zip(N, D)])

fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
for i, width in enumerate(WIDTHS + (HELD_OUT,)):
    mine = np.array([r["width"] == width for r in runs])
    style = series_style(i)
    left.plot(C[mine], L[mine], label=f"width {width}" + (" (held out)" if width == HELD_OUT else ""),
              markerfacecolor="none" if width == HELD_OUT else style["color"], **style)
left.plot(C[frontier], L[frontier], color="black", linestyle="--", label="measured frontier")
left.scatter(C[held], predicted_surface, marker="x", s=80, color="red", zorder=5, label="predicted (held out)")
left.set_xscale("log")
label_axes(left, "training compute C = 6 N D (FLOPs)", "held-out loss (nats per byte)", "every run of the sweep")
legend_outside(left)
ns = np.geomspace(N.min() / 2, N.max() * 4, 200)
for i, budget in enumerate(budgets):
    right.plot(ns, ours.loss(ns, budget / (6 * ns)), label=f"C = {budget:.1e}", **series_style(i), markevery=50)
right.plot([n for n, _ in optima], [float(ours.loss(n, d)) for n, d in optima], color="black", linestyle="--",
           marker="*", markersize=10, label="fitted optimum")
right.set_xscale("log")
right.set_ylim(L.min() - 0.3, L.max() + 0.3)
label_axes(right, "non-embedding parameters N", "loss predicted by our fit", "iso-FLOP curves of our surface")
legend_outside(right)
fig.tight_layout()
save_figure(fig, "18_loss_vs_compute")

fig, ax = plt.subplots(figsize=(6.5, 4))
ax.scatter(n_fit, l_fit, label=f"fitted runs (D = {max(TOKEN_BUDGETS):,})", **series_style(0))
ax.scatter([n_out], [l_out], label="held-out run", **series_style(1))
grid = np.geomspace(n_fit.min() / 1.5, n_out * 2, 200)
ax.plot(grid, law_n(grid), color="black", label=f"E + A/N^α, α = {law_n.alpha:.2f}")
band = np.array([f(grid) for f in law_fits])
ax.fill_between(grid, *np.percentile(band, [50 * (1 - LEVEL), 50 * (1 + LEVEL)], axis=0), color="grey",
                alpha=0.3, label=f"{LEVEL:.0%} bootstrap band")
ax.axhline(law_n.E, color="grey", linestyle=":", label=f"floor E = {law_n.E:.2f}")
ax.set_xscale("log")
label_axes(ax, "non-embedding parameters N", "held-out loss (nats per byte)", "L(N), fitted on the smaller models")
legend_outside(ax)
save_figure(fig, "18_loss_vs_size")

# %% [markdown]
# What the sweep shows:
# * the loss falls with model size at every budget and with tokens at every size, towards a
#   floor, and a floor is needed: the pure power law (E = 0) predicts the held-out model worse;
# * fitted on the smaller widths, the L(N) curve predicts the held-out width within a few per
#   cent of its loss, and so does the L(N, D) surface on average and at the largest budget
#   (the errors are printed above), less well at the smallest, where the additive form fails;
# * the exponents are loose: the bootstrap intervals span a wide range with runs this few and
#   this short, wider than the standard errors from the fit's curvature suggest (those assume
#   the fit is nearly linear around its optimum, which a trade-off between constants such as B
#   and β breaks). A couple of minutes buys the shape of the law, not Chinchilla's precision.

# %% [markdown]
# ## Closing checks
# The claims of this lesson.

# %%
by_width = {w: np.array([r["val_loss"] for r in runs if r["width"] == w]) for w in WIDTHS + (HELD_OUT,)}
assert all((np.diff(v) < 0).all() for v in by_width.values()), "more tokens lower the loss at every size"
at_largest = np.array([by_width[w][-1] for w in WIDTHS + (HELD_OUT,)])
assert at_largest[-1] < at_largest[0] and (np.diff(at_largest) < SIZE_SLACK).all(), "bigger models do better"
assert L.max() < uniform, "every run learned something"
assert abs(E_hand - law_n.E) <= floors[1] and np.isclose(A_at, law_n.A, rtol=1e-9) \
    and np.isclose(alpha_at, law_n.alpha, rtol=1e-9), "by hand and the package find the same law"
assert error_n < PREDICTION_TOLERANCE, "L(N) predicts the held-out model"
assert errors_surface.mean() < PREDICTION_TOLERANCE, "L(N, D) predicts the held-out model on average"
assert errors_surface[np.argmax(D[held])] < PREDICTION_TOLERANCE, "and at the largest budget"
assert QUICK or errors_surface.argmax() == np.argmin(D[held]), "it errs most at the smallest budget"
assert QUICK or gain_small > gain_large, "size buys more at the smallest budget: the form is not additive"
assert QUICK or error_pure > error_n, "the floor matters: E = 0 predicts worse"
assert QUICK or all(high - low > 2 * 1.645 * surface.stderr[k] for k, (low, high) in surface_intervals.items()), \
    "the bootstrap intervals are wider than the curvature's"
assert alpha_low <= law_n.alpha <= alpha_high and E_low <= law_n.E <= E_high, "intervals hold the estimate"
assert 0 < law_n.alpha and 0 <= law_n.E < l_fit.min(), "the fitted law falls towards a floor below every loss"
assert list(frontier) == sorted(frontier, key=lambda i: C[i]) and (np.diff(L[frontier]) < 0).all()
assert QUICK or sweep_seconds < 240, "the sweep fits the lesson's time budget"
print(f"lesson 18 checks passed ({time.perf_counter() - lesson_start:.0f} s)")

# %% [markdown]
# ## Exercises
# Each exercise is one file you edit; its checker runs your answer on tiny inputs in seconds and,
# when it is not right yet, says what kind of result it expected and gives a hint.
#
# 1. **A power law in log space.** Fit L = A N^-α by least squares on log L against log N. Edit
#    `exercises/18_1.py`, then run `tinygrad-llm exercise check 18.1`.
# 2. **Predict: a hundred times the parameters.** With Kaplan's L ∝ N^-0.076, predict the factor
#    by which the loss falls when N grows 100-fold. Edit `exercises/18_2.py`, then run
#    `tinygrad-llm exercise check 18.2`.
#
# `python -m pytest -m exercises` checks every answer at once. Reference solutions are in
# `exercises/solutions/`: look there after you have tried.
