# %% [markdown]
"""
# 01. Automatic differentiation, from a derivative by hand to a Tensor that trains a network

The question: training a network means nudging every weight against the gradient of the loss,
d loss / d weight, and a GPT has millions of weights. How can a program get all of those
derivatives exactly, for the price of about one more pass through the computation?

The idea: any computation is a chain of small steps whose derivatives we know (a product, a sum,
tanh). The chain rule glues local derivatives together,

    if  L = f(y)  and  y = g(x),  then  dL/dx = dL/dy * dy/dx,

and when a value v feeds several later steps c_1 ... c_k, their contributions add up:

    dL/dv = sum_i  dL/dc_i * dc_i/dv.

So record the steps as a graph while computing forward, then walk it backwards once, from the
loss to the inputs: each node receives dL/d(node) from the nodes that used it, multiplies by its
own local derivatives and passes the products on to its parents. That walk is reverse-mode
automatic differentiation ("backpropagation"). It visits every node once, in reverse topological
order, so the gradients of all the weights together cost about as much as a forward pass or two.

The lesson goes from a derivative worked out by hand (section 1), to the chain rule on scalars
with a throwaway `Value` class (2), to the package's `Tensor`, whose graph we print
(3), to checking gradients against finite differences (4), to a small network that learns to
separate two interleaved spirals with nothing but Tensor ops and a hand-written SGD loop (5).

Builds on: nothing (NumPy and the chain rule).
Adds: `Tensor`, `Tensor.from_op` (how an op is written), `no_grad`, `functional` (softmax,
cross_entropy, ...), `gradcheck`.

Run: python lessons/01_autograd.py            (under 10 seconds)
     python lessons/01_autograd.py --quick    (about 2 seconds)
"""

# %% [markdown]
# ## Settings

# %%
import math

import matplotlib.pyplot as plt
import numpy as np

from tinygrad_llm import GradcheckError, Tensor, functional, gradcheck, no_grad
from tinygrad_llm.course import quick_mode, save_figure
from tinygrad_llm.course.figures import label_axes, legend_outside, line_style

SEED = 1
QUICK = quick_mode()
TRAIN_POINTS = 400 if QUICK else 1000     # points in the training set (both spirals together)
TEST_POINTS = 1000                        # a fresh sample of the same spirals, never trained on
SPIRAL_TURNS = 1.75                       # how many times each arm winds around the centre
SPIRAL_NOISE = 0.04                       # scatter around the arms, in the data's units
HIDDEN = 32 if QUICK else 64              # width of the two hidden layers
STEPS = 2000 if QUICK else 3000           # full-batch gradient descent steps
LEARNING_RATE = 0.3
GRID = 100 if QUICK else 250              # the decision-boundary picture has GRID x GRID points
ACCURACY_TARGET = 0.95                    # what the closing asserts demand on the test set

rng = np.random.default_rng(SEED)


# %% [markdown]
# ## 1. A derivative by hand, and by finite differences
# Take f(x) = x^3 - 3x. The rules of calculus give f'(x) = 3x^2 - 3, so f'(0.7) = 3 * 0.49 - 3 = -1.53.
# Without calculus we can still estimate the slope from two nearby values:
#
#     forward difference:  (f(x + h) - f(x)) / h            error about h (f''/2)
#     central difference:  (f(x + h) - f(x - h)) / (2h)     error about h^2 (f'''/6)
#
# Smaller h is better, until it is not: f(x + h) and f(x) agree in almost all of their 16
# significant digits, so their difference keeps only a few, and the rounding error grows like
# 1e-16 / h. The best central difference in float64 sits near h = 1e-5 and is good to about
# 1e-10; that is why `gradcheck` (section 4) runs in float64 with eps = 1e-6.

# %%
def f(x: float) -> float:
    return x ** 3 - 3 * x


def f_prime(x: float) -> float:
    return 3 * x ** 2 - 3


x0 = 0.7
exact = f_prime(x0)
print(f"f'({x0}) by hand: {exact:.12f}")
print(f"{'h':>8}  {'forward':>18}  {'error':>8}  {'central':>18}  {'error':>8}")
central_errors = {}
for h in (1e-1, 1e-3, 1e-5, 1e-7, 1e-9, 1e-11):
    forward = (f(x0 + h) - f(x0)) / h
    central = (f(x0 + h) - f(x0 - h)) / (2 * h)
    central_errors[h] = abs(central - exact)
    print(f"{h:8.0e}  {forward:18.12f}  {abs(forward - exact):8.1e}  "
          f"{central:18.12f}  {central_errors[h]:8.1e}")
best_h = min(central_errors, key=central_errors.get)
print(f"best central difference at h = {best_h:.0e}: error {central_errors[best_h]:.1e} "
      f"(reference: truncation ~h^2 meets rounding ~1e-16/h near h = 1e-5)")


# %% [markdown]
# ## 2. The chain rule on scalars
# One neuron with one input, and a squared error against a target t:
#
#     z = w x + b,    y = tanh(z),    d = y - t,    L = d^2
#
# Backwards, one local derivative at a time, each multiplied by what arrived from above:
#
#     dL/dd = 2d
#     dL/dy = dL/dd * 1
#     dL/dz = dL/dy * (1 - y^2)          since tanh'(z) = 1 - tanh(z)^2
#     dL/dw = dL/dz * x,   dL/db = dL/dz * 1,   dL/dx = dL/dz * w

# %%
x_in, w_in, b_in, target = 0.5, -1.5, 0.2, 1.0

z = w_in * x_in + b_in
y = math.tanh(z)
d = y - target
loss = d * d
dL_dd = 2 * d
dL_dy = dL_dd * 1.0
dL_dz = dL_dy * (1 - y * y)
by_hand = {"w": dL_dz * x_in, "b": dL_dz * 1.0, "x": dL_dz * w_in}
print(f"forward:  z = {z:.4f}, y = {y:.4f}, d = {d:.4f}, L = {loss:.6f}")
print(f"backward: dL/dd = {dL_dd:.6f}, dL/dy = {dL_dy:.6f}, dL/dz = {dL_dz:.6f}")
print("by hand:  " + ", ".join(f"dL/d{name} = {value:.6f}" for name, value in by_hand.items()))


# %% [markdown]
# The same steps, automated. `Value` is a naive version that lives only in this lesson: a number
# that remembers its parents and the local derivative d(self)/d(parent) towards each of them.
# Its `backward` is the chain rule as recursion: add what arrived, then pass
# upstream * local_derivative to every parent.

# %%
class Value:
    """A scalar that remembers where it came from (a teaching toy; the package has Tensor)."""

    calls = 0  # how many times backward() has run, over all Values

    def __init__(self, data: float, parents: tuple = (), local_grads: tuple = ()):
        self.data = data
        self.grad = 0.0
        self.parents = parents          # the Values this one was computed from
        self.local_grads = local_grads  # d(self)/d(parent), one per parent, fixed at creation

    def __add__(self, other: "Value") -> "Value":
        return Value(self.data + other.data, (self, other), (1.0, 1.0))

    def __mul__(self, other: "Value") -> "Value":
        return Value(self.data * other.data, (self, other), (other.data, self.data))

    def tanh(self) -> "Value":
        t = math.tanh(self.data)
        return Value(t, (self,), (1 - t * t,))

    def backward(self, upstream: float = 1.0) -> None:
        Value.calls += 1
        self.grad += upstream  # += : a Value used twice receives two contributions
        for parent, local in zip(self.parents, self.local_grads):
            parent.backward(upstream * local)


w_v, b_v, x_v = Value(w_in), Value(b_in), Value(x_in)
d_v = (w_v * x_v + b_v).tanh() + Value(-target)   # Value has no subtraction: add -t
(d_v * d_v).backward()
by_value = {"w": w_v.grad, "b": b_v.grad, "x": x_v.grad}

# The package's Tensor does the same for arrays of any shape; here 0-d arrays, in float64.
w_t, b_t, x_t = (Tensor(v, dtype=np.float64, requires_grad=True) for v in (w_in, b_in, x_in))
d_t = (w_t * x_t + b_t).tanh() - target
(d_t * d_t).backward()
by_tensor = {"w": w_t.grad.item(), "b": b_t.grad.item(), "x": x_t.grad.item()}

print(f"{'':6}{'by hand':>12}{'Value':>12}{'Tensor':>12}")
for name in by_hand:
    print(f"dL/d{name}  {by_hand[name]:12.6f}{by_value[name]:12.6f}{by_tensor[name]:12.6f}")
scalar_error = max(abs(by_hand[k] - by_value[k]) + abs(by_hand[k] - by_tensor[k]) for k in by_hand)
print(f"largest disagreement: {scalar_error:.1e}   (reference: 0 up to rounding)")


# %% [markdown]
# The recursion is correct, but it walks every *path* from the output back to an input, and the
# number of paths can grow exponentially. Take y = x, then n times y = y + y, so y = 2^n x:
# every step uses the previous y twice, so there are 2^n paths, and `Value.backward` runs
# 2^(n+1) - 1 times. It also recurses as deep as the graph, so a chain of a few thousand steps
# would hit Python's recursion limit.
#
# `Tensor.backward` first sorts the graph in topological order (every node after the nodes it
# was computed from, found with an explicit stack instead of recursion), then visits the nodes
# in reverse: each node once, after all of its uses have handed in their gradient.

# %%
print(f"{'n':>3}  {'dy/dx':>8}  {'Value.backward calls':>20}  {'Tensor nodes visited':>20}")
path_counts = {}
for n in (4, 8, 12, 16):
    x_v = Value(1.0)
    y_v = x_v
    for _ in range(n):
        y_v = y_v + y_v
    Value.calls = 0
    y_v.backward()
    path_counts[n] = Value.calls

    x_t = Tensor(1.0, dtype=np.float64, requires_grad=True)
    y_t = x_t
    for _ in range(n):
        y_t = y_t + y_t
    nodes = len(y_t._topological_order())
    y_t.backward()
    assert x_v.grad == x_t.grad.item() == 2.0 ** n
    print(f"{n:3d}  {x_v.grad:8.0f}  {Value.calls:20,d}  {nodes:20d}")
print("reference: 2^(n+1) - 1 calls for the recursion, n + 1 nodes for the topological walk")


# %% [markdown]
# ## 3. The Tensor and its graph
# A `Tensor` wraps a NumPy array. Every op on Tensors that require grad makes a new Tensor that
# keeps its parents (`_parents`) and a small `backward` function: given dL/d(output), it returns
# one gradient per parent. Here is the graph of a small layer with a mean squared output, in
# topological order (every node below its parents); `backward` walks the list from the bottom
# up. Each op's backward function is defined inside the op, so its Python name says which op
# made the node.

# %%
def op_name(node: Tensor) -> str:
    if node.is_leaf:
        return f"leaf '{node.name}'"
    # e.g. "Tensor.__matmul__.<locals>.backward" -> "matmul"
    return node._backward.__qualname__.split(".<locals>")[0].removeprefix("Tensor.").strip("_")


x = Tensor(rng.standard_normal((4, 3)), requires_grad=True, name="x")   # float64, like its data
w = Tensor(rng.standard_normal((3, 2)), requires_grad=True, name="w")
b = Tensor(rng.standard_normal(2), requires_grad=True, name="b")
z = x @ w + b        # (4, 2): b is broadcast over the 4 rows
h = z.tanh()
loss = (h * h).mean()
z.retain_grad()      # keep dL/dz too; by default only leaves keep their gradient

order = loss._topological_order()
position = {id(node): i for i, node in enumerate(order)}
print(f"{'#':>2}  {'op':<10}  {'shape':<8}  parents (by #)")
for i, node in enumerate(order):
    parents = ", ".join(f"#{position[id(p)]}" for p in node._parents)
    print(f"{i:2d}  {op_name(node):<10}  {str(node.shape):<8}  {parents}".rstrip())
print("(mean is built from sum and a multiplication by 1/8, so it adds two nodes; h * h is one "
      "node whose two parents are the same tensor)")


# %% [markdown]
# Broadcasting has a gradient too. The add copied b into every row of x @ w, and the derivative
# of a copy is the sum over the copies: dL/db = sum over rows of dL/dz. The engine does this
# summing for every op in one place, so the ops themselves never think about broadcasting.
#
# After `backward` the graph is freed: the intermediate arrays that the backward functions kept
# are released, which is what keeps memory flat over many training steps. Going through it a
# second time is an error (`backward(retain_graph=True)` keeps it).

# %%
loss.backward()
broadcast_error = np.abs(b.grad - z.grad.sum(axis=0)).max()
print(f"b.grad               = {b.grad}")
print(f"z.grad.sum(axis=0)   = {z.grad.sum(axis=0)}   (reference)")
print(f"shapes: b {b.shape}, b.grad {b.grad.shape}, z.grad {z.grad.shape}; "
      f"largest difference {broadcast_error:.1e}")
try:
    loss.backward()
except RuntimeError as error:
    print(f"second backward: RuntimeError: {error}")


# %% [markdown]
# ## 4. Checking gradients
# A backward function is hand-written, so it can be wrong while the forward is right, and a
# wrong gradient does not crash: training just goes worse. `gradcheck` compares every entry of
# the analytic gradient with a central difference (section 1), in float64. It reduces the output
# to a scalar with fixed random weights, L = sum(f(x) * r), because a plain sum hands every
# backward an upstream gradient of ones, and some bugs only show with a real one.
#
# First a correct composition of ops, then an op of our own. A new op is a NumPy forward plus a
# backward closure, joined into a node by `Tensor.from_op(output, parents, backward)`: that is how
# every op in the package is written. Softplus, log(1 + e^x), has derivative sigmoid(x); the
# broken version forgets to multiply by the upstream gradient g.

# %%
def layer(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
    return (x @ w + b).tanh()


def softplus(x: Tensor) -> Tensor:
    """log(1 + e^x); d/dx = sigmoid(x) = (1 + tanh(x/2)) / 2."""
    sigmoid = 0.5 * (1 + np.tanh(0.5 * x.data))  # captured by the closure, not recomputed
    # logaddexp(0, x) = log(e^0 + e^x), without overflowing for large x
    return Tensor.from_op(np.logaddexp(0, x.data), (x,), lambda g: (g * sigmoid,))


def softplus_broken(x: Tensor) -> Tensor:
    sigmoid = 0.5 * (1 + np.tanh(0.5 * x.data))
    return Tensor.from_op(np.logaddexp(0, x.data), (x,), lambda g: (sigmoid,))  # forgot the g *


x = Tensor(rng.standard_normal((4, 3)), requires_grad=True)   # float64 data: gradcheck needs it
w = Tensor(rng.standard_normal((3, 2)), requires_grad=True)
b = Tensor(rng.standard_normal(2), requires_grad=True)
s = Tensor(rng.standard_normal((3, 5)), requires_grad=True)
layer_ok = gradcheck(layer, x, w, b)
softplus_ok = gradcheck(softplus, s)
print(f"gradcheck(layer):           {layer_ok}")
print(f"gradcheck(softplus):        {softplus_ok}")
try:
    gradcheck(softplus_broken, s)
    broken_caught = False
except GradcheckError as error:
    broken_caught = True
    print(f"gradcheck(softplus_broken): GradcheckError: {error}")

# Why the random weights: with a plain sum, g is all ones and the bug is invisible.
s.grad = None
softplus(s).sum().backward()
right = s.grad
s.grad = None
softplus_broken(s).sum().backward()
plain_sum_difference = np.abs(s.grad - right).max()
print(f"with a plain sum, broken and correct gradients differ by {plain_sum_difference:.1e} "
      f"(the bug is there, the check cannot see it)")


# %% [markdown]
# `functional` holds the functions a language model is made of. The hot ones exist twice: a
# *fused* op with a derivative worked out on paper (softmax: dx = p * (g - sum(g * p))), one
# graph node and a few NumPy calls, and a *composed* reference built from Tensor primitives
# (exp, sum, division), whose gradient the engine derives by itself. They must agree.

# %%
logits = Tensor(3 * rng.standard_normal((4, 6)), requires_grad=True)
upstream = rng.standard_normal((4, 6))
gradients, values = [], []
for softmax in (functional.softmax, functional.softmax_composed):
    logits.grad = None
    p = softmax(logits)
    p.backward(upstream)
    values.append(p.data)
    gradients.append(logits.grad)
fused_value_error = np.abs(values[0] - values[1]).max()
fused_grad_error = np.abs(gradients[0] - gradients[1]).max()
fused_ok = gradcheck(functional.softmax, logits) and gradcheck(functional.softmax_composed, logits)
fused_nodes = len(functional.softmax(logits)._topological_order()) - 1
composed_nodes = len(functional.softmax_composed(logits)._topological_order()) - 1
print(f"fused vs composed softmax: values differ by {fused_value_error:.1e}, "
      f"gradients by {fused_grad_error:.1e} (reference: ~1e-16, float64 rounding)")
print(f"gradcheck on both: {fused_ok}; graph nodes: fused {fused_nodes}, composed {composed_nodes}")


# %% [markdown]
# ## 5. A tiny network learns two spirals
# Two classes of points wound around each other: no straight line separates them, so a linear
# classifier does little better than a coin. A multi-layer perceptron (MLP) with two hidden layers of tanh
# units can bend its decision boundary around the arms.
#
#     h1 = tanh(x W1 + b1),   h2 = tanh(h1 W2 + b2),   logits = h2 W3 + b3
#     loss = cross_entropy(logits, labels) = mean over points of -log softmax(logits)[label]
#
# There is no layer or optimizer class yet (later lessons add them): the weights are plain
# Tensors, and a step of gradient descent is three lines: reset the gradients, backward, then
# w -= lr * w.grad for every weight.

# %%
def two_spirals(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n points (float32, shape (n, 2), inside about [-1, 1]^2) and labels 0/1, shape (n,).

    Arm k is the curve r(t) = t (cos t, sin t), rotated by k * 180 degrees. The square root
    spreads the points evenly along the arm's length instead of crowding the centre.
    """
    theta_max = SPIRAL_TURNS * 2 * np.pi
    t = np.sqrt(rng.uniform(0.02, 1.0, n)) * theta_max
    labels = rng.integers(0, 2, n)
    sign = np.where(labels == 0, 1.0, -1.0)[:, None]
    points = sign * np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / theta_max
    points += SPIRAL_NOISE * rng.standard_normal((n, 2))
    return points.astype(np.float32), labels


def init_mlp(sizes: list[int], rng: np.random.Generator) -> list[Tensor]:
    """[W1, b1, W2, b2, ...]; W ~ N(0, 1/fan_in) keeps the pre-activations near unit scale."""
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        params.append(Tensor(rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in),
                             dtype=np.float32, requires_grad=True))
        params.append(Tensor(np.zeros(fan_out), dtype=np.float32, requires_grad=True))
    return params


def mlp(params: list[Tensor], x: Tensor) -> Tensor:
    """tanh between layers, none after the last: the output is logits."""
    for i in range(0, len(params), 2):
        x = x @ params[i] + params[i + 1]    # (N, fan_in) @ (fan_in, fan_out) + (fan_out,)
        if i + 2 < len(params):
            x = x.tanh()
    return x


def accuracy(params: list[Tensor], points: np.ndarray, labels: np.ndarray) -> float:
    with no_grad():  # evaluation needs no gradients, so no graph is recorded
        return float((mlp(params, Tensor(points)).data.argmax(axis=1) == labels).mean())


def train(sizes: list[int], points: np.ndarray, labels: np.ndarray,
          rng: np.random.Generator) -> tuple[list[Tensor], list[float]]:
    """Full-batch gradient descent from a fresh init; returns the weights and the loss per step."""
    params = init_mlp(sizes, rng)
    inputs = Tensor(points)          # data, not a weight: requires_grad stays False
    losses = []
    for step in range(STEPS):
        loss = functional.cross_entropy(mlp(params, inputs), labels)
        for p in params:
            p.grad = None            # gradients add up across backward calls: reset them first
        loss.backward()
        for p in params:
            p.data -= LEARNING_RATE * p.grad   # in place, on the array: not an op to record
        losses.append(loss.item())
        if step % (STEPS // 5) == 0 or step == STEPS - 1:
            print(f"  step {step:5d}  loss {losses[-1]:.4f}  "
                  f"train accuracy {accuracy(params, points, labels):.3f}")
    return params, losses


train_points, train_labels = two_spirals(TRAIN_POINTS, rng)
test_points, test_labels = two_spirals(TEST_POINTS, rng)
print(f"{TRAIN_POINTS} training points, {TEST_POINTS} test points, class balance "
      f"{train_labels.mean():.2f}")

print("linear classifier (no hidden layer):")
linear_params, linear_losses = train([2, 2], train_points, train_labels, rng)
print(f"MLP 2 -> {HIDDEN} -> {HIDDEN} -> 2:")
mlp_params, mlp_losses = train([2, HIDDEN, HIDDEN, 2], train_points, train_labels, rng)

linear_accuracy = accuracy(linear_params, test_points, test_labels)
test_accuracy = accuracy(mlp_params, test_points, test_labels)
loss_drop = mlp_losses[0] / mlp_losses[-1]
print(f"test accuracy: MLP {test_accuracy:.3f}, linear {linear_accuracy:.3f} "
      f"(reference: chance 0.5)")
print(f"MLP loss: {mlp_losses[0]:.4f} -> {mlp_losses[-1]:.4f} ({loss_drop:.0f}x lower; "
      f"reference: ln 2 = {math.log(2):.4f} for a 50/50 guess)")


# %% [markdown]
# The loss curve in the figure below tells the story of the run: hundreds of steps a little
# under ln 2, where the network does hardly better than the straight line, then a steep fall once
# its hidden units bend the boundary around the arms. An occasional spike is a step that
# overshot: plain gradient descent with a fixed learning rate has no brake (Adam, in a later
# lesson, adapts the step to each weight).
#
# The decision boundary: the network's probability of class 1 at every point of a grid.
# A grid of GRID^2 points is a big batch, and nothing will be differentiated, so it runs under
# `no_grad()`: no backward functions are created and no intermediate arrays are kept.

# %%
axis = np.linspace(-1.3, 1.3, GRID, dtype=np.float32)
grid_x, grid_y = np.meshgrid(axis, axis)
grid = np.stack([grid_x.ravel(), grid_y.ravel()], axis=1)     # (GRID^2, 2)
with no_grad():
    probabilities = functional.softmax(mlp(mlp_params, Tensor(grid)))
print(f"grid of {grid.shape[0]:,} points under no_grad: requires_grad = "
      f"{probabilities.requires_grad}, parents kept = {len(probabilities._parents)}")
class_one = probabilities.data[:, 1].reshape(GRID, GRID)

fig, (ax_loss, ax_plane) = plt.subplots(1, 2, figsize=(11, 4.6))
ax_loss.plot(linear_losses, label="linear", color=line_style(0)["color"])
ax_loss.plot(mlp_losses, label=f"MLP, 2 hidden layers of {HIDDEN}", color=line_style(1)["color"])
ax_loss.axhline(math.log(2), color="grey", linestyle=":", label="ln 2 (a 50/50 guess)")
ax_loss.set_yscale("log")
label_axes(ax_loss, "step", "training loss (cross-entropy, log scale)", "Gradient descent on the spirals")
legend_outside(ax_loss, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2)
ax_plane.contourf(grid_x, grid_y, class_one, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.6)
ax_plane.contour(grid_x, grid_y, class_one, levels=[0.5], colors="k", linewidths=1)
ax_plane.scatter(*test_points.T, c=test_labels, cmap="RdBu_r", s=6, edgecolors="none")
ax_plane.set_aspect("equal")
label_axes(ax_plane, "x1 (first input coordinate)", "x2 (second input coordinate)")
ax_plane.set_title(f"Decision boundary (test accuracy {test_accuracy:.1%})")
save_figure(fig, "01_spirals")


# %% [markdown]
# ## Closing checks
# What the text above claims, asserted.

# %%
assert central_errors[1e-5] < 1e-8 < central_errors[1e-1], "central differences behave as in section 1"
assert scalar_error < 1e-12, "hand, Value and Tensor agree on the scalar chain rule"
assert path_counts[16] == 2 ** 17 - 1, "the naive recursion walks every path"
assert broadcast_error < 1e-12, "the broadcast gradient is the sum over rows"
assert layer_ok and softplus_ok, "gradcheck passes on correct ops"
assert broken_caught, "gradcheck catches the broken backward"
assert plain_sum_difference == 0, "a plain-sum check would have missed it"
assert fused_ok and fused_value_error < 1e-12 and fused_grad_error < 1e-12, "fused softmax == composed"
assert test_accuracy > ACCURACY_TARGET, f"the MLP separates the spirals ({test_accuracy:.3f})"
assert linear_accuracy < 0.75, "a straight line cannot"
assert loss_drop > 10, f"the MLP's loss fell by a clear factor ({loss_drop:.1f}x)"
print("all checks passed")


# %% [markdown]
# ## Exercises
# Each exercise is one file you edit; its checker runs your answer on tiny inputs in seconds and,
# when it is not right yet, says what kind of result it expected and gives a hint.
#
# 1. **Central differences by hand.** Write central differences: the gradient of a scalar function f
#    at x, one entry at a time. Autograd must agree with it; that is how lesson 01 trusts every op.
#    Edit `exercises/01_1.py`, then run `tinygrad-llm exercise check 01.1`.
# 2. **Predict a gradient: a value used four times.** Predict dy/dx of y = x * x * x + x at x = 2
#    before running the engine, then check. Edit `exercises/01_2.py`, then run `tinygrad-llm exercise
#    check 01.2`.
#
# `python -m pytest -m exercises` checks every answer at once. Reference solutions are in
# `exercises/solutions/`: look there after you have tried.
