"""Pruning: removing the weights a trained model needs least (lesson 14).

*Unstructured magnitude pruning* sets to zero the fraction s (the *sparsity*) of weights with the
smallest |w|: a small weight changes the output little, so removing it costs little. The count
is exact: k = round(s n) entries go, ties broken by position. It is done per matrix
(``scope="layer"``: every matrix loses the same fraction) or over all chosen matrices at once
(``scope="global"``: one threshold, so matrices whose weights are small lose more).

The default targets are the four Linear weights of every block (``attn.qkv``, ``attn.proj``,
``mlp.up``, ``mlp.down``): 73% of the course model's parameters. Biases and LayerNorms are tiny.
The tied token embedding / output head is *not* pruned by default: it is one matrix doing two
jobs, the input table and the output projection, so every entry removed is felt twice, in what
the first block reads and in the logits of every position; it also has a scale of its own, so a
global threshold would not treat it like the block weights. Lesson 14 measures what including it
costs: pass ``targets=DEFAULT_TARGETS + ("token_embedding",)``.

A ``PruningMask`` (True = kept) must be *held* while the model trains on: the gradient of a
pruned weight is not zero, and even with it zeroed AdamW's moments m and v still carry the
momentum of the steps before pruning, so the update lr m_hat / (sqrt(v_hat) + eps) would revive
the weight. ``MaskedOptimizer`` wraps any optimizer: it zeroes the pruned gradients before the
step (so the moments of pruned entries decay away) and re-applies the mask after it (so the
weights are exactly zero, whatever the moments did). Weight decay multiplies, so 0 stays 0.

Whole heads and neurons are removed by ``structured``; the zeros are stored compactly by ``sparse``.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..model.nn import Embedding, Linear, Module, Parameter
from ..train.optim import Optimizer, OptimizerWrapper
from ..train.trainer import TrainConfig, Trainer, TrainHistory

DEFAULT_TARGETS = ("attn.qkv", "attn.proj", "mlp.up", "mlp.down")  # the Linear weights of the blocks
SCOPES = ("layer", "global")


# ----------------------------------------------------------------------------------------------
# Choosing the weights and the entries to remove


def check_sparsity(sparsity: float, what: str = "sparsity") -> float:
    """The fraction of weights to remove, checked: a number in [0, 1) (1 would remove them all)."""
    if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float, np.integer, np.floating)) \
            or not 0.0 <= sparsity < 1.0:
        raise ValueError(f"{what} must be a number in [0, 1) (the fraction of weights to remove), "
                         f"got {sparsity!r}")
    return float(sparsity)


def prunable_weights(model: Module, targets: Sequence[str] = DEFAULT_TARGETS) -> dict[str, Parameter]:
    """The ``.weight`` of every Linear or Embedding whose dotted name is, or ends with, a target
    (``"mlp.up"`` matches ``blocks.2.mlp.up``), by parameter name, in model order."""
    targets = (targets,) if isinstance(targets, str) else tuple(targets)
    if not targets:
        raise ValueError("no pruning targets given")
    found: dict[str, Parameter] = {}
    for name, module in model.named_modules():
        if not name or not any(name == t or name.endswith("." + t) for t in targets):
            continue
        if not isinstance(module, (Linear, Embedding)):
            raise TypeError(f"pruning target {name!r} is a {type(module).__name__}; only the weights "
                            f"of Linear and Embedding layers are pruned")
        found[f"{name}.weight"] = module.weight
    if not found:
        layers = [n for n, m in model.named_modules() if isinstance(m, (Linear, Embedding))]
        raise ValueError(f"no Linear or Embedding layer matches the pruning targets {list(targets)}; "
                         f"the model has {', '.join(layers[:6])}{', ...' if len(layers) > 6 else ''}")
    return found


def magnitude_masks(weights: dict[str, np.ndarray], sparsity: float, scope: str = "layer",
                    keep: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Boolean masks (True = kept) that remove the k = min(round(sparsity * n), n - 1) entries of
    smallest |w| (at least one entry always stays), n counting each matrix alone (``scope="layer"``) or all of them together ("global").

    Entries already removed in ``keep`` stay removed (a mask never regrows): they are counted
    first, as if their |w| were -1. Ties in |w| go by position, so the result is deterministic.

    >>> masks = magnitude_masks({"w": np.array([[0.5, -0.1], [0.3, -2.0]])}, 0.5)
    >>> masks["w"]
    array([[ True, False],
           [False,  True]])
    """
    sparsity = check_sparsity(sparsity)
    if scope not in SCOPES:
        raise ValueError(f"pruning scope must be one of {SCOPES}, got {scope!r}")
    scores = {}
    for name, w in weights.items():
        score = np.abs(np.asarray(w, dtype=np.float64)).reshape(-1)
        if keep is not None:
            if keep[name].shape != np.shape(w):
                raise ValueError(f"mask of {name} has shape {keep[name].shape}, its weight {np.shape(w)}")
            score[~keep[name].reshape(-1)] = -1.0
        scores[name] = score
    groups = [[name] for name in scores] if scope == "layer" else [list(scores)]
    masks = {}
    for names in groups:
        score = np.concatenate([scores[name] for name in names])
        # careful: round(0.999 * 256) = 256 would empty a 16x16 matrix although sparsity 1 is
        # refused; a sparsity below 1 always keeps at least one entry
        k = min(int(round(sparsity * score.size)), score.size - 1)
        already = int(np.sum(score < 0))
        if already > k:
            raise ValueError(f"{', '.join(names) if scope == 'layer' else 'the targets'} already have "
                             f"{already / score.size:.1%} of their weights pruned, more than the target "
                             f"{sparsity:.1%}; a pruning mask never brings weights back")
        kept = np.ones(score.size, dtype=bool)
        kept[np.argsort(score, kind="stable")[:k]] = False
        for name, part in zip(names, np.split(kept, np.cumsum([scores[n].size for n in names])[:-1])):
            masks[name] = part.reshape(np.shape(weights[name]))
    return masks


# ----------------------------------------------------------------------------------------------
# The mask, and holding it through training


class PruningMask:
    """Which entries of the chosen weights are kept (True) or pruned (False), for one model.

    ``prune`` raises the sparsity by magnitude and zeroes the removed weights; ``apply`` zeroes
    them again (after an optimizer step); ``mask_gradients`` zeroes their gradients."""

    def __init__(self, model: Module, targets: Sequence[str] = DEFAULT_TARGETS):
        self.params = prunable_weights(model, targets)
        self.keep = {name: np.ones(p.shape, dtype=bool) for name, p in self.params.items()}

    def prune(self, sparsity: float, scope: str = "layer") -> PruningMask:
        """Remove the smallest-|w| weights until ``sparsity`` of them are gone (see
        ``magnitude_masks``); earlier removals stay. Returns self."""
        self.keep = magnitude_masks({n: p.data for n, p in self.params.items()}, sparsity, scope, self.keep)
        self.apply()
        return self

    def apply(self) -> None:
        """Set every pruned weight to exactly zero (+0.0)."""
        for name, p in self.params.items():
            np.copyto(p.data, 0, where=~self.keep[name])

    def mask_gradients(self) -> None:
        """Set the gradient of every pruned weight to zero (parameters without a gradient are skipped)."""
        for name, p in self.params.items():
            if p.grad is not None:
                np.copyto(p.grad, 0, where=~self.keep[name])

    def pruned_are_zero(self) -> bool:
        """True when every pruned weight is exactly zero (what holding the mask guarantees)."""
        return all(not np.any(p.data[~self.keep[name]]) for name, p in self.params.items())

    @property
    def num_total(self) -> int:
        return sum(k.size for k in self.keep.values())

    @property
    def num_pruned(self) -> int:
        return sum(int(k.size - np.count_nonzero(k)) for k in self.keep.values())

    def sparsity(self) -> float:
        """Fraction of the chosen weights that are pruned."""
        return self.num_pruned / self.num_total

    def layer_sparsity(self) -> dict[str, float]:
        return {name: 1.0 - np.count_nonzero(k) / k.size for name, k in self.keep.items()}

    def report(self) -> list[dict]:
        """One row per weight: name, shape, kept, total and sparsity."""
        return [{"name": name, "shape": k.shape, "kept": int(np.count_nonzero(k)), "total": k.size,
                 "sparsity": 1.0 - np.count_nonzero(k) / k.size} for name, k in self.keep.items()]


def magnitude_prune(model: Module, sparsity: float, scope: str = "layer",
                    targets: Sequence[str] = DEFAULT_TARGETS) -> PruningMask:
    """One-shot pruning: a new ``PruningMask`` over ``targets``, pruned to ``sparsity``."""
    return PruningMask(model, targets).prune(sparsity, scope)


class MaskedOptimizer(OptimizerWrapper):
    """An optimizer that holds a pruning mask: each step is

        mask the gradients  ->  the wrapped optimizer's step  ->  re-apply the mask

    The second masking is the one that matters: AdamW's moments of a weight pruned mid-training
    still hold its momentum, so its update is not zero even with a zero gradient. It offers what
    the training loop uses (``step``, ``zero_grad``, ``parameters``, ``lr``, ``state_dict``), so a
    ``Trainer`` can train with it in place of its own optimizer (``hold_mask``).

    careful: a loop that clips gradients before ``step`` clips them with the pruned entries still
    in the norm; their share is small once the moments have decayed."""

    def __init__(self, optimizer: Optimizer, mask: PruningMask):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"MaskedOptimizer wraps an Optimizer, got {type(optimizer).__name__}")
        super().__init__(optimizer)
        self.mask = mask

    def step(self) -> None:
        self.mask.mask_gradients()
        self.optimizer.step()
        self.mask.apply()


def hold_mask(trainer: Trainer, mask: PruningMask) -> Trainer:
    """Make ``trainer`` keep the pruned weights of ``mask`` at zero (wraps its optimizer once)."""
    inner = trainer.optimizer
    if isinstance(inner, MaskedOptimizer):
        inner = inner.optimizer
    trainer.optimizer = MaskedOptimizer(inner, mask)
    return trainer


def finetune_pruned(model: Module, mask: PruningMask, train_tokens: np.ndarray, config: TrainConfig,
                    val_tokens: np.ndarray | None = None,
                    log: Callable[[str], None] | None = None) -> TrainHistory:
    """Train a pruned model ``config.steps`` steps with the mask held; back in eval mode after."""
    trainer = hold_mask(Trainer(model, train_tokens, val_tokens, config, log=log), mask)
    history = trainer.train()
    model.eval()
    return history


def sparsity_schedule(final_sparsity: float, rounds: int, initial_sparsity: float = 0.0,
                      power: float = 3.0) -> list[float]:
    """The sparsity after each of ``rounds`` pruning rounds, ramping from ``initial_sparsity``:

        s_t = s_final + (s_initial - s_final) (1 - t / rounds)^power,    t = 1 .. rounds

    (Zhu and Gupta, 2017, with power 3): large steps while many weights are redundant, small ones
    near the end where each removal hurts more. Non-decreasing; the last value is s_final.

    >>> [round(s, 4) for s in sparsity_schedule(0.8, 4)]
    [0.4625, 0.7, 0.7875, 0.8]
    """
    final_sparsity = check_sparsity(final_sparsity, "final sparsity")
    initial_sparsity = check_sparsity(initial_sparsity, "initial sparsity")
    if isinstance(rounds, bool) or not isinstance(rounds, (int, np.integer)) or rounds < 1:
        raise ValueError(f"rounds must be a positive integer, got {rounds!r}")
    if initial_sparsity > final_sparsity:
        raise ValueError(f"initial sparsity {initial_sparsity} is above the final {final_sparsity}")
    if power <= 0:
        raise ValueError(f"power must be positive, got {power}")
    return [final_sparsity + (initial_sparsity - final_sparsity) * (1 - t / rounds) ** power
            for t in range(1, rounds + 1)]


def iterative_prune(model: Module, train_tokens: np.ndarray, final_sparsity: float, rounds: int,
                    config: TrainConfig, scope: str = "layer", targets: Sequence[str] = DEFAULT_TARGETS,
                    val_tokens: np.ndarray | None = None,
                    log: Callable[[str], None] | None = None) -> tuple[PruningMask, list[dict]]:
    """Prune gradually: ``rounds`` times, prune to the next value of ``sparsity_schedule`` and
    train ``config.steps / rounds`` steps with the mask held. One Trainer runs through all
    rounds (one AdamW, one learning-rate schedule over ``config.steps``). Returns the mask and
    one record per round (sparsity, step, last training loss); the model ends in eval mode."""
    if config.steps < rounds:
        raise ValueError(f"{config.steps} training steps cannot be shared among {rounds} rounds")
    mask = PruningMask(model, targets)
    trainer = hold_mask(Trainer(model, train_tokens, val_tokens, config, log=log), mask)
    records = []
    for t, sparsity in enumerate(sparsity_schedule(final_sparsity, rounds), start=1):
        mask.prune(sparsity, scope)
        trainer.train(steps=config.steps * t // rounds - trainer.step)
        records.append({"round": t, "sparsity": mask.sparsity(), "step": trainer.step,
                        "train_loss": trainer.history.train_loss[-1]})
    model.eval()
    return mask, records
