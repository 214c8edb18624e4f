"""The Tensor: a NumPy array that remembers how it was made (lesson 01).

Every operation on Tensors records a node in a graph: the output, its parents and a small
``backward`` closure that turns the gradient of the output into one gradient per parent (the
chain rule, one local step at a time). ``loss.backward()`` walks that graph in reverse
topological order and leaves ``d loss / d leaf`` in the ``.grad`` of every leaf that requires it.

Three rules hold for every op, so each is written once, in the engine, not in each op:

* gradients of a parent that was broadcast are summed back to the parent's shape (``_unbroadcast``);
* gradients add up: across uses of a tensor in one graph and across ``backward`` calls, as in
  PyTorch (call ``zero_grad()`` or set ``.grad = None`` between steps);
* a closure only computes the gradient of a parent that requires it, so frozen weights cost no
  gradient compute and no gradient memory.

Dtypes. Tensors hold floating point data, float32 by default (float16 and float64 also work).
The promotion rule: Python numbers and NumPy arrays combined with a Tensor take the Tensor's dtype
(``x * 0.5`` stays float32), and two Tensors must have the same dtype; mixing float32 and float64
Tensors raises a TypeError instead of silently upcasting a float32 model. Convert with
``.astype(dtype)``, which is differentiable.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Sequence

import numpy as np

from . import parallel

DEFAULT_DTYPE = np.dtype(np.float32)
_FLOAT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


# ----------------------------------------------------------------------------------------------
# Gradient mode


class _GradMode:
    enabled = True


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Inside this block no graph is recorded: outputs do not require grad and keep no closures.

    Use it for inference and evaluation: it saves the memory of every intermediate array that a
    backward pass would need.
    """
    previous = _GradMode.enabled
    _GradMode.enabled = False
    try:
        yield
    finally:
        _GradMode.enabled = previous


@contextlib.contextmanager
def enable_grad() -> Iterator[None]:
    """Record the graph again inside a ``no_grad`` block."""
    previous = _GradMode.enabled
    _GradMode.enabled = True
    try:
        yield
    finally:
        _GradMode.enabled = previous


def is_grad_enabled() -> bool:
    return _GradMode.enabled


# ----------------------------------------------------------------------------------------------
# Helpers


def _float_array(data, dtype=None) -> np.ndarray:
    """Turn ``data`` into a floating point ndarray, without copying when it already is one."""
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        dtype = np.dtype(dtype)
        if dtype not in _FLOAT_DTYPES:
            raise TypeError(f"Tensor dtype must be float16, float32 or float64, got {dtype}")
        return np.asarray(data, dtype=dtype)
    if isinstance(data, np.ndarray) or isinstance(data, np.generic):
        if data.dtype in _FLOAT_DTYPES:
            return np.asarray(data)
        if data.dtype.kind in "biu":
            raise TypeError(
                f"Tensor needs floating point data, got an array of {data.dtype}. Pass "
                f"dtype=np.float32 to convert it; integer arrays such as token ids are used as "
                f"they are, to index a Tensor (embedding[ids]) or as cross_entropy targets")
        raise TypeError(f"Tensor dtype must be float16, float32 or float64, got {data.dtype}")
    array = np.asarray(data)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"cannot make a Tensor from {type(data).__name__} ({array.dtype})")
    return array.astype(DEFAULT_DTYPE)


def _unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum ``grad`` over the axes along which an operand of ``shape`` was broadcast.

    Broadcasting copies a value along an axis; the derivative of a copy is the sum of the
    gradients of all copies. Example: shape (3, 1) broadcast to (2, 3, 4) sums axis 0, then axis 2.
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    if grad.shape != shape:  # an op returned a gradient of the wrong shape: a bug, not user error
        raise RuntimeError(f"internal error: gradient of shape {grad.shape} for a tensor of shape {shape}")
    return grad


def _check_power_domain(a: np.ndarray, p) -> None:
    """A negative base has no real non-integer power: refuse it, as ``sqrt`` does, instead of NaN."""
    fractional = np.asarray(p) != np.round(p)
    if np.any((a < 0) & fractional):
        shown = float(p) if np.ndim(p) == 0 else "a non-integer exponent"
        raise ValueError(f"x ** {shown} of a tensor with negative entries (a non-integer power "
                         f"needs x >= 0)")


def _power(a: np.ndarray, p: float) -> np.ndarray:
    """a ** p with fast paths for small integer powers.

    NOTE: NumPy's float32 ``a ** 3`` calls the general power function per entry and can be a
    hundred times slower than ``a * a * a``, enough to dominate a GPT's training step.
    """
    if p == 1:
        return a.copy()
    if p == 2:
        return np.square(a)
    if p == 3:
        return a * a * a
    if p == 0.5:
        return np.sqrt(a)
    if p == -1:
        return 1 / a
    return a ** p


def _freed_backward(grad):
    raise RuntimeError(
        "backward through a graph that was already freed: a graph is freed after backward() to "
        "save memory; call backward(retain_graph=True) the first time to go through it twice")


def _is_basic_index(index) -> bool:
    """True when indexing takes a view (ints, slices, None, ...), so no index can repeat."""
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis for i in items)


# ----------------------------------------------------------------------------------------------
# The Tensor


class Tensor:
    """A NumPy array with a gradient.

    >>> x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> y = (x * x).sum()        # y = sum(x_i^2)
    >>> y.backward()
    >>> x.grad                   # dy/dx_i = 2 x_i
    array([2., 4., 6.], dtype=float32)
    """

    __slots__ = ("data", "grad", "requires_grad", "_parents", "_backward", "_retains_grad", "name")
    # NumPy must hand `array + tensor` to Tensor.__radd__ instead of treating the Tensor as a scalar.
    __array_ufunc__ = None

    def __init__(self, data, dtype=None, requires_grad: bool = False, name: str | None = None):
        self.data = _float_array(data, dtype)
        self.grad: np.ndarray | None = None
        self.requires_grad = bool(requires_grad)
        self._parents: tuple[Tensor, ...] = ()
        self._backward: Callable | None = None  # None marks a leaf
        self._retains_grad = False
        self.name = name

    # --- graph construction ------------------------------------------------------------------

    @staticmethod
    def from_op(data: np.ndarray, parents: tuple[Tensor, ...], backward: Callable) -> Tensor:
        """The output of an op: records (parents, backward) only if some parent requires grad.

        This is how every op is written: the forward result ``data``, the Tensors it was computed
        from, and ``backward(g)`` returning one gradient per parent (``g`` is dL/d(output)).

            >>> x = Tensor([1.0, 2.0], requires_grad=True)
            >>> y = Tensor.from_op(x.data * 3, (x,), lambda g: (3 * g,))
            >>> y.sum().backward(); x.grad.tolist()
            [3.0, 3.0]
        """
        out = Tensor.__new__(Tensor)
        out.data = data
        out.grad = None
        out._retains_grad = False
        out.name = None
        needs_grad = False
        if _GradMode.enabled:
            for p in parents:
                if p.requires_grad:
                    needs_grad = True
                    break
        if needs_grad:
            out.requires_grad = True
            out._parents = parents
            out._backward = backward
        else:
            out.requires_grad = False
            out._parents = ()
            out._backward = None
        return out

    _make = from_op   # the engine's first name for from_op, kept for code written against it

    def _other(self, other) -> tuple[tuple[Tensor, ...], np.ndarray | float, Tensor | None]:
        """For a binary op: (parents, the other operand's data, the other Tensor or None).

        A constant (Python number or NumPy array) takes this Tensor's dtype and joins no graph.
        """
        if isinstance(other, Tensor):
            if other.data.dtype != self.data.dtype:
                self._operand(other)  # raises the dtype error
            return (self, other), other.data, other
        # careful: np.float64 subclasses float, but NumPy would upcast a float32 array for it
        if isinstance(other, (int, float)) and not isinstance(other, np.generic):
            return (self,), other, None  # NumPy keeps the array's dtype for Python numbers
        return (self,), self._operand(other).data, None

    def _operand(self, other) -> Tensor:
        """Wrap a non-Tensor operand as a constant of this Tensor's dtype (the promotion rule)."""
        if isinstance(other, Tensor):
            if other.data.dtype != self.data.dtype:
                raise TypeError(
                    f"dtype mismatch: {self.data.dtype} and {other.data.dtype} Tensors; convert one "
                    f"with .astype() (Tensors are never upcast silently)")
            return other
        array = np.asarray(other)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"cannot combine a Tensor with {type(other).__name__}")
        return Tensor(array.astype(self.data.dtype, copy=False))

    # --- properties -----------------------------------------------------------------------------

    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def is_leaf(self) -> bool:
        return self._backward is None

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        body = np.array2string(self.data, precision=4, separator=", ", prefix="Tensor(")
        extra = f", dtype={self.data.dtype}" if self.data.dtype != DEFAULT_DTYPE else ""
        if self.requires_grad:
            extra += ", requires_grad=True"
        return f"Tensor({body}{extra})"

    def numpy(self) -> np.ndarray:
        """The underlying array (shared, not copied)."""
        return self.data

    def item(self) -> float:
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return float(self.data.reshape(()))

    def detach(self) -> Tensor:
        """The same data, cut off from the graph (shares memory)."""
        return Tensor(self.data)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Switch gradient tracking of a leaf on or off in place (off = frozen); returns self."""
        if not self.is_leaf:
            raise RuntimeError("requires_grad_() works on leaf tensors (parameters); "
                               "use .detach() to cut an intermediate result off the graph")
        if requires_grad and self.data.dtype not in _FLOAT_DTYPES:
            raise TypeError(f"only floating point tensors can require grad, got {self.data.dtype}")
        self.requires_grad = bool(requires_grad)
        return self

    def retain_grad(self) -> Tensor:
        """Keep the gradient of this intermediate (non-leaf) tensor in ``.grad`` after backward."""
        self._retains_grad = True
        return self

    def zero_grad(self) -> None:
        self.grad = None

    # --- backpropagation ----------------------------------------------------------------------

    def backward(self, grad=None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf that requires grad.

        ``grad`` is the gradient flowing into this tensor (ones for a scalar loss). The graph is
        freed afterwards unless ``retain_graph=True``.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward() on a tensor that does not require grad: no input of the computation had "
                "requires_grad=True (or it ran inside no_grad())")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward() without a gradient needs a scalar, but this tensor has shape "
                    f"{self.shape}; reduce it first (e.g. .sum()) or pass grad= of that shape")
            grad = np.ones_like(self.data)
        else:
            grad = np.asarray(grad.data if isinstance(grad, Tensor) else grad, dtype=self.data.dtype)
            if grad.shape != self.shape:
                raise ValueError(f"backward(): grad has shape {grad.shape}, tensor has shape {self.shape}")

        grads: dict[int, np.ndarray] = {id(self): grad}
        # careful: a gradient array may be shared (add hands the same array to both parents, a
        # reshape hands on a view, and the caller owns ``grad``), and a stored .grad may later be
        # updated in place (clipping does). So .grad takes an array as it is only if the array
        # owns its memory and has not been seen before in this pass; else it gets a copy.
        handed_out = {id(grad): grad}
        for node in reversed(self._topological_order()):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if node._backward is None or node._retains_grad:
                if node.grad is not None:
                    node.grad = node.grad + g
                elif g.base is None and g.dtype == node.data.dtype and id(g) not in handed_out:
                    node.grad = handed_out[id(g)] = g
                else:
                    node.grad = np.array(g, dtype=node.data.dtype)
                if node._backward is None:
                    continue
            for parent, parent_grad in zip(node._parents, node._backward(g)):
                if parent_grad is None or not parent.requires_grad:
                    continue
                if parent_grad.shape != parent.data.shape:
                    parent_grad = _unbroadcast(parent_grad, parent.data.shape)
                key = id(parent)
                previous = grads.get(key)
                grads[key] = parent_grad if previous is None else previous + parent_grad
            if not retain_graph:
                node._backward = _freed_backward
                node._parents = ()

    def _topological_order(self) -> list[Tensor]:
        """Nodes that require grad, every parent before its children (iterative depth-first search,
        so a chain of 100,000 ops does not hit Python's recursion limit)."""
        order: list[Tensor] = []
        visited: set[int] = set()
        stack: list[tuple[Tensor, bool]] = [(self, False)]
        while stack:
            node, children_done = stack.pop()
            if children_done:
                order.append(node)
                continue
            if id(node) in visited:
                continue
            visited.add(id(node))
            if node._backward is _freed_backward:
                _freed_backward(None)
            stack.append((node, True))
            for parent in node._parents:
                if parent.requires_grad and id(parent) not in visited:
                    stack.append((parent, False))
        return order

    # --- elementwise arithmetic ---------------------------------------------------------------

    def __add__(self, other) -> Tensor:
        """d(a+b)/da = 1, d(a+b)/db = 1."""
        parents, b, _ = self._other(other)
        return Tensor.from_op(self.data + b, parents, lambda g: (g, g))

    __radd__ = __add__

    def __sub__(self, other) -> Tensor:
        """d(a-b)/da = 1, d(a-b)/db = -1."""
        parents, b, other = self._other(other)
        return Tensor.from_op(self.data - b, parents,
                            lambda g: (g, -g if other is not None and other.requires_grad else None))

    def __rsub__(self, other) -> Tensor:
        return self._operand(other) - self

    def __mul__(self, other) -> Tensor:
        """d(ab)/da = b, d(ab)/db = a."""
        parents, b, other = self._other(other)
        a = self.data

        def backward(g):
            return (g * b if self.requires_grad else None,
                    g * a if other is not None and other.requires_grad else None)

        return Tensor.from_op(a * b, parents, backward)

    __rmul__ = __mul__

    def __truediv__(self, other) -> Tensor:
        """d(a/b)/da = 1/b, d(a/b)/db = -a/b^2 = -(a/b)/b."""
        parents, b, other = self._other(other)
        a = self.data
        out = a / b

        def backward(g):
            return (g / b if self.requires_grad else None,
                    -g * out / b if other is not None and other.requires_grad else None)

        return Tensor.from_op(out, parents, backward)

    def __rtruediv__(self, other) -> Tensor:
        return self._operand(other) / self

    def __pow__(self, exponent) -> Tensor:
        """d(a^p)/da = p a^(p-1); d(a^p)/dp = a^p ln a (needs a > 0)."""
        if not isinstance(exponent, Tensor) and np.ndim(exponent) == 0:
            p = float(exponent)
            a = self.data
            _check_power_domain(a, p)
            return Tensor.from_op(_power(a, p), (self,), lambda g: (g * p * _power(a, p - 1),))
        exponent = self._operand(exponent)
        a, p = self.data, exponent.data
        _check_power_domain(a, p)
        out = a ** p

        def backward(g):
            return (g * p * a ** (p - 1) if self.requires_grad else None,
                    g * out * np.log(a) if exponent.requires_grad else None)

        return Tensor.from_op(out, (self, exponent), backward)

    def __rpow__(self, base) -> Tensor:
        return self._operand(base) ** self

    def __neg__(self) -> Tensor:
        return Tensor.from_op(-self.data, (self,), lambda g: (-g,))

    # --- matrix product -----------------------------------------------------------------------

    def __matmul__(self, other) -> Tensor:
        """C = A @ B: dA = dC @ B^T, dB = A^T @ dC (batched over leading axes, broadcasting).

        1-D operands follow NumPy: a vector on the left is a row, on the right a column.
        """
        other = self._operand(other)
        a, b = self.data, other.data
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul needs at least 1-D operands, got shapes {a.shape} and {b.shape}; "
                             f"use * to scale by a scalar")
        k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
        if a.shape[-1] != k_b:
            raise ValueError(f"matmul shape mismatch: {a.shape} @ {b.shape} "
                             f"(inner dimensions {a.shape[-1]} and {k_b} differ)")
        try:
            out = a @ b
        except ValueError:
            raise ValueError(f"matmul batch dimensions do not broadcast: {a.shape} @ {b.shape}") from None

        def backward(g):
            # Promote 1-D operands to matrices so one batched formula covers every case.
            a2 = a[None, :] if a.ndim == 1 else a
            b2 = b[:, None] if b.ndim == 1 else b
            g2 = g
            if b.ndim == 1:  # first, so that a 0-d g of vector @ vector becomes (1, 1)
                g2 = np.expand_dims(g2, -1)
            if a.ndim == 1:
                g2 = np.expand_dims(g2, -2)
            grad_a = grad_b = None
            if self.requires_grad:
                grad_a = g2 @ np.swapaxes(b2, -1, -2)
                if a.ndim == 1:
                    grad_a = grad_a[..., 0, :]
            if other.requires_grad:
                if b2.ndim == 2 and a2.ndim > 2:
                    # A weight shared across a batch: one big matmul instead of a batch of them
                    # followed by a sum over the batch.
                    grad_b = a2.reshape(-1, a2.shape[-1]).T @ g2.reshape(-1, g2.shape[-1])
                else:
                    grad_b = np.swapaxes(a2, -1, -2) @ g2
                if b.ndim == 1:
                    grad_b = grad_b[..., 0]
            return grad_a, grad_b

        return Tensor.from_op(out, (self, other), backward)

    def __rmatmul__(self, other) -> Tensor:
        return self._operand(other) @ self

    def matmul(self, other) -> Tensor:
        return self @ other

    # --- reductions ---------------------------------------------------------------------------

    def sum(self, axis=None, keepdims: bool = False) -> Tensor:
        """d(sum x)/dx_i = 1: the gradient is copied back along the summed axes."""
        shape = self.data.shape

        def backward(g):
            if not keepdims and axis is not None:
                g = np.expand_dims(g, axis)
            return (np.broadcast_to(g, shape),)

        return Tensor.from_op(np.sum(self.data, axis=axis, keepdims=keepdims), (self,), backward)

    def mean(self, axis=None, keepdims: bool = False) -> Tensor:
        """The sum divided by the number of entries reduced."""
        total = self.sum(axis=axis, keepdims=keepdims)
        if self.data.size == 0:
            raise ValueError("mean of an empty tensor")
        return total * (total.data.size / self.data.size)

    def _extreme(self, reduce: Callable, axis, keepdims: bool) -> Tensor:
        a = self.data
        try:
            out_keep = reduce(a, axis=axis, keepdims=True)
        except ValueError:   # NumPy's "zero-size array to reduction operation ..."
            raise ValueError(f"{reduce.__name__}() of an empty tensor: shape {a.shape} has no entries "
                             f"{'at all' if axis is None else f'along axis {axis}'}") from None

        def backward(g):
            # The gradient goes to the entries that attain the extreme; ties share it equally.
            mask = a == out_keep
            count = mask.sum(axis=axis, keepdims=True)
            if not keepdims and axis is not None:
                g = np.expand_dims(g, axis)
            return (mask * (g / count.astype(a.dtype)),)

        out = out_keep if keepdims else (out_keep.reshape(()) if axis is None else np.squeeze(out_keep, axis))
        return Tensor.from_op(out, (self,), backward)

    def max(self, axis=None, keepdims: bool = False) -> Tensor:
        """Largest entry; the gradient flows to the argmax (shared equally among ties)."""
        return self._extreme(np.max, axis, keepdims)

    def min(self, axis=None, keepdims: bool = False) -> Tensor:
        """Smallest entry; the gradient flows to the argmin (shared equally among ties)."""
        return self._extreme(np.min, axis, keepdims)

    def var(self, axis=None, keepdims: bool = False, ddof: int = 0) -> Tensor:
        """Variance sum((x - mean)^2) / (N - ddof); d var / dx_i = 2 (x_i - mean) / (N - ddof).

        ddof=0 (NumPy's default, and what layer norm uses), unlike torch.var's default of 1.
        """
        a = self.data
        mean = a.mean(axis=axis, keepdims=True)
        centred = a - mean
        n = a.size // mean.size
        out = (centred * centred).sum(axis=axis, keepdims=keepdims) / (n - ddof)

        def backward(g):
            if not keepdims and axis is not None:
                g = np.expand_dims(g, axis)
            return (g * centred * (2.0 / (n - ddof)),)

        return Tensor.from_op(out, (self,), backward)

    # --- shape -------------------------------------------------------------------------------

    def reshape(self, *shape) -> Tensor:
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        old = self.data.shape
        return Tensor.from_op(self.data.reshape(shape), (self,), lambda g: (g.reshape(old),))

    def flatten(self, start_axis: int = 0) -> Tensor:
        start_axis %= max(self.ndim, 1)
        return self.reshape(self.shape[:start_axis] + (-1,))

    def unsqueeze(self, axis: int) -> Tensor:
        return self.reshape(np.expand_dims(self.data, axis).shape)

    def squeeze(self, axis=None) -> Tensor:
        return self.reshape(np.squeeze(self.data, axis).shape)

    def transpose(self, *axes) -> Tensor:
        """Permute the axes (reverse them when none are given), like ``np.transpose``."""
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        axes = tuple(range(self.ndim))[::-1] if not axes else tuple(a % self.ndim for a in axes)
        inverse = tuple(np.argsort(axes))
        return Tensor.from_op(self.data.transpose(axes), (self,), lambda g: (g.transpose(inverse),))

    permute = transpose

    @property
    def T(self) -> Tensor:
        return self.transpose()

    def swapaxes(self, axis1: int, axis2: int) -> Tensor:
        return Tensor.from_op(self.data.swapaxes(axis1, axis2), (self,),
                            lambda g: (g.swapaxes(axis1, axis2),))

    def expand(self, *shape) -> Tensor:
        """Broadcast to ``shape`` without copying; the engine sums the gradient back."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return Tensor.from_op(np.broadcast_to(self.data, shape), (self,), lambda g: (g,))

    broadcast_to = expand

    def __getitem__(self, index) -> Tensor:
        """Slicing and integer-array indexing. The backward scatters the gradient into zeros; with
        integer arrays an index may repeat (the same token twice in a batch), and then the
        gradients of all its uses add up: this is the embedding lookup's backward."""
        if isinstance(index, Tensor) or (isinstance(index, tuple) and any(isinstance(i, Tensor) for i in index)):
            raise TypeError("index a Tensor with ints, slices or integer NumPy arrays, not with a Tensor")
        a = self.data
        shape, dtype = a.shape, a.dtype
        basic = _is_basic_index(index)

        def backward(g):
            full = np.zeros(shape, dtype=dtype)
            if basic:
                full[index] = g
            elif isinstance(index, np.ndarray) and index.dtype.kind in "iu":
                _scatter_add_rows(full, index, g)
            else:
                np.add.at(full, index, g)
            return (full,)

        return Tensor.from_op(a[index], (self,), backward)

    def split(self, indices_or_sections, axis: int = 0) -> list[Tensor]:
        """Like ``np.split``: equal sections (an int) or cut points (a list of indices)."""
        return split(self, indices_or_sections, axis)

    # --- elementwise functions ----------------------------------------------------------------

    def exp(self) -> Tensor:
        """d e^x / dx = e^x."""
        out = np.exp(self.data)
        return Tensor.from_op(out, (self,), lambda g: (g * out,))

    def log(self) -> Tensor:
        """d ln x / dx = 1/x. Domain x >= 0 (ln 0 = -inf); negative entries raise."""
        a = self.data
        if (a < 0).any():
            raise ValueError("log of a tensor with negative entries (the domain is x >= 0)")
        with np.errstate(divide="ignore"):
            out = np.log(a)
        return Tensor.from_op(out, (self,), lambda g: (g / a,))

    def sqrt(self) -> Tensor:
        """d sqrt(x) / dx = 1 / (2 sqrt(x)). Domain x >= 0; negative entries raise."""
        a = self.data
        if (a < 0).any():
            raise ValueError("sqrt of a tensor with negative entries (the domain is x >= 0)")
        out = np.sqrt(a)
        return Tensor.from_op(out, (self,), lambda g: (g * 0.5 / out,))

    def tanh(self) -> Tensor:
        """d tanh(x) / dx = 1 - tanh(x)^2."""
        out = np.tanh(self.data)
        return Tensor.from_op(out, (self,), lambda g: (g * (1 - out * out),))

    def sigmoid(self) -> Tensor:
        """s(x) = 1 / (1 + e^-x), computed as (1 + tanh(x/2)) / 2, which never overflows;
        d s / dx = s (1 - s)."""
        out = 0.5 * (1 + np.tanh(0.5 * self.data))
        return Tensor.from_op(out, (self,), lambda g: (g * out * (1 - out),))

    def relu(self) -> Tensor:
        """max(x, 0); the derivative is 1 for x > 0 and 0 otherwise (0 at the kink x = 0)."""
        a = self.data
        return Tensor.from_op(np.maximum(a, 0), (self,), lambda g: (g * (a > 0),))

    def gelu(self) -> Tensor:
        """GELU, tanh approximation (as in GPT-2), fused into one op:

            gelu(x) = x/2 (1 + tanh(u)),  u = c (x + 0.044715 x^3),  c = sqrt(2/pi)
            gelu'(x) = (1 + tanh u)/2 + x/2 (1 - tanh(u)^2) c (1 + 3 * 0.044715 x^2)

        ``functional.gelu_composed`` builds the same function from primitives; the tests check
        that both agree in value and gradient.
        """
        x = np.ascontiguousarray(self.data)
        c, a = float(np.sqrt(2.0 / np.pi)), 0.044715
        flat_x = x.reshape(-1)
        t, out = np.empty_like(x), np.empty_like(x)
        flat_t, flat_out = t.reshape(-1), out.reshape(-1)

        # In-place steps with the constants folded, over parts of the array on every core
        # (``parallel.in_parts``): GELU's cost on large activations is passes over memory.
        def forward_part(part):
            xp, tp, op = flat_x[part], flat_t[part], flat_out[part]
            np.multiply(xp, xp, out=tp)
            tp *= c * a
            tp += c
            tp *= xp  # u = x (c + c a x^2)
            np.tanh(tp, out=tp)  # t = tanh(u), kept for backward
            np.multiply(tp, xp, out=op)
            op += xp
            op *= 0.5  # x/2 (1 + t)

        parallel.in_parts(forward_part, x.size)

        def backward(g):
            # gelu'(x) = (1 + t)/2 + k (1 - t)(1 + t) = (1 + t) (1/2 + k (1 - t)),
            # with k = x/2 c (1 + 3 a x^2) = x (c/2 + 3/2 c a x^2)
            flat_g = np.ascontiguousarray(g).reshape(-1)
            d = np.empty_like(x)
            flat_d = d.reshape(-1)

            def backward_part(part):
                xp, tp, dp = flat_x[part], flat_t[part], flat_d[part]
                np.multiply(xp, xp, out=dp)
                dp *= 1.5 * c * a
                dp += 0.5 * c
                dp *= xp  # k
                s = np.subtract(1, tp)
                dp *= s
                dp += 0.5
                np.add(tp, 1, out=s)
                dp *= s
                dp *= flat_g[part]

            parallel.in_parts(backward_part, x.size)
            return (d,)

        return Tensor.from_op(out, (self,), backward)

    def abs(self) -> Tensor:
        """|x|; the derivative is sign(x) (0 at the kink x = 0)."""
        a = self.data
        return Tensor.from_op(np.abs(a), (self,), lambda g: (g * np.sign(a),))

    def clip(self, min=None, max=None) -> Tensor:
        """Clamp into [min, max]; the gradient passes where the input was inside the range."""
        a = self.data
        out = np.clip(a, min, max).astype(a.dtype, copy=False)  # NumPy bounds must not upcast

        def backward(g):
            inside = np.ones(a.shape, dtype=bool)
            if min is not None:
                inside &= a >= min
            if max is not None:
                inside &= a <= max
            return (g * inside,)

        return Tensor.from_op(out, (self,), backward)

    def maximum(self, other) -> Tensor:
        return maximum(self, other)

    def masked_fill(self, mask: np.ndarray, value: float) -> Tensor:
        """Entries where ``mask`` is True become ``value`` (e.g. -inf above the causal diagonal);
        they get no gradient."""
        mask = _bool_mask(mask, "masked_fill")
        a = self.data
        out = np.where(mask, np.asarray(value, dtype=a.dtype), a)
        if out.shape != a.shape:
            raise ValueError(f"masked_fill: mask of shape {mask.shape} does not broadcast to {a.shape}")
        return Tensor.from_op(out, (self,), lambda g: (np.where(mask, 0, g),))

    def astype(self, dtype) -> Tensor:
        """A copy in another float dtype; the gradient is converted back."""
        dtype = np.dtype(dtype)
        if dtype not in _FLOAT_DTYPES:
            raise TypeError(f"Tensor dtype must be float16, float32 or float64, got {dtype}")
        old = self.data.dtype
        return Tensor.from_op(self.data.astype(dtype), (self,), lambda g: (g.astype(old),))


# ----------------------------------------------------------------------------------------------
# Ops on several tensors


def _bool_mask(mask, op: str) -> np.ndarray:
    if isinstance(mask, Tensor):
        raise TypeError(f"{op}: the mask must be a boolean NumPy array, not a Tensor")
    mask = np.asarray(mask)
    if mask.dtype != bool:
        raise TypeError(f"{op}: the mask must be boolean, got {mask.dtype}")
    return mask


def _scatter_add_rows(full: np.ndarray, index: np.ndarray, g: np.ndarray) -> None:
    """full[index[j]] += g[j] for every j, where ``index`` selects rows of ``full``.

    Repeated rows are summed with a sort and ``np.add.reduceat``, which is much faster than
    ``np.add.at`` for the embedding backward (many repeated token ids, wide rows).
    """
    flat = index.reshape(-1)
    rows = g.reshape(flat.size, *full.shape[1:])
    if flat.size == 0:
        return
    flat = np.where(flat < 0, flat + full.shape[0], flat)  # negative indices count from the end
    order = np.argsort(flat, kind="stable")
    sorted_ids = flat[order]
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
    full[sorted_ids[starts]] += np.add.reduceat(rows[order], starts, axis=0)


def _as_tensors(items: Sequence) -> list[Tensor]:
    tensors = [t for t in items if isinstance(t, Tensor)]
    if not tensors:
        raise TypeError("expected at least one Tensor")
    first = tensors[0]
    return [first._operand(t) for t in items]


def where(condition: np.ndarray, x, y) -> Tensor:
    """``x`` where ``condition`` is True, else ``y`` (either may be a number); broadcasts."""
    condition = _bool_mask(condition, "where")
    x, y = _as_tensors([x, y])

    def backward(g):
        return (np.where(condition, g, 0) if x.requires_grad else None,
                np.where(condition, 0, g) if y.requires_grad else None)

    return Tensor.from_op(np.where(condition, x.data, y.data), (x, y), backward)


def maximum(x, y) -> Tensor:
    """Elementwise maximum; at ties each input gets half of the gradient."""
    x, y = _as_tensors([x, y])
    a, b = x.data, y.data

    def backward(g):
        share = ((a > b) + 0.5 * (a == b)).astype(a.dtype)  # fraction of the gradient that goes to x
        return (g * share if x.requires_grad else None,
                g * (1 - share) if y.requires_grad else None)

    return Tensor.from_op(np.maximum(a, b), (x, y), backward)


def concatenate(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis; the gradient is cut back into the same pieces."""
    tensors = _as_tensors(tensors)
    out = np.concatenate([t.data for t in tensors], axis=axis)
    cuts = np.cumsum([t.data.shape[axis] for t in tensors])[:-1]
    return Tensor.from_op(out, tuple(tensors), lambda g: tuple(np.split(g, cuts, axis=axis)))


def stack(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join tensors of one shape along a new axis."""
    tensors = _as_tensors(tensors)
    out = np.stack([t.data for t in tensors], axis=axis)
    axis = axis % out.ndim
    return Tensor.from_op(out, tuple(tensors),
                        lambda g: tuple(np.take(g, i, axis=axis) for i in range(len(tensors))))


def split(x: Tensor, indices_or_sections, axis: int = 0) -> list[Tensor]:
    """Like ``np.split``: ``indices_or_sections`` is a number of equal parts or a list of cut
    points. Each part is a slice of ``x``, so its gradient lands in the right place."""
    n = x.shape[axis]
    if isinstance(indices_or_sections, (int, np.integer)):
        if indices_or_sections <= 0 or n % indices_or_sections:
            raise ValueError(f"split: cannot cut an axis of length {n} into {indices_or_sections} equal parts")
        step = n // indices_or_sections
        bounds = list(range(0, n + 1, step))
    else:
        bounds = [0] + [int(i) for i in indices_or_sections] + [n]
    axis = axis % x.ndim
    lead = (slice(None),) * axis
    return [x[lead + (slice(lo, hi),)] for lo, hi in zip(bounds[:-1], bounds[1:])]
