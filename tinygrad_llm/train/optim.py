"""Optimizers, gradient clipping and the learning-rate schedule (lesson 07).

An optimizer holds references to parameters and updates ``p.data`` in place from ``p.grad``.
Parameters are given as a list, or as a list of groups (dicts with a "params" list and their own
settings), so that e.g. biases and LayerNorm weights can skip weight decay.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from ..core import parallel
from ..core.checks import check_positive
from ..model.nn import Module, Parameter


class Optimizer:
    defaults: dict = {}

    def __init__(self, params, **settings):
        unknown = set(settings) - set(self.defaults)
        if unknown:
            raise TypeError(f"{type(self).__name__} got unknown settings {sorted(unknown)}")
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__} got no parameters to optimize")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        self.param_groups: list[dict] = []
        seen: set[int] = set()
        for group in groups:
            params_of_group = list(group["params"])
            for p in params_of_group:
                if not isinstance(p, Parameter):
                    raise TypeError(f"optimizers update Parameters, got {type(p).__name__}")
                if id(p) in seen:
                    raise ValueError("a parameter appears in more than one parameter group")
                seen.add(id(p))
            full = {**self.defaults, **settings, **{k: v for k, v in group.items() if k != "params"}}
            full["params"] = params_of_group
            self.param_groups.append(full)
        self.state: dict[int, dict[str, np.ndarray]] = {}  # by position in the flattened list
        self.step_count = 0

    @property
    def lr(self) -> float:
        return self.param_groups[0]["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        """Set the learning rate of every group (what a schedule does each step)."""
        for group in self.param_groups:
            group["lr"] = value

    def parameters(self) -> list[Parameter]:
        return [p for group in self.param_groups for p in group["params"]]

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def step(self) -> None:
        self.step_count += 1
        index = 0
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None and p.requires_grad:
                    if p.grad.shape != p.shape:
                        raise ValueError(f"gradient of shape {p.grad.shape} for a parameter of shape {p.shape}")
                    self._update(p, p.grad, self.state.setdefault(index, {}), group)
                index += 1

    def _update(self, p: Parameter, grad: np.ndarray, state: dict, group: dict) -> None:
        raise NotImplementedError

    # Saving: plain arrays and numbers only, so the state fits in a safetensors file.
    def state_dict(self) -> dict:
        arrays = {f"{index}.{name}": value for index, slots in self.state.items()
                  for name, value in slots.items()}
        settings = [{k: v for k, v in group.items() if k != "params"} for group in self.param_groups]
        return {"step_count": self.step_count, "param_groups": settings, "state": arrays}

    def load_state_dict(self, state: dict) -> None:
        if len(state["param_groups"]) != len(self.param_groups):
            raise ValueError(f"optimizer state has {len(state['param_groups'])} parameter groups, "
                             f"this optimizer has {len(self.param_groups)}")
        params = self.parameters()
        restored: dict[int, dict[str, np.ndarray]] = {}
        for key, value in state["state"].items():
            index, name = key.split(".", 1)
            index = int(index)
            counter = name == "step"  # a per-parameter update count, stored as a 0-d integer
            if index >= len(params) or np.shape(value) != (() if counter else params[index].shape):
                raise ValueError(f"optimizer state {key!r} does not fit this model's parameters")
            restored.setdefault(index, {})[name] = np.array(value, dtype=np.int64 if counter else params[index].dtype)
        for group, settings in zip(self.param_groups, state["param_groups"]):
            group.update(settings)
        self.state = restored
        self.step_count = int(state["step_count"])


class OptimizerWrapper:
    """An optimizer around another one: the learning rate, the groups, the parameters and the saved
    state are the inner optimizer's; a subclass changes ``step`` (pruning's mask holding,
    ZeRO's sharded update) and passes everything else through."""

    def __init__(self, optimizer: Optimizer):
        self.optimizer = optimizer

    @property
    def lr(self) -> float:
        return self.optimizer.lr

    @lr.setter
    def lr(self, value: float) -> None:
        self.optimizer.lr = value

    @property
    def param_groups(self) -> list[dict]:
        return self.optimizer.param_groups

    def parameters(self) -> list[Parameter]:
        return self.optimizer.parameters()

    def zero_grad(self) -> None:
        self.optimizer.zero_grad()

    def step(self) -> None:
        self.optimizer.step()

    def state_dict(self) -> dict:
        return self.optimizer.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state)


class SGD(Optimizer):
    """p -= lr * (g + weight_decay p), with optional momentum: v = momentum v + g, p -= lr v."""

    defaults = {"lr": 0.01, "momentum": 0.0, "weight_decay": 0.0}

    def _update(self, p, grad, state, group):
        if group["weight_decay"]:
            grad = grad + group["weight_decay"] * p.data
        if group["momentum"]:
            velocity = state.get("velocity")
            if velocity is None:
                velocity = state["velocity"] = np.array(grad, dtype=p.dtype)
            else:
                velocity *= group["momentum"]
                velocity += grad
            grad = velocity
        p.data -= group["lr"] * grad


class Adam(Optimizer):
    """Adam: running means of the gradient (m) and of its square (v), bias-corrected,

        m = b1 m + (1 - b1) g,   v = b2 v + (1 - b2) g^2,
        p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)

    ``weight_decay`` here is the classic L2 penalty added to the gradient (use AdamW to decouple it).
    """

    defaults = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0}
    decoupled = False

    def _update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        lr, eps, decay = group["lr"], group["eps"], group["weight_decay"]
        if decay and not self.decoupled:
            grad = grad + decay * p.data
        if "m" not in state:
            state["m"] = np.zeros_like(p.data)
            state["v"] = np.zeros_like(p.data)
            state["step"] = np.zeros((), dtype=np.int64)
        # careful: the bias correction counts this parameter's own updates, not the optimizer's
        # steps: a parameter unfrozen late must start with a first step of size lr, like any other.
        state["step"] += 1
        t = int(state["step"])
        m, v = state["m"], state["v"]
        shrink = 1 - lr * decay if decay and self.decoupled else None  # AdamW: decay outside the ratio
        # p -= lr/(1-b1^t) m / (sqrt(v)/sqrt(1-b2^t) + eps)
        #    = lr sqrt(1-b2^t)/(1-b1^t) m / (sqrt(v) + eps sqrt(1-b2^t))
        root_correction = math.sqrt(1 - beta2 ** t)
        step_size = lr * root_correction / (1 - beta1 ** t)
        eps_scaled = eps * root_correction
        arrays = (p.data, np.asarray(grad, dtype=p.dtype), m, v)
        if not all(a.flags.c_contiguous for a in arrays):  # parts must be views, not copies
            adam_update_part(*arrays, beta1, beta2, shrink, eps_scaled, step_size)
            return
        flat = [a.reshape(-1) for a in arrays]
        # in place, through one scratch array per part, on every core: on large parameters the
        # update's cost is passes over memory, so it makes as few as it can
        parallel.in_parts(lambda part: adam_update_part(*(a[part] for a in flat), beta1, beta2, shrink,
                                                  eps_scaled, step_size), p.data.size)


def adam_update_part(param, grad, m, v, beta1, beta2, shrink, eps_scaled, step_size) -> None:
    """One Adam update of (part of) a parameter, in place."""
    scratch = np.multiply(grad, 1 - beta1)
    m *= beta1
    m += scratch
    np.multiply(grad, grad, out=scratch)
    scratch *= 1 - beta2
    v *= beta2
    v += scratch
    if shrink is not None:
        param *= shrink
    np.sqrt(v, out=scratch)
    scratch += eps_scaled
    np.divide(m, scratch, out=scratch)
    scratch *= step_size
    param -= scratch


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter): p -= lr * weight_decay * p each
    step, separately from the gradient, so decay does not get rescaled by Adam's 1/sqrt(v)."""

    defaults = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.01}
    decoupled = True


def weight_decay_groups(model: Module, weight_decay: float, decay_embeddings: bool = False) -> list[dict]:
    """Two parameter groups: matrices of Linear layers decay; biases, LayerNorm weights (1-D
    parameters) and, unless ``decay_embeddings``, embedding tables do not."""
    from ..model.nn import Embedding

    embedding_ids = {id(m.weight) for m in model.modules() if isinstance(m, Embedding)}
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim >= 2 and (decay_embeddings or id(p) not in embedding_ids):
            decay.append(p)
        else:
            no_decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def clip_grad_norm_(params: Iterable[Parameter], max_norm: float) -> float:
    """Scale all gradients together so that their global L2 norm is at most ``max_norm``; returns
    the norm before clipping. A non-finite norm is returned unchanged (and nothing is scaled) so
    that the training loop can stop with a clear message. ``max_norm`` must be a finite number
    > 0: a negative one would flip every gradient, zero would erase them."""
    max_norm = check_positive("max_norm", max_norm)
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return 0.0
    total = math.sqrt(sum(float(np.vdot(g, g)) for g in grads))
    if math.isfinite(total) and total > max_norm:
        scale = max_norm / (total + 1e-6)
        for g in grads:
            g *= scale
    return total


def cosine_schedule(step: int, max_lr: float, warmup_steps: int, total_steps: int,
                    min_lr: float = 0.0) -> float:
    """Linear warmup from 0 to ``max_lr`` over ``warmup_steps``, then cosine decay to ``min_lr``
    at ``total_steps`` (and ``min_lr`` after). Warmup keeps Adam's first, noisy steps small."""
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step >= total_steps:
        return min_lr
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return min_lr + 0.5 * (max_lr - min_lr) * (1 + math.cos(math.pi * progress))
