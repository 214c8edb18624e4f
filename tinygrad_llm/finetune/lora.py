"""Parameter-efficient fine-tuning with LoRA: low-rank updates of frozen weights (lesson 12).

Fine-tuning every weight keeps four numbers per parameter (the weight, its gradient and Adam's
two moments), and each task ends with a full copy of the model. LoRA (Hu et al., 2021)
freezes the pretrained weight W, shape (out, in), and learns a low-rank correction beside it:

    y = x W^T + b + (alpha / r) * dropout(x) A^T B^T,     A: (r, in),  B: (out, r),  r << in, out

Only A and B are trained: r * (in + out) numbers instead of in * out. B starts at zero, so the
adapted model starts exactly at the pretrained one; A starts small and random, so that the first
gradient of B (proportional to x A^T) is not zero. Dividing by r keeps the size of the update about
the same when r changes, so one learning rate serves several ranks.

After training there are two ways to use the update. ``merge`` adds (alpha / r) B A into W, and
inference costs nothing extra. Or the small A and B arrays are saved alone (``save_lora``) with a
fingerprint of the base weights, so that they are never loaded onto a model they were not trained
for, and several adapters share one base model in memory, switched by name (``set_active_adapter``).

Prompt tuning and bottleneck adapters, the lesson's two other methods, are in ``adapters.py``,
with ``finetune_cost``, which compares the three. LoRA wraps any linear layer: a module with
``in_features``, ``out_features`` and a float ``weight`` Parameter (``Linear``), or a layer type that
registers itself as a frozen base with ``register_frozen_base`` because it computes x W^T + b from
something other than a float weight: lesson 13's ``QuantizedLinear`` does, and that is QLoRA.
This module knows no such type by name, so lesson 12 needs nothing from lesson 13.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
from typing import Sequence

import numpy as np

from ..core import functional as F
from ..core.checks import check_float
from ..model.state import CheckpointError, load_safetensors, save_safetensors
from ..core.checks import is_integer
from ..model.nn import Linear, Module, Parameter
from ..core.tensor import Tensor

DEFAULT_TARGETS = ("attn.qkv", "attn.proj")  # attention only, as in the LoRA paper
LORA_FORMAT = "tinygrad_llm.lora/1"          # written into every adapter file's metadata


# ----------------------------------------------------------------------------------------------
# What LoRA may wrap

FROZEN_BASES: list[type] = []   # layer types registered by register_frozen_base


def register_frozen_base(layer_type: type) -> type:
    """Let LoRA wrap layers of ``layer_type``, which compute y = x W~^T + b themselves from what
    they store (codes and scales, say) and have ``in_features``, ``out_features``, ``dtype`` and
    ``bias``. Their output is computed by them, the adapter's added beside it; they have no float
    weight to merge into. Usable as a class decorator; returns ``layer_type``."""
    if not (isinstance(layer_type, type) and issubclass(layer_type, Module)):
        raise TypeError(f"register_frozen_base takes a Module subclass, got {layer_type!r}")
    if layer_type not in FROZEN_BASES:
        FROZEN_BASES.append(layer_type)
    return layer_type


def is_frozen_base(module: Module) -> bool:
    """Whether ``module`` is of a type registered with ``register_frozen_base``."""
    return isinstance(module, tuple(FROZEN_BASES))


def is_lora_base(module: Module) -> bool:
    """Whether LoRA can wrap ``module``: a registered frozen base, or a linear layer, meaning a
    module with integer ``in_features`` and ``out_features`` and a ``weight`` Parameter of shape
    (out_features, in_features)."""
    if is_frozen_base(module):
        return True
    weight = getattr(module, "weight", None)
    in_features, out_features = getattr(module, "in_features", None), getattr(module, "out_features", None)
    return (isinstance(module, Module) and isinstance(weight, Parameter) and is_integer(in_features)
            and is_integer(out_features) and weight.shape == (out_features, in_features))


# ----------------------------------------------------------------------------------------------
# The LoRA layer


class LoRAAdapter(Module):
    """One low-rank update for a Linear of shape (out_features, in_features): the trainable
    A (r, in) and B (out, r), with its rank, alpha and dropout."""

    def __init__(self, in_features: int, out_features: int, r: int = 8, alpha: float = 16.0,
                 dropout: float = 0.0, rng: np.random.Generator | None = None, dtype=np.float32):
        if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or r < 1:
            raise ValueError(f"LoRA rank r must be a positive integer, got {r!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"LoRA dropout must be in [0, 1), got {dropout}")
        check_float("LoRA alpha", alpha)   # careful: a NaN alpha would make every output NaN
        rng = rng if rng is not None else np.random.default_rng(0)
        self.r, self.alpha, self.dropout_p = int(r), float(alpha), float(dropout)
        self.rng = rng
        # A: uniform in +-1/sqrt(in) (PyTorch's default for a Linear), so x A^T keeps a scale
        # comparable to x's; B: zero, so that the update B A is zero at the start.
        bound = 1.0 / np.sqrt(in_features)
        self.A = Parameter(rng.uniform(-bound, bound, (self.r, in_features)), dtype=dtype)  # (r, in)
        self.B = Parameter(np.zeros((out_features, self.r)), dtype=dtype)                  # (out, r)

    @property
    def scale(self) -> float:
        return self.alpha / self.r

    def delta_weight(self) -> np.ndarray:
        """(alpha / r) B A, shape (out, in): what merging adds to the base weight."""
        return (self.B.data @ self.A.data) * np.asarray(self.scale, dtype=self.A.dtype)

    def forward(self, x: Tensor) -> Tensor:
        h = F.dropout(x, self.dropout_p, self.training, self.rng)  # (..., in), LoRA path only
        # scaling the rank-r middle costs r numbers per position instead of out
        return F.linear(F.linear(h, self.A) * self.scale, self.B)  # (..., r) -> (..., out)

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha:g}, dropout={self.dropout_p:g}"


class AdapterSet(Module):
    """The named adapters of one LoRA layer. Each is an attribute, so that parameter names read
    ``blocks.0.attn.qkv.lora.<name>.A`` and ``get_submodule`` finds them."""

    def __getitem__(self, name: str) -> LoRAAdapter:
        if name not in self:
            raise KeyError(f"no LoRA adapter named {name!r}; this layer has {self.names()}")
        return vars(self)[name]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and isinstance(vars(self).get(name), LoRAAdapter)

    def names(self) -> list[str]:
        return [name for name, _ in self.named_children()]

    def add(self, name: str, adapter: LoRAAdapter) -> None:
        check_adapter_name(name)
        if name in self:
            raise ValueError(f"this layer already has a LoRA adapter named {name!r}")
        setattr(self, name, adapter)


def check_adapter_name(name: str) -> str:
    """Adapter names become attribute names: identifiers, not starting with "_", and not the
    name of something a module already has (``forward``, ``training``...)."""
    if not isinstance(name, str) or not name.isidentifier() or name.startswith("_") \
            or hasattr(AdapterSet, name):
        raise ValueError(f"invalid adapter name {name!r}: use an identifier such as 'default' or "
                         f"'summaries' that does not start with '_' and is not a Module attribute")
    return name


class LoRALinear(Module):
    """A frozen Linear plus named LoRA adapters, one of them (or none) active:

        y = x W^T + b + adapter(x),     adapter(x) = (alpha / r) dropout(x) A^T B^T

    The base layer's own ``weight`` and ``bias`` Parameters are kept under the same names (not
    copied), so the model's state dict still has ``...qkv.weight`` and any optimizer, tied weight
    or checkpoint that refers to them keeps working.

    QLoRA (lesson 13): the base may be a frozen base (see ``register_frozen_base``), such as a
    ``QuantizedLinear``. Its stored arrays (``qweight``, ``scale``...) become this layer's buffers
    under the same names, and ``weight`` is None; the frozen layer itself computes the base output
    but is kept out of the module tree (see ``named_children``), so state dict keys and
    ``base_fingerprint`` are those of the quantized model. A frozen base cannot be merged into."""

    def __init__(self, base: Module, r: int = 8, alpha: float = 16.0, dropout: float = 0.0,
                 rng: np.random.Generator | None = None, adapter_name: str = "default"):
        if not is_lora_base(base):
            raise TypeError(f"LoRALinear wraps a Linear, got {type(base).__name__} (LoRA takes a layer with "
                            f"in_features, out_features and a weight Parameter of shape (out, in), or a "
                            f"registered frozen base such as a QuantizedLinear, for QLoRA)")
        self.in_features, self.out_features = int(base.in_features), int(base.out_features)
        # the wrapped layer computes the base output (F.linear for a Linear, its own kernel for a
        # frozen base); it is kept out of the module tree (see named_children), its Parameters
        # and buffers are registered here under their own names instead
        self.base_layer = base
        self.weight = None if is_frozen_base(base) else base.weight  # (out, in)
        self.bias = base.bias
        for name, persistent in vars(base).get("_buffers", {}).items():
            self.register_buffer(name, getattr(base, name), persistent)  # shared arrays, not copies
        self.lora = AdapterSet()
        self.active: str | None = None
        self.merged = False  # True while the active adapter's update is folded into the weight
        self.add_adapter(adapter_name, r, alpha, dropout, rng)
        self.active = adapter_name
        for p in (self.weight, self.bias):  # frozen last: a bad setting above leaves base alone
            if p is not None:
                p.requires_grad_(False)

    @property
    def frozen_base(self) -> Module | None:
        """The wrapped frozen base (a QuantizedLinear, for QLoRA), or None for a float weight."""
        return self.base_layer if self.weight is None else None

    def add_adapter(self, name: str, r: int = 8, alpha: float = 16.0, dropout: float = 0.0,
                    rng: np.random.Generator | None = None) -> LoRAAdapter:
        """A new adapter (zero update, trainable), not activated."""
        dtype = self.weight.dtype if self.weight is not None else self.frozen_base.dtype
        adapter = LoRAAdapter(self.in_features, self.out_features, r, alpha, dropout, rng, dtype=dtype)
        self.lora.add(name, adapter)
        return adapter

    def set_active(self, name: str | None) -> None:
        """Use adapter ``name`` from now on, or none (the base layer alone)."""
        if name is not None and name not in self.lora:
            raise KeyError(f"no LoRA adapter named {name!r}; this layer has {self.lora.names()}")
        if self.merged and name != self.active:
            raise RuntimeError(f"adapter {self.active!r} is merged into the weight; unmerge() "
                               f"before switching to {name!r}")
        self.active = name

    def merge(self) -> None:
        """W += (alpha / r) B A for the active adapter; forward then skips the LoRA path.

        careful: a merged layer is for inference. Training it would update A and B without
        their change reaching the output (they are no longer in the computation)."""
        if self.active is None:
            raise RuntimeError("merge(): this layer has no active adapter to merge")
        if self.frozen_base is not None:
            raise RuntimeError("merge(): the base weight is quantized; adding (alpha / r) B A would "
                               "mean quantizing it again, so QLoRA keeps the adapter beside the base")
        if self.merged:
            raise RuntimeError(f"merge(): adapter {self.active!r} is already merged")
        # careful: W + D - D is not W in floating point; keeping W makes unmerge exact, so the
        # base fingerprint (checked when adapters are loaded) survives a merge/unmerge cycle.
        self._unmerged_weight = self.weight.data.copy()
        self.weight.data += self.lora[self.active].delta_weight()
        self.merged = True

    def unmerge(self) -> None:
        """The base weight W again, bit for bit (restored from the copy ``merge`` kept)."""
        if not self.merged:
            raise RuntimeError("unmerge(): no adapter is merged into this layer")
        np.copyto(self.weight.data, self._unmerged_weight)
        self._unmerged_weight = None
        self.merged = False

    def named_children(self):
        """The adapters; the wrapped layer is not a child (its arrays are this layer's)."""
        return ((name, m) for name, m in super().named_children() if name != "base_layer")

    def forward(self, x: Tensor) -> Tensor:
        y = self.base_layer(x)  # (..., out): x W^T + b, or from the frozen codes and scales
        if self.active is None or self.merged:
            return y
        return y + self.lora[self.active](x)  # (..., out)

    def extra_repr(self) -> str:
        state = ", merged" if self.merged else ""
        return (f"{self.in_features}, {self.out_features}, bias={self.bias is not None}, "
                f"active={self.active!r}{state}")


# ----------------------------------------------------------------------------------------------
# Injecting LoRA into a model, and switching adapters


def is_lora_target(module: Module) -> bool:
    """What a LoRA target may name: a layer LoRA can wrap, or one it already wraps."""
    return isinstance(module, LoRALinear) or is_lora_base(module)



def lora_layers(model: Module) -> list[tuple[str, LoRALinear]]:
    """Every LoRALinear in the model with its dotted name."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, LoRALinear)]


def _target_pattern(target: str | Sequence[str]) -> str:
    """One regular expression for ``find_modules``. A string is a regular expression already; in
    a sequence, an entry with * ? or [ is a glob over the full dotted name, any other entry is a
    dotted suffix: "attn.qkv" matches "blocks.3.attn.qkv" but not "blocks.3.attn.qkv_extra"."""
    if isinstance(target, str):
        return target
    entries = list(target)
    if not entries or not all(isinstance(t, str) and t for t in entries):
        raise ValueError(f"LoRA target must be a regular expression or a non-empty sequence of "
                         f"names, got {target!r}")
    parts = [f"(?:^{fnmatch.translate(t)})" if any(c in t for c in "*?[")
             else f"(?:(?:^|\\.){re.escape(t)}$)" for t in entries]
    return "|".join(parts)


def _find_targets(model: Module, target: str | Sequence[str]) -> list[str]:
    """Names of the Linear (QuantizedLinear, LoRALinear) layers that ``target`` selects, or a
    clear error."""
    inside_lora = tuple(name + "." for name, _ in lora_layers(model))
    names = [n for n in model.find_modules(_target_pattern(target)) if not n.startswith(inside_lora)]
    if not names:
        linears = [n for n, m in model.named_modules() if is_lora_target(m)]
        shown = ", ".join(linears[:8]) + (", ..." if len(linears) > 8 else "")
        raise ValueError(f"LoRA target {target!r} matches no module of {type(model).__name__}; "
                         f"its Linear layers are: {shown or 'none'}")
    wrong = [f"{n} ({type(model.get_submodule(n)).__name__})" for n in names
             if not is_lora_target(model.get_submodule(n))]
    if wrong:
        raise TypeError(f"LoRA target {target!r} matches modules that are not Linear layers: "
                        f"{', '.join(wrong)}; name the Linear layers inside them (e.g. 'attn.qkv')")
    return names


def _check_not_quantized(model: Module, action: str) -> None:
    quantized = [name for name, layer in lora_layers(model)
                 if layer.frozen_base is not None and layer.active is not None]
    if quantized:
        raise RuntimeError(f"{action}: {', '.join(quantized[:3])}{', ...' if len(quantized) > 3 else ''} "
                           f"have a quantized base, which cannot take a merged update (QLoRA keeps the "
                           f"adapters beside the base; use merge=False)")


def _check_not_merged(model: Module, action: str) -> None:
    merged = [name for name, layer in lora_layers(model) if layer.merged]
    if merged:
        raise RuntimeError(f"{action}: LoRA is merged into {', '.join(merged)}; unmerge_lora(model) first")


def _inject(model: Module, names: list[str], adapter_name: str, r: int, alpha: float,
            dropout: float, rng: np.random.Generator | None) -> None:
    """Add adapter ``adapter_name`` to each named layer, wrapping plain Linears first. Checks
    every layer before changing any, so an error leaves the model as it was."""
    check_adapter_name(adapter_name)
    taken = [n for n in names if isinstance(model.get_submodule(n), LoRALinear)
             and adapter_name in model.get_submodule(n).lora]
    if taken:
        raise ValueError(f"an adapter named {adapter_name!r} already exists in {', '.join(taken)}; "
                         f"choose another name")
    rng = rng if rng is not None else np.random.default_rng(0)
    for name in names:
        module = model.get_submodule(name)
        if isinstance(module, LoRALinear):
            module.add_adapter(adapter_name, r, alpha, dropout, rng)
        else:
            model.set_submodule(name, LoRALinear(module, r, alpha, dropout, rng, adapter_name))


def apply_lora(model: Module, target: str | Sequence[str] = DEFAULT_TARGETS, r: int = 8,
               alpha: float = 16.0, dropout: float = 0.0, adapter_name: str = "default",
               rng: np.random.Generator | None = None) -> list[str]:
    """Put a LoRA adapter on every Linear that ``target`` selects, freeze everything else, and
    return the names of the adapted layers.

    ``target``: a sequence of dotted suffixes ("attn.qkv") or globs ("blocks.0.*"), or one
    regular expression (r"mlp\\.(up|down)$"). A layer that already has LoRA gets one more adapter.
    The new adapter becomes the active one and the only trainable parameters of the model.

    >>> from tinygrad_llm.model.gpt import GPT, GPTConfig
    >>> model = GPT(GPTConfig(vocab_size=50, context_length=8, d_model=16, n_layer=2, n_head=2))
    >>> apply_lora(model, r=2)
    ['blocks.0.attn.qkv', 'blocks.0.attn.proj', 'blocks.1.attn.qkv', 'blocks.1.attn.proj']
    """
    _check_not_merged(model, "apply_lora")
    names = _find_targets(model, target)
    _inject(model, names, adapter_name, r, alpha, dropout, rng)
    set_active_adapter(model, adapter_name)
    return names


def add_adapter(model: Module, name: str, r: int = 8, alpha: float = 16.0, dropout: float = 0.0,
                rng: np.random.Generator | None = None) -> list[str]:
    """A new adapter on every layer that already has LoRA; it becomes active (and trainable)."""
    layers = [layer_name for layer_name, _ in lora_layers(model)]
    if not layers:
        raise ValueError(f"{type(model).__name__} has no LoRA layers; call apply_lora first")
    _check_not_merged(model, "add_adapter")
    _inject(model, layers, name, r, alpha, dropout, rng)
    set_active_adapter(model, name)
    return layers


def adapter_names(model: Module) -> list[str]:
    """The names of all adapters in the model, layer by layer in order of first appearance."""
    names: dict[str, None] = {}
    for _, layer in lora_layers(model):
        names.update(dict.fromkeys(layer.lora.names()))
    return list(names)


def active_adapter(model: Module) -> str | None:
    """The adapter in use, or None when the model runs as its base alone."""
    active = {layer.active for _, layer in lora_layers(model)} - {None}
    if len(active) > 1:
        raise RuntimeError(f"layers disagree on the active adapter: {sorted(active)}")
    return active.pop() if active else None


def set_active_adapter(model: Module, name: str | None) -> None:
    """Switch every LoRA layer to adapter ``name`` (None: the base model alone).

    The active adapter is the trainable one: the model is frozen, then the active adapter's A
    and B require grad, so ``trainable_parameters(model)`` is what an optimizer should train."""
    layers = lora_layers(model)
    if not layers:
        raise ValueError(f"{type(model).__name__} has no LoRA layers; call apply_lora first")
    if name is not None and name not in adapter_names(model):
        raise KeyError(f"no LoRA adapter named {name!r}; the model has {adapter_names(model)}")
    _check_not_merged(model, "set_active_adapter")
    model.requires_grad_(False)
    for _, layer in layers:
        layer.set_active(name if name in layer.lora else None)
        if layer.active is not None:
            layer.lora[layer.active].requires_grad_(True)


def merge_lora(model: Module) -> list[str]:
    """Fold the active adapter into the weights of every LoRA layer; returns the merged layers."""
    _check_not_quantized(model, "merge_lora")
    merged = []
    for name, layer in lora_layers(model):
        if layer.active is not None and not layer.merged:
            layer.merge()
            merged.append(name)
    if not merged:
        raise RuntimeError("merge_lora: no LoRA layer has an active, unmerged adapter")
    return merged


def unmerge_lora(model: Module) -> list[str]:
    """Undo ``merge_lora``; returns the layers that were unmerged."""
    unmerged = []
    for name, layer in lora_layers(model):
        if layer.merged:
            layer.unmerge()
            unmerged.append(name)
    if not unmerged:
        raise RuntimeError("unmerge_lora: no LoRA layer is merged")
    return unmerged


def unload_lora(model: Module, merge: bool = True) -> list[str]:
    """Replace every LoRALinear by a plain Linear holding its weights: with the active adapter
    merged in (``merge=True``, a fine-tuned model with no LoRA left) or the base weights alone.
    The adapters are dropped; parameters stay frozen. A quantized base (QLoRA) gets its
    QuantizedLinear back, and only with ``merge=False``."""
    layers = lora_layers(model)
    if not layers:
        raise ValueError(f"{type(model).__name__} has no LoRA layers to unload")
    if merge:
        _check_not_quantized(model, "unload_lora(merge=True)")
    for name, layer in layers:
        if layer.frozen_base is not None:
            model.set_submodule(name, layer.frozen_base)
            continue
        if merge and layer.active is not None and not layer.merged:
            layer.merge()
        elif not merge and layer.merged:
            layer.unmerge()
        plain = Linear(layer.in_features, layer.out_features, bias=layer.bias is not None,
                       dtype=layer.weight.dtype)
        plain.weight, plain.bias = layer.weight, layer.bias  # the same Parameters, not copies
        model.set_submodule(name, plain)
    return [name for name, _ in layers]


# ----------------------------------------------------------------------------------------------
# Saving and loading adapters alone


def base_fingerprint(model: Module) -> str:
    """A SHA-256 hash of the base model's weights: every parameter and persistent buffer except
    LoRA adapters, by name, dtype, shape and bytes.

    LoRALinear keeps its base layer's parameter names, so a model has the same fingerprint before
    and after ``apply_lora``; any change to one base weight changes it."""
    _check_not_merged(model, "base_fingerprint")
    adapter_ids = {id(p) for m in model.modules() if isinstance(m, LoRAAdapter) for p in m.parameters()}
    state = {name: p.data for name, p in model.named_parameters() if id(p) not in adapter_ids}
    state.update(model.named_buffers(persistent_only=True))
    digest = hashlib.sha256()
    for name in sorted(state):
        array = np.ascontiguousarray(state[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.reshape(-1).view(np.uint8))
    return "sha256:" + digest.hexdigest()


def save_lora(model: Module, path: str | os.PathLike, adapter: str | None = None,
              base_ref: str | None = None) -> None:
    """Write one adapter's A and B arrays (by default the active adapter's) to a safetensors file.

    The metadata records the adapter name, each adapted layer with its rank, alpha, dropout and
    shape, and ``base_ref``: a reference to the base model, by default its ``base_fingerprint``.
    The file holds only the adapter, a small fraction of the model."""
    name = adapter if adapter is not None else active_adapter(model)
    if name is None:
        raise ValueError("save_lora: no adapter is active; pass adapter= to say which one to save")
    layers = [(layer_name, layer) for layer_name, layer in lora_layers(model) if name in layer.lora]
    if not layers:
        raise KeyError(f"save_lora: no LoRA adapter named {name!r}; the model has {adapter_names(model)}")
    tensors: dict[str, np.ndarray] = {}
    config: dict[str, dict] = {}
    for layer_name, layer in layers:
        lora = layer.lora[name]
        tensors[f"{layer_name}.A"] = lora.A.data  # (r, in)
        tensors[f"{layer_name}.B"] = lora.B.data  # (out, r)
        config[layer_name] = {"r": lora.r, "alpha": lora.alpha, "dropout": lora.dropout_p,
                              "in_features": layer.in_features, "out_features": layer.out_features}
    metadata = {"format": LORA_FORMAT, "adapter": name,
                "base": base_ref if base_ref is not None else base_fingerprint(model),
                "targets": json.dumps(list(config)), "layers": json.dumps(config)}
    save_safetensors(path, tensors, metadata)


def load_lora(model: Module, path: str | os.PathLike, adapter_name: str | None = None,
              base_ref: str | None = None, check_base: bool = True) -> list[str]:
    """Add the adapter saved in ``path`` to ``model`` (wrapping its Linear layers as needed),
    make it active and trainable, and return the adapted layer names.

    The base reference in the file must equal ``base_ref`` (by default this model's
    ``base_fingerprint``) unless ``check_base=False``; every target layer must exist, be a Linear
    and fit the saved shapes. Any mismatch raises one CheckpointError naming all problems, before
    the model is changed. ``adapter_name`` renames the adapter (default: the saved name)."""
    tensors, metadata = load_safetensors(path)
    if metadata.get("format") != LORA_FORMAT:
        raise CheckpointError(f"{path}: not a LoRA adapter file (format {metadata.get('format')!r}, "
                              f"expected {LORA_FORMAT!r})")
    try:
        config = json.loads(metadata["layers"])
        saved_name, saved_base = metadata["adapter"], metadata["base"]
    except (KeyError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: corrupt LoRA metadata ({error})") from None
    if not isinstance(config, dict) or not all(
            isinstance(c, dict) and {"r", "alpha", "dropout"} <= set(c) for c in config.values()):
        raise CheckpointError(f"{path}: corrupt LoRA metadata (layers must map names to r, alpha, dropout)")
    name = check_adapter_name(adapter_name if adapter_name is not None else saved_name)
    _check_not_merged(model, "load_lora")
    if check_base:
        expected = base_ref if base_ref is not None else base_fingerprint(model)
        if saved_base != expected:
            raise CheckpointError(
                f"{path}: adapter {saved_name!r} was trained on a different base model (file: "
                f"{saved_base}, this model: {expected}); load the base it was trained on, or pass "
                f"check_base=False if you know the weights are compatible")

    modules = dict(model.named_modules())
    problems = []
    for layer_name, layer_config in config.items():
        module = modules.get(layer_name)
        if module is None:
            problems.append(f"{layer_name}: no such layer in the model")
            continue
        if not is_lora_target(module):
            problems.append(f"{layer_name}: a {type(module).__name__}, not a Linear layer")
            continue
        r = layer_config["r"]
        want = {"A": (r, module.in_features), "B": (module.out_features, r)}
        for part, shape in want.items():
            array = tensors.get(f"{layer_name}.{part}")
            if array is None:
                problems.append(f"{layer_name}.{part}: missing from the file")
            elif array.shape != shape:
                problems.append(f"{layer_name}.{part}: file {array.shape} vs {shape} for a Linear "
                                f"of shape ({module.out_features}, {module.in_features})")
        if isinstance(module, LoRALinear) and name in module.lora:
            problems.append(f"{layer_name}: already has an adapter named {name!r} (pass adapter_name=)")
    expected_keys = {f"{layer_name}.{part}" for layer_name in config for part in "AB"}
    problems += [f"{key}: unexpected tensor" for key in tensors if key not in expected_keys]
    if problems:
        raise CheckpointError(f"{path}: LoRA adapter {saved_name!r} does not fit "
                              f"{type(model).__name__}: " + "; ".join(problems))

    for layer_name, layer_config in config.items():
        _inject(model, [layer_name], name, layer_config["r"], layer_config["alpha"],
                layer_config["dropout"], rng=None)
        lora = model.get_submodule(layer_name).lora[name]
        np.copyto(lora.A.data, tensors[f"{layer_name}.A"], casting="same_kind")
        np.copyto(lora.B.data, tensors[f"{layer_name}.B"], casting="same_kind")
    set_active_adapter(model, name)
    return list(config)
