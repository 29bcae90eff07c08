"""Compiled mode against eager mode: every op, random graphs, MLPs, the tracing limits, errors.

The python backend replays eager mode's own arithmetic in eager order, so it must agree bit for
bit. The numpy backend sums fused terms in another order (matrix products, reductions), so it
agrees to rounding: 1e-12 relative.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from catalog import CASES
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import backprop
from backprop import MLP, Value, no_grad
from backprop.compiled import LeafMismatchError, TraceError, numpy_backend
from backprop.ops import OPS, SCALAR, Op

REL = {"numpy": 1e-12, "python": 0.0}


@pytest.fixture(params=["numpy", "numpy-vectorized", "python"])
def backend(request, monkeypatch):
    """Each backend; "numpy-vectorized" turns off the numpy backend's scalar runs for tiny
    groups, so that small test graphs go through the array code they stand in for."""
    if request.param == "numpy-vectorized":
        monkeypatch.setattr(numpy_backend, "TINY", 0)
        return "numpy"
    return request.param


def same(a: float, b: float, rel: float) -> bool:
    """Equal, both nan, or within rel (rel=0: bit for bit)."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if a == b:
        return True
    return rel > 0 and abs(a - b) <= rel * max(abs(a), abs(b))


def eager(build, leaves):
    """Build and backpropagate eagerly; return (root value, leaf grads), grads reset after."""
    for v in leaves:
        v.grad = 0.0
    root = build()
    root.backward()
    grads = [v.grad for v in leaves]
    for v in leaves:
        v.grad = 0.0
    return root.data, grads


def compiled(build, leaves, backend):
    """Trace once, then replay: (root value, leaf grads) from program.forward/backward."""
    root = build()
    program = backprop.compile(root, backend=backend)
    for v in leaves:
        v.grad = 0.0
    value = program.forward()
    program.backward()
    grads = [v.grad for v in leaves]
    for v in leaves:
        v.grad = 0.0
    return value, grads


def assert_agree(build, leaves, backend):
    value, grads = eager(build, leaves)
    c_value, c_grads = compiled(build, leaves, backend)
    rel = REL[backend]
    assert same(c_value, value, rel), (c_value, value)
    for i, (g, e) in enumerate(zip(c_grads, grads)):
        assert same(g, e, rel), (i, g, e)


# ---- every op -------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_every_op_matches_eager(case, backend):
    rng = random.Random(case.name)
    lo = 0.1 if case.positive else case.low
    # many copies side by side: one level, so the numpy backend runs them as one array op
    leaves = [[Value(rng.uniform(lo, case.high)) for _ in range(case.arity)] for _ in range(30)]
    flat = [v for row in leaves for v in row]

    def build():
        return sum(case.ours(*row) * (i + 1) for i, row in enumerate(leaves))

    assert_agree(build, flat, backend)


def test_every_op_of_the_table_is_compiled():
    covered = set()
    for case in CASES:
        root = case.ours(*[Value(0.7)] * case.arity)
        program = backprop.compile(root)
        covered.update(line.split()[2] for line in program.listing().splitlines()[1:])
    assert set(OPS) <= covered


# Undefined or overflowing maths gives nan or inf silently, in compiled mode as in eager mode
EDGES = [
    lambda x: (x * 1000.0).tanh(),
    lambda x: (x * -1000.0).sigmoid(),
    lambda x: (x * 1000.0).exp(),
    lambda x: (x - 1.0).log(),
    lambda x: (x - 0.5).log(),
    lambda x: (x - 0.5).sqrt(),
    lambda x: 1.0 / (x - 0.5),
    lambda x: (x - 0.5) ** -1,
    lambda x: (x - 1.0) ** 0.5,
    lambda x: (x - 1.0) ** x,
    lambda x: (x * 0.0) ** x,
    lambda x: 0.0**x,
    lambda x: (-2.0) ** x,
    lambda x: (x * math.inf).relu(),
    lambda x: (x * math.nan).relu() + x,
    lambda x: abs(x * math.inf) - x * math.inf,
    lambda x: (x * 1e308) * (x * 1e308),
]


@pytest.mark.parametrize("edge", range(len(EDGES)))
def test_nan_and_inf_like_eager(edge, backend):
    xs = [Value(0.5), Value(-0.5), Value(0.0), Value(2.0)]
    assert_agree(lambda: sum(EDGES[edge](x) for x in xs), xs, backend)


# ---- graphs ---------------------------------------------------------------------------------

UNARY = {
    "neg": lambda a: -a,
    "exp": lambda a: a.exp(),
    "log": lambda a: a.log(),
    "tanh": lambda a: a.tanh(),
    "sigmoid": lambda a: a.sigmoid(),
    "relu": lambda a: a.relu(),
    "sqrt": lambda a: a.sqrt(),
    "abs": lambda a: abs(a),
    "square": lambda a: a**2,
    "powc": lambda a: a**-1.5,
    "rpow": lambda a: 1.5**a,
    "scale": lambda a: 0.5 * a,
}
BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "pow": lambda a, b: abs(a) ** b,
}

graphs = st.lists(
    st.tuples(
        st.sampled_from(sorted(UNARY) + sorted(BINARY) * 2),
        st.integers(0, 10**6),
        st.integers(0, 10**6),
    ),
    min_size=1,
    max_size=25,
)


def edge_gradients(node: Value) -> tuple[float, ...]:
    """What node's backward sends down each of its edges (after an eager backward)."""
    if node._fn is None:
        return ()
    xs = [v.data for v in node._prev] + ([node._arg] if node._fn.has_arg else [])
    return tuple(node._fn.backward(SCALAR, node.grad, node.data, *xs))


# the backend fixture only sets a module constant for the whole test: safe to share
@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,  # a fixed set of graphs: tolerances on reordered sums never flake
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    data=st.lists(st.floats(-2.0, 2.0), min_size=1, max_size=4),
    steps=graphs,
    batch=st.integers(1, 3),
)
def test_random_graphs_match_eager(backend, data, steps, batch):
    """Random DAGs with reused nodes; `batch` copies side by side exercise the grouping."""
    if backend == "numpy":
        # reordered sums are only as good as the graph's conditioning: keep inputs away from 0
        # and from the huge or tiny values that amplify a last-bit difference without bound
        data = [math.copysign(0.25 + 0.875 * abs(x), x) for x in data]
    leaves = [Value(x) for x in data]

    def build():
        roots = []
        for copy in range(batch):
            nodes = [v * (copy + 1.0) for v in leaves] if copy else list(leaves)
            for name, i, j in steps:
                a, b = nodes[i % len(nodes)], nodes[j % len(nodes)]
                nodes.append(UNARY[name](a) if name in UNARY else BINARY[name](a, b))
            roots.append(sum(nodes[-3:]))
        return sum(roots)

    value, grads = eager(build, leaves)
    c_value, c_grads = compiled(build, leaves, backend)
    if backend == "python":  # eager's arithmetic in eager's order: bit for bit, nan and inf too
        assert same(c_value, value, 0.0)
        assert all(same(g, e, 0.0) for g, e in zip(c_grads, grads))
        return
    # The numpy backend adds fused terms in another order. That changes the rounding: by
    # about 1e-16 of the largest value a sum passes through (a gradient sums the gradients its
    # node's edges carry), and, where a result is that
    # sensitive, by as much as nudging the inputs' last bits changes eager mode itself. So judge
    # finite results, within 1e-12 relative plus those two allowances.
    assume(all(map(math.isfinite, [value, *grads])))
    root = build()
    root.backward()
    nodes = root.topological_order()
    data_scale = max(abs(v.data) for v in nodes)
    grad_scale = max(abs(g) for v in nodes for g in (v.grad, *edge_gradients(v)))
    rng = random.Random(0)
    sensitivity = [0.0] * (1 + len(grads))
    for _ in range(3):
        for v, x in zip(leaves, data):
            v.data = x * (1 + rng.choice([-4, -1, 1, 4]) * 2**-52)
        nudged = eager(build, leaves)
        for k, (n, e) in enumerate(zip([nudged[0], *nudged[1]], [value, *grads])):
            sensitivity[k] = max(sensitivity[k], abs(n - e) if math.isfinite(n) else math.inf)
    for v, x in zip(leaves, data):
        v.data = x
    for k, (c, e) in enumerate(zip([c_value, *c_grads], [value, *grads])):
        scale = data_scale if k == 0 else grad_scale
        assert abs(c - e) <= 1e-12 * (abs(e) + scale) + 100 * sensitivity[k], (k, c, e)


def test_reused_nodes_get_every_edge(backend):
    x, y = Value(1.5), Value(-2.0)

    def build():
        s = x * y  # used four times
        return x * x + (s + s) * s + x / s - s.tanh() * x

    assert_agree(build, [x, y], backend)


def test_sums_of_every_shape(backend):
    """Chains, trees, subtractions, uneven lengths and a shared weight: each fusion path."""
    rng = random.Random(3)
    xs = [Value(rng.uniform(-1, 1)) for _ in range(40)]
    shared = Value(0.3)

    def build():
        chain = sum(x * shared for x in xs)  # one weight read by every term
        uneven = [sum(xs[: k + 2]) for k in range(10)]  # sums of 2..11 terms, one level
        tree = (xs[0] + xs[1]) + (xs[2] - (xs[3] + xs[4]))
        minus = xs[5] - xs[6] * xs[7] - xs[8] * 2.0
        return chain * sum(u.tanh() for u in uneven) + tree * minus

    assert_agree(build, xs + [shared], backend)


def batch_mlp(activation, seed=0, points=12, sizes=(3, [5, 4, 1])):
    rng = random.Random(seed)
    model = MLP(sizes[0], sizes[1], activation=activation, seed=seed)
    xs = [[Value(rng.uniform(-1, 1)) for _ in range(sizes[0])] for _ in range(points)]
    ys = [rng.choice([-1.0, 1.0]) for _ in range(points)]

    def build():
        scores = [model(x) for x in xs]
        data_loss = sum((s - y) ** 2 for s, y in zip(scores, ys)) * (1.0 / points)
        return data_loss + 1e-4 * sum(p * p for p in model.parameters())

    return model, xs, build


@pytest.mark.parametrize("activation", ["tanh", "relu", "sigmoid", "linear"])
def test_mlp_over_a_batch_matches_eager(activation, backend):
    model, xs, build = batch_mlp(activation)
    leaves = model.parameters() + [v for row in xs for v in row]
    assert_agree(build, leaves, backend)


def test_mlp_layers_become_matrix_products():
    model, xs, build = batch_mlp("relu", points=20)
    steps = backprop.compile(build()).describe()
    assert steps.count("matmul") == 3, steps  # one per layer, the whole batch at once
    assert "matmul 5x3 @ 3x20 + bias" in steps
    assert "matmul 4x5 @ 5x20 + bias" in steps


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    rows=st.integers(1, 6),
    cols=st.integers(1, 12),
    k=st.integers(1, 4),
    bias=st.booleans(),
    tied=st.booleans(),
    swap=st.booleans(),
)
def test_matrix_products_of_any_shape(rows, cols, k, bias, tied, swap):
    """W @ X blocks of every shape (1-row, 1-column, tied weights, operands swapped in some
    products), through the numpy backend's array code, against eager mode."""
    rng = random.Random(rows * 1000 + cols * 10 + k)
    ws = [[Value(rng.uniform(-1, 1)) for _ in range(k)] for _ in range(rows)]
    if tied:
        ws = [ws[0]] * rows
    bs = [Value(rng.uniform(-1, 1)) for _ in range(rows)]
    xs = [[Value(rng.uniform(-1, 1)) for _ in range(k)] for _ in range(cols)]

    def build():
        outs = []
        for i, w in enumerate(ws):
            for j, x in enumerate(xs):
                terms = [
                    (xi * wi if swap and (i + j) % 3 == 0 else wi * xi) for wi, xi in zip(w, x)
                ]
                outs.append(sum(terms, bs[i]) if bias else sum(terms[1:], terms[0]))
        return sum(o.tanh() * (n + 1) for n, o in enumerate(outs))

    leaves = [v for w in ws for v in w] + bs + [v for x in xs for v in x]
    value, grads = eager(build, leaves)
    tiny = numpy_backend.TINY
    numpy_backend.TINY = 0
    try:
        c_value, c_grads = compiled(build, leaves, "numpy")
    finally:
        numpy_backend.TINY = tiny
    # a gradient here sums up to 12 products that may cancel: judge it against their size
    scale = max(map(abs, grads))
    assert abs(c_value - value) <= 1e-12 * (abs(value) + rows * cols)
    for c, e in zip(c_grads, grads):
        assert abs(c - e) <= 1e-12 * (abs(e) + scale), (c, e)


def test_weight_tying_scatters_every_use():
    """The same weight in several rows of a recovered matrix product (repeated slots)."""
    rng = random.Random(5)
    w = [Value(rng.uniform(-1, 1)) for _ in range(3)]
    rows = [w, [w[1], w[0], w[1]], [w[2], w[2], w[2]]] * 4  # 12 neurons, 3 distinct weights
    xs = [[Value(rng.uniform(-1, 1)) for _ in range(3)] for _ in range(10)]

    def build():
        return sum(sum(a * b for a, b in zip(r, x)).tanh() for r in rows for x in xs)

    leaves = w + [v for x in xs for v in x]
    assert "matmul" in backprop.compile(build()).describe()
    assert_agree(build, leaves, "numpy")


def test_wide_and_deep_sums_are_one_step():
    xs = [Value(float(i % 7) - 3.0) for i in range(20000)]
    products = backprop.compile(sum(x * x for x in xs))
    assert products.describe().count("\n") == 1, products.describe()  # a single dot product
    chain = backprop.compile(sum(x.tanh() for x in xs))  # 20000 adds deep
    assert chain.describe().count("\n") == 2, chain.describe()
    values = [program.forward() for program in (products, chain)]
    for program in (products, chain):
        program.backward()
    assert values[0] == pytest.approx(sum(x.data**2 for x in xs), rel=1e-12)
    assert xs[1].grad == pytest.approx(2 * xs[1].data + (1 - math.tanh(xs[1].data) ** 2))


def test_serial_stretches_between_wide_steps(backend):
    """A chain with one node per level (run as Python floats by the numpy backend) fed by, and
    feeding, wide vectorized steps."""
    rng = random.Random(8)
    xs = [Value(rng.uniform(-1, 1)) for _ in range(40)]
    w = Value(0.9)

    def build():
        y = sum(x.tanh() * w for x in xs)  # wide
        for i in range(30):  # serial
            y = (y * w + 0.1 * i).tanh() if i % 3 else y.sigmoid() - w / (i + 1)
        return sum((x * y).relu() for x in xs)  # wide again, reading the chain's end

    assert_agree(build, xs + [w], backend)


# ---- replay semantics -----------------------------------------------------------------------


def test_forward_sees_changed_parameters(backend):
    model, xs, build = batch_mlp("tanh", seed=2)
    program = backprop.compile(build(), backend=backend, keep_graph=True)
    rng = random.Random(9)
    for p in model.parameters():
        p.data += rng.uniform(-0.1, 0.1)
    for row in xs:
        for v in row:
            v.data = rng.uniform(-1, 1)
    value = program.forward()
    assert program.root.data == value
    assert same(value, build().data, REL[backend])


def test_training_loop_matches_eager_training(backend):
    """Ten SGD steps: compiled program vs rebuilding the graph each step."""
    runs = []
    for mode in ("eager", "compiled"):
        model, xs, build = batch_mlp("relu", seed=4)
        program = backprop.compile(build(), backend=backend) if mode == "compiled" else None
        losses = []
        for _ in range(10):
            model.zero_grad()
            if program is None:
                loss = build()
                loss.backward()
                losses.append(loss.data)
            else:
                losses.append(program.forward())
                program.backward()
            for p in model.parameters():
                p.data -= 0.1 * p.grad
        runs.append((losses, [p.data for p in model.parameters()]))
    (e_losses, e_params), (c_losses, c_params) = runs
    rel = max(REL[backend], 0.0) * 100  # ten steps compound the rounding
    assert all(same(c, e, rel) for c, e in zip(c_losses, e_losses))
    assert all(same(c, e, rel) for c, e in zip(c_params, e_params))


def test_the_docs_minibatch_example(backend):
    """docs/compiled.md's training loop: inputs and targets fed per batch, grads set."""
    rng = np.random.default_rng(3)
    batches = [(rng.uniform(-1, 1, (10, 2)), rng.choice([-1.0, 1.0], 10)) for _ in range(4)]
    params = []
    for mode in ("compiled", "eager"):
        model = MLP(2, [4, 4, 1], activation="relu", output_activation="linear", seed=7)
        xs = [[Value(0.0), Value(0.0)] for _ in range(10)]
        ys = [Value(0.0) for _ in range(10)]

        def build(model=model, xs=xs, ys=ys):
            scores = [model(x) for x in xs]
            return sum((1 - y * s).relu() for y, s in zip(ys, scores)) * (1.0 / 10)

        program = backprop.compile(
            build(),
            backend=backend,
            inputs=[v for row in xs for v in row] + ys,
            parameters=model.parameters(),
        )
        for xb, yb in batches:
            if mode == "compiled":
                program.forward(inputs=np.concatenate([xb.ravel(), yb]))
                program.backward(accumulate=False)
            else:
                for v, x in zip([v for row in xs for v in row] + ys, [*xb.ravel(), *yb]):
                    v.data = float(x)
                model.zero_grad()
                build().backward()
            for p in model.parameters():
                p.data -= 0.05 * p.grad
        params.append([p.data for p in model.parameters()])
    assert all(same(c, e, REL[backend] * 100) for c, e in zip(*params))


def test_repeated_backward_accumulates_like_eager(backend):
    x, y = Value(0.8), Value(-1.3)
    root = (x * y).tanh() + x**2
    root.backward()
    root.backward()
    twice = [x.grad, y.grad]
    x.grad, y.grad = 5.0, 0.0  # leaves accumulate onto whatever they hold
    root.backward()
    onto_five = x.grad
    program = backprop.compile(root, backend=backend)
    x.grad = y.grad = 0.0
    program.backward()  # runs forward first
    program.backward()
    assert [same(a, b, REL[backend]) for a, b in zip([x.grad, y.grad], twice)] == [True] * 2
    x.grad, y.grad = 5.0, 0.0
    program.backward()
    assert same(x.grad, onto_five, REL[backend])
    program.zero_grad()
    assert x.grad == y.grad == 0.0
    x.grad, y.grad = 5.0, 7.0
    program.backward(accumulate=False)  # sets instead: zero_grad() and backward() in one
    assert [same(a, b / 2, REL[backend]) for a, b in zip([x.grad, y.grad], twice)] == [True] * 2


def test_backward_with_a_seed_gradient():
    x = Value(0.4)
    root = x.exp() * 3.0
    program = backprop.compile(root)
    program.backward(2.5)
    assert x.grad == pytest.approx(2.5 * 3.0 * math.exp(0.4), rel=1e-15)
    with pytest.raises(TypeError, match="grad must be a real number"):
        program.backward("one")


def test_inputs_are_fed_per_batch(backend):
    model, xs, build = batch_mlp("tanh", seed=6, points=8)
    flat = [v for row in xs for v in row]
    program = backprop.compile(build(), backend=backend, inputs=flat, parameters=model.parameters())
    batch = np.random.default_rng(1).uniform(-1, 1, size=(8, 3))
    model.zero_grad()
    value = program.forward(inputs=batch)
    program.backward()
    grads = [p.grad for p in model.parameters()]
    assert program.input_data.tolist() == batch.ravel().tolist()
    with pytest.raises(RuntimeError, match="program.input_data.*sync"):
        float(flat[0].data)  # the batch went into the array, not the Values
    program.sync()
    assert [v.data for v in flat] == batch.ravel().tolist()
    e_value, e_grads = eager(build, model.parameters())
    assert same(value, e_value, REL[backend])
    assert all(same(g, e, REL[backend]) for g, e in zip(grads, e_grads))
    with pytest.raises(ValueError, match="has 23 numbers.*24 input leaves"):
        program.forward(inputs=batch.ravel()[:-1])


def test_sync_writes_intermediate_nodes_like_eager(backend):
    x = Value(0.5)
    h = (x * 2.0).tanh()
    root = h * h + x
    program = backprop.compile(root, backend=backend, keep_graph=True)
    x.data = -0.25
    program.forward()
    program.backward()
    assert h.data == math.tanh(1.0)  # intermediate nodes keep their traced data
    program.sync()
    assert h.data == math.tanh(-0.5)
    assert h.grad == 2 * h.data  # d(root)/dh, as eager backward leaves it
    assert x.grad == pytest.approx(1 + 2 * h.data * 2 * (1 - h.data**2))


def test_a_leaf_root_and_a_no_grad_root():
    x = Value(3.0)
    program = backprop.compile(x)
    x.data = 4.0
    assert program.forward() == 4.0
    program.backward()
    assert x.grad == 1.0  # like x.backward() on a leaf
    with no_grad():
        y = x * 2.0
    assert backprop.compile(y).forward() == 8.0  # no graph recorded: y is a leaf


def test_listing_reads_like_a_program():
    x, w = Value(2.0, label="x"), Value(-3.0, label="w")
    program = backprop.compile((x * w).tanh() ** 2)
    text = program.listing()
    assert text.splitlines() == [
        "%0 = leaf 2.0  # x",
        "%1 = leaf -3.0  # w",
        "%2 = mul %0 %1",
        "%3 = tanh %2",
        "%4 = powc %3, 2.0",
    ]
    assert "Program(5 nodes, 2 leaves, backend='numpy')" in str(program)
    assert "python floats x3 nodes" in program.describe()  # too small for arrays


# ---- tracing limits -------------------------------------------------------------------------


def test_python_branches_on_data_are_frozen():
    """Tracing records the graph, not the Python that built it: an `if` on .data is taken once."""
    x = Value(2.0)

    def build():
        return x * 3.0 if x.data > 0 else -x

    program = backprop.compile(build())
    x.data = -1.0
    assert program.forward() == -3.0  # the traced branch, x * 3
    assert build().data == 1.0  # eager takes the other branch


def test_python_numbers_are_frozen_constants():
    scale = 2.0
    x = Value(1.5)
    program = backprop.compile(x * scale)
    scale = 10.0  # noqa: F841  (rebinding a Python name cannot reach the traced graph)
    assert program.forward() == 3.0


def test_a_rebuilt_graph_is_not_the_traced_one():
    """Rebuilding the model's output makes new nodes; the program keeps replaying the old ones."""
    x = Value(1.0)
    program = backprop.compile(x * 2.0)
    new_x = Value(5.0)  # a new input Value is not the traced leaf
    with pytest.raises(LeafMismatchError, match="input 0 .* not a leaf"):
        backprop.compile(x * 2.0, inputs=[new_x])
    with pytest.raises(LeafMismatchError, match="parameter 0"):
        program.check_leaves([new_x], "parameter")
    assert program.forward() == 2.0


# ---- named errors ---------------------------------------------------------------------------


def test_errors_name_the_problem():
    model, xs, build = batch_mlp("tanh", seed=1, points=2)
    root = build()
    other = MLP(3, [5, 4, 1], seed=1)  # same shape, other Value objects
    with pytest.raises(LeafMismatchError, match="parameter 0 .* not a leaf"):
        backprop.compile(root, parameters=other.parameters())
    program = backprop.compile(root, parameters=model.parameters())
    with pytest.raises(LeafMismatchError):
        program.check_leaves(other.parameters())
    with pytest.raises(ValueError, match="unknown backend 'cuda'"):
        backprop.compile(root, backend="cuda")
    with pytest.raises(TypeError, match="compile\\(\\) needs a Value, got float"):
        backprop.compile(1.5)
    model.parameters()[0].data = "oops"
    with pytest.raises(TypeError, match="has .data = 'oops'"):
        program.forward()


def test_an_op_outside_the_table_cannot_be_traced():
    x = Value(1.0)
    y = x.exp()
    y._fn = Op("cube", "^3", 1, lambda m, a: a * a * a, lambda m, g, out, a: (3 * g * a * a,))
    with pytest.raises(TraceError, match="cube"):
        backprop.compile(y + 1.0)


def test_eager_backward_after_a_replay_is_refused_until_sync():
    x, w = Value(2.0, label="x"), Value(-3.0, label="w")
    h = (x * w).tanh()
    out = h * h + x
    program = backprop.compile(out, keep_graph=True)
    w.data = 0.5
    program.forward()  # the intermediate nodes still hold the traced data
    with pytest.raises(RuntimeError, match="sync"):
        out.backward()
    program.sync()
    out.backward()
    eager = (x.grad, w.grad)
    x.grad = w.grad = 0.0
    program.backward()
    assert (x.grad, w.grad) == pytest.approx(eager, rel=1e-12)


def test_a_deleted_program_leaves_no_mark_on_its_root():
    x = Value(1.5)
    out = x.exp() * x
    program = backprop.compile(out, keep_graph=True)
    program.forward()
    del program
    out.backward()  # allowed again: nothing replayed the graph any more
    assert x.grad == pytest.approx(math.exp(1.5) * 2.5)


# ---- parameters in flat arrays --------------------------------------------------------------


def test_stepping_parameter_data_in_place_equals_stepping_the_values(backend):
    """`program.parameter_data -= lr * program.parameter_grad` is a per-Value SGD step."""
    runs = []
    for flat in (False, True):
        model, xs, build = batch_mlp("relu", seed=4)
        params = model.parameters()
        program = backprop.compile(build(), backend=backend, parameters=params)
        losses = []
        for _ in range(10):
            losses.append(program.forward())
            program.backward(accumulate=False)
            if flat:
                program.parameter_data -= 0.1 * program.parameter_grad
            else:
                for p in params:
                    p.data -= 0.1 * p.grad
        program.sync()
        runs.append((losses, [p.data for p in params], [p.grad for p in params]))
    assert runs[0] == runs[1]  # the same arithmetic, elementwise: bit for bit


def test_values_owned_by_a_program_refuse_to_be_read_until_sync():
    model, xs, build = batch_mlp("tanh", seed=1)
    params = model.parameters()
    program = backprop.compile(build(), parameters=params)
    program.parameter_data -= 0.5  # from here the numbers live in the program's arrays
    for read in (
        lambda: params[0].data + 1,
        lambda: float(params[0].data),
        lambda: params[0].grad > 0,
    ):
        with pytest.raises(RuntimeError, match="program.parameter_(data|grad).*sync"):
            read()
    with pytest.raises(RuntimeError, match="parameter_data"):
        build()  # an eager graph over owned parameters would read stale numbers
    assert "program.parameter_data" in repr(params[0])
    expected = program.parameter_data.tolist()
    program.sync()
    assert [p.data for p in params] == expected  # sync() hands the numbers back ...
    params[0].data = 2.0  # ... and the Values hold them again
    program.forward()
    assert program.parameter_data[0] == 2.0


def test_numbers_assigned_to_owned_values_go_to_the_program():
    model, xs, build = batch_mlp("tanh", seed=2)
    params = model.parameters()
    program = backprop.compile(build(), parameters=params)
    program.forward()
    program.backward(accumulate=False)
    once = program.parameter_grad.copy()
    params[3].data = 0.25  # assigning is seen, as for a Value the program does not own
    assert program.parameter_data[3] == 0.25
    program.forward()
    program.backward(accumulate=False)
    changed = program.parameter_grad.copy()
    model.zero_grad()  # grads zeroed through the Values: the program accumulates from 0
    program.backward()
    assert program.parameter_grad.tolist() == changed.tolist()
    assert not np.array_equal(once, changed)
    program.sync()
    with pytest.raises(AttributeError, match="parameters="):
        _ = backprop.compile(build()).parameter_data


def test_a_deleted_program_writes_its_numbers_back():
    model, xs, build = batch_mlp("tanh", seed=3)
    params = model.parameters()
    program = backprop.compile(build(), parameters=params)
    program.parameter_data[:] = 0.5
    del program
    assert [p.data for p in params] == [0.5] * len(params)


def test_inputs_arrive_as_one_array_and_other_leaves_become_constants():
    x, w, c = Value(1.0), Value(2.0), Value(3.0)
    root = (x * w + c).tanh()
    program = backprop.compile(root, inputs=[x], parameters=[w])
    c.data = 100.0  # a constant now: its number was copied at compile time
    assert program.forward(inputs=[0.5]) == math.tanh(0.5 * 2.0 + 3.0)
    assert program.input_data.tolist() == [0.5]
    assert len(program.leaves) == 2 and program.n_parameters == 1
    program.sync()  # x's number goes back to x (forward(inputs=...) had taken it)
    live = backprop.compile((x * w + c).tanh())  # without parameters=, every leaf is read
    x.data, w.data = 0.5, 2.0
    assert live.forward() == math.tanh(101.0)
    with pytest.raises(ValueError, match="twice"):
        backprop.compile(root, inputs=[x], parameters=[x, w])


def test_without_keep_graph_the_program_holds_no_node_of_the_graph():
    import sys

    model, xs, build = batch_mlp("tanh", seed=5, points=30)
    x = xs[0][0]  # an input not named below: a constant, copied, not held by the program
    free = sys.getrefcount(x)
    root = build()
    assert sys.getrefcount(x) > free  # the graph's nodes hold it
    value = root.data
    program = backprop.compile(root, parameters=model.parameters())
    assert program.tape is not None  # small: kept for listing (LISTING_LIMIT nodes)
    assert sys.getrefcount(x) == free  # the root alone is kept, cut from its graph
    assert root.data == value and program.root is root and root.is_leaf
    for p in model.parameters():
        p.data *= 0.9
    expected = build().data
    assert program.forward() == root.data  # forward() sets the loss, as eager mode holds it
    assert root.data == pytest.approx(expected, rel=1e-12)
    with pytest.raises(RuntimeError, match="detached"):
        root.backward()
    del root
    assert sys.getrefcount(x) == free  # nothing rebuilt: nobody else held the root
    kept = backprop.compile(build(), parameters=model.parameters(), keep_graph=True)
    assert kept.root is not None and sys.getrefcount(x) > free  # the graph, kept
    assert program.forward() == pytest.approx(kept.forward(), rel=1e-15)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_float32_replay_is_within_its_tolerance(activation):
    """dtype='float32' against float64 eager mode: 1e-5 relative on the loss, 1e-5 of the
    largest gradient on every gradient (measured: about 2e-7 and 6e-7)."""
    model, xs, build = batch_mlp(activation, seed=6, points=40)
    params = model.parameters()
    value, grads = eager(build, params)
    program = backprop.compile(build(), parameters=params, dtype="float32")
    assert "float32" in program.describe()
    assert program.forward() == pytest.approx(value, rel=1e-5)
    program.backward(accumulate=False)
    scale = max(abs(g) for g in grads)
    assert np.abs(program.parameter_grad - grads).max() <= 1e-5 * scale
    assert program.parameter_data.dtype == np.float64  # the arrays stay float64
    program.sync()
    with pytest.raises(ValueError, match="numpy backend"):
        backprop.compile(build(), backend="python", dtype="float32")
    with pytest.raises(ValueError, match="float64' or 'float32"):
        backprop.compile(build(), dtype="float16")


def test_outputs_report_node_values(backend):
    model, xs, build = batch_mlp("relu", seed=7)
    scores = [model(x) for x in xs]
    root = sum((s - 1.0) ** 2 for s in scores)
    program = backprop.compile(root, backend=backend, outputs=scores)
    for p in model.parameters():
        p.data *= 0.5
    program.forward()
    expected = [model(x).data for x in xs]
    assert all(same(a, b, REL[backend]) for a, b in zip(program.output_data.tolist(), expected))
    with pytest.raises(backprop.compiled.TraceError, match="output 0"):
        backprop.compile(root, outputs=[Value(1.0)])


@pytest.mark.parametrize("named", ["parameters", "parameters+inputs", "none"])
def test_bias_as_a_column_of_the_weights_agrees_with_the_separate_add(named, monkeypatch):
    """[W b] @ [X; 1] (one matmul each way) against W @ X + b (matmul, add, row sum)."""
    model, xs, build = batch_mlp("relu", points=30)
    flat_xs = [v for row in xs for v in row]
    options = {}
    if "parameters" in named:
        options["parameters"] = model.parameters()
    if "inputs" in named:
        options["inputs"] = flat_xs
    used = []
    augmented = numpy_backend._MatMul._bind_augmented

    def spy(self, *args):
        found = augmented(self, *args)
        used.append(found is not None)
        return found

    results = []
    for fuse in (True, False):
        if fuse:
            monkeypatch.setattr(numpy_backend._MatMul, "_bind_augmented", spy)
        else:
            monkeypatch.setattr(numpy_backend._MatMul, "_bind_augmented", lambda *a: None)
        program = backprop.compile(build(), **options)
        values = []
        for _ in range(2):  # the second backward accumulates onto the first
            values.append(program.forward())
            program.backward()
        program.sync()
        leaves = model.parameters() + flat_xs
        results.append((values, [v.grad for v in leaves]))
        for v in leaves:
            v.grad = 0.0
        del program
    # named parameters sit neuron by neuron (w..., b); tape order interleaves the inputs
    assert any(used) == ("parameters" in named), used
    (values_a, grads_a), (values_b, grads_b) = results
    assert all(same(a, b, 1e-12) for a, b in zip(values_a, values_b))
    assert all(same(a, b, 1e-12) for a, b in zip(grads_a, grads_b))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sigmoid_computed_in_place_is_the_plain_formula_bit_for_bit(dtype):
    # NumpyMath.sigmoid runs its four ufuncs in one array (a step's own slots, in a forward
    # rule); the numbers must be those of 1 / (1 + exp(-x)), as ScalarMath's, and a second
    # sigmoid call in one rule allocates
    with np.errstate(all="ignore"):  # exp(800) overflows to inf, as intended
        rng = np.random.default_rng(0)
        x = np.concatenate([rng.normal(0, 8, 500), [0.0, -0.0, 40.0, -800.0, np.inf, -np.inf]])
        x = x.astype(dtype)
        expected = 1.0 / (1.0 + np.exp(-x))
        plain = numpy_backend.NUMPY.sigmoid(x)
        assert plain.dtype == dtype and (plain.view(np.uint8) == expected.view(np.uint8)).all()
        out = np.empty_like(x)
        into = numpy_backend._Into(out)
        into.fresh = True
        y = into.sigmoid(x)
        assert y is out and (y.view(np.uint8) == expected.view(np.uint8)).all()
        again = into.sigmoid(x)  # no longer fresh: a new array, out untouched
        assert again is not out and (again == expected).all() and (out == expected).all()


def _root_of(op_name: str, x: Value, w: Value) -> Value:
    """A root made by the op op_name over a small graph of x and w (its inputs positive)."""
    h = x * w + 1.0  # an intermediate node whose stored data goes stale after a replay
    op = OPS[op_name]
    if op.arity == 2:
        return GRAPH_NODE(op, h, x)
    if op.has_arg:
        return GRAPH_NODE(op, h, 2.5)
    return GRAPH_NODE(op, h)


def GRAPH_NODE(op, *inputs):  # noqa: N802  (the engine's own node maker for any row)
    from backprop.engine import GRAPH

    return GRAPH.node(op, *inputs)


@pytest.mark.parametrize("keep_graph", [False, True])
@pytest.mark.parametrize("op_name", list(OPS))
def test_eager_backward_after_a_replay_is_refused_for_a_root_of_every_op(op_name, keep_graph):
    """Issue 17, item 6: after compile, a changed leaf and forward(), eager backward() from
    the root (and grad()) would read the graph's stale intermediate data: it is refused for a
    root of every op, not only one whose rule reads its output."""
    x, w = Value(0.7, label="x"), Value(1.3, label="w")
    root = _root_of(op_name, x, w)
    program = backprop.compile(root, keep_graph=keep_graph)
    x.data = 0.2
    value = program.forward()
    assert root.data == value  # the root holds the loss, as eager mode would
    assert value == pytest.approx(_root_of(op_name, x, w).data, rel=1e-12, nan_ok=True)
    with pytest.raises(RuntimeError, match="program.backward"):
        root.backward()
    with pytest.raises(RuntimeError, match="program.backward"):
        backprop.grad(root, [x])
    assert x.grad == 0.0
    program.sync()
    if keep_graph:  # sync() wrote every node: eager backward is right again
        root.backward()
        fresh_x = Value(0.2)
        _root_of(op_name, fresh_x, Value(1.3)).backward()
        assert same(x.grad, fresh_x.grad, 1e-12)


def test_a_deleted_programs_root_gets_its_graph_back():
    """Without keep_graph the root is cut from its graph while its program lives (so that
    dropping the loss frees the graph); when the program goes, a root still referenced gets
    its graph back, rebuilt with the leaves' current numbers: eager backward and a second
    compile then work as on a fresh graph."""
    x, w = Value(0.5), Value(-1.5)
    root = (x * w).tanh() * x + 2.0 * w
    program = backprop.compile(root)
    again = backprop.compile(root, backend="python")  # from the first program's tape
    x.data = 0.25
    assert program.forward() == again.forward() == root.data
    del program, again
    assert not root.is_leaf
    root.backward()
    fx, fw = Value(0.25), Value(-1.5)
    fresh = (fx * fw).tanh() * fx + 2.0 * fw
    fresh.backward()
    assert (root.data, x.grad, w.grad) == (fresh.data, fx.grad, fw.grad)
    third = backprop.compile(root, parameters=[x, w])
    assert third.forward() == fresh.data


@pytest.mark.parametrize("bad", [None, "2.5", 1j, "nan"], ids=["None", "str", "complex", "s"])
@pytest.mark.parametrize("where", ["data", "grad"])
def test_a_non_number_in_a_leaf_is_the_eager_type_error_naming_the_leaf(bad, where, backend):
    """Issue 17, item 10: None (and a str, a complex, a Value) in a leaf gave nan; now the
    TypeError eager mode gives, naming the leaf."""
    x, w = Value(2.0, label="x"), Value(-3.0, label="w")
    program = backprop.compile((x * w).tanh() + x, backend=backend)
    setattr(w, where, bad)
    with pytest.raises(TypeError, match=r"leaf \d \(w\) has \.%s = .*real number" % where):
        program.forward() if where == "data" else program.backward()
    if where == "data":
        with pytest.raises(TypeError):  # what eager mode says of the same leaf
            (x * w).tanh()
    setattr(w, where, Value(1.0))
    with pytest.raises(TypeError, match="got Value"):
        program.forward() if where == "data" else program.backward()
    setattr(w, where, 1)  # an int, a bool, a numpy scalar are numbers
    program.forward()
    program.backward()


def test_a_root_past_the_listing_limit_can_be_compiled_again_while_it_is_referenced(
    monkeypatch,
):
    """A graph too large to keep for listing still keeps its tape while the root is
    referenced (to compile it again: another backend, float32), and drops it at the first
    forward() after the root is dropped."""
    from backprop.compiled import program as program_module
    from backprop.compiled import replayed

    monkeypatch.setattr(program_module, "LISTING_LIMIT", 10)
    model, xs, build = batch_mlp("relu", seed=8, points=10)
    root = build()
    first = backprop.compile(root, parameters=model.parameters())
    assert first.tape is None and replayed.tape_of(root) is not None
    second = backprop.compile(root, backend="python")
    first.forward()
    assert replayed.tape_of(root) is not None  # still referenced here
    assert second.forward() == pytest.approx(first.forward(), rel=1e-12)
    ident = id(root)
    del root
    first.forward()
    assert replayed._detached[ident][0] is None  # the tape is gone with the last reference


def test_outputs_of_a_root_compiled_again_are_found_among_its_traced_nodes():
    model, xs, build = batch_mlp("tanh", seed=9, points=12)
    scores = [model(x) for x in xs]
    root = sum((s - 0.5) ** 2 for s in scores)
    first = backprop.compile(root)  # cuts root from its graph
    second = backprop.compile(root, backend="python", outputs=scores[::-1])
    first.forward()
    second.forward()
    expected = [model(x).data for x in xs][::-1]
    assert second.output_data.tolist() == pytest.approx(expected, rel=1e-15)
    with pytest.raises(TraceError, match="output 1"):
        backprop.compile(root, outputs=[scores[0], Value(2.0)])
    stranger = Value(1.0) * 2.0
    with pytest.raises(TraceError, match="output 0"):
        backprop.compile(root, outputs=[stranger])


def _factor_by_component(lm, rm, min_block=8):
    """_factor as it was written, component by component: the reference."""
    from backprop.compiled.numpy_plan import _row_ids

    n = len(lm)
    rid, n_rows = _row_ids(lm)
    cid, n_cols = _row_ids(rm)
    big = np.iinfo(np.intp).max
    label_row = np.arange(n_rows)
    for _ in range(64):
        label_col = np.full(n_cols, big)
        np.minimum.at(label_col, cid, label_row[rid])
        new = np.full(n_rows, big)
        np.minimum.at(new, rid, label_col[cid])
        if np.array_equal(new, label_row):
            break
        label_row = new
    else:
        return [], np.arange(n)
    component = label_row[rid]
    order = np.argsort(component, kind="stable")
    cuts = np.flatnonzero(np.diff(component[order])) + 1
    blocks, leftover = [], []
    for rows in np.split(order, cuts):
        r, c = rid[rows], cid[rows]
        grid = rows.size >= min_block and rows.size == np.unique(r).size * np.unique(c).size
        if grid and np.unique(r * n_cols + c).size == rows.size:
            blocks.append((rows, r, c))
        else:
            leftover.append(rows)
    return blocks, np.concatenate(leftover) if leftover else np.zeros(0, dtype=np.intp)


@given(st.integers(0, 2**31), st.integers(8, 60))
@settings(max_examples=60, deadline=None)
def test_matrix_product_blocks_are_found_as_the_per_component_test_finds_them(seed, n):
    """The vectorized test of which components are matrix products gives what the test
    written per component gave, on sums of random products over few operands (many blocks,
    partial blocks and repeated pairs)."""
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, 4))
    lm = rng.integers(0, 6, size=(n, k))
    rm = rng.integers(0, 6, size=(n, k))
    if n >= 12 and rng.random() < 0.5:  # a full grid of 3 x 4 rows, some noise after it
        lm[:12] = np.repeat(rng.integers(100, 200, size=(3, k)), 4, axis=0)
        rm[:12] = np.tile(rng.integers(200, 300, size=(4, k)), (3, 1))
    blocks, leftover = numpy_backend._factor(lm, rm)
    expected_blocks, expected_leftover = _factor_by_component(lm, rm)
    assert len(blocks) == len(expected_blocks)
    for got, expected in zip(blocks, expected_blocks):
        assert all((g == e).all() for g, e in zip(got, expected))
    assert leftover.tolist() == expected_leftover.tolist()


def test_the_zero_that_sum_starts_from_does_not_split_a_matrix_product():
    """sum(w * x for ...) starts from 0, lifted to a constant leaf per sum: with the other
    leaves named (parameters=, as jit does), a plain term of a +0.0 constant is dropped, so
    that the rows of one weight matrix over several inputs form one matrix product."""
    rng = random.Random(4)
    w = [[Value(rng.uniform(-1, 1)) for _ in range(4)] for _ in range(6)]
    cols = [[Value(rng.uniform(-1, 1)) for _ in range(4)] for _ in range(5)]
    params = [v for row in w for v in row]
    inputs = [v for col in cols for v in col]

    def build():
        outs = [sum(a * b for a, b in zip(row, col)) for col in cols for row in w]
        return sum(o.tanh() for o in outs)

    value, grads = eager(build, params + inputs)
    program = backprop.compile(build(), parameters=params, inputs=inputs)
    assert "matmul 6x4 @ 4x5" in program.describe()
    assert same(program.forward(), value, 1e-12)
    program.backward(accumulate=False)
    got = program.parameter_grad.tolist() + program.input_grad.tolist()
    assert all(same(a, b, 1e-12) for a, b in zip(got, grads))
    program.sync()
    live = backprop.compile(build())  # every leaf live: the zeros are read, and added
    assert "matmul 6x4 @ 4x5 + 1 per output" in live.describe()  # as an addend per output
    assert same(live.forward(), value, 1e-12)


@pytest.mark.parametrize("sign", [1.0, -1.0, "mixed"])
def test_a_layer_that_adds_a_residual_is_one_matrix_product(sign):
    """out[i][t] = sum_j W[i][j] x[t][j] +/- r[t][i]: the residual (a plain term whose left
    operand changes along a row) rides along the product as an addend per output; plain
    terms of mixed signs in one term position are summed as segments instead."""
    rng = random.Random(11)
    w = [[Value(rng.uniform(-1, 1)) for _ in range(5)] for _ in range(6)]
    xs = [[Value(rng.uniform(-1, 1)) for _ in range(5)] for _ in range(4)]
    rs = [[Value(rng.uniform(-1, 1)) for _ in range(6)] for _ in range(4)]

    def build():
        outs = []
        for t, (x, r) in enumerate(zip(xs, rs)):
            for i, row in enumerate(w):
                s = (sign if sign != "mixed" else (-1.0) ** (t + i)) * 1.0
                dot = sum((a * b for a, b in zip(row[1:], x[1:])), row[0] * x[0])
                outs.append((dot + r[i] if s > 0 else dot - r[i]).tanh())
        return sum(outs)

    leaves = [v for row in w for v in row] + [v for x in xs for v in x]
    leaves += [v for r in rs for v in r]
    program = backprop.compile(build(), parameters=leaves)
    if sign == "mixed":
        assert "per output" not in program.describe()
    else:
        assert "matmul 6x5 @ 5x4 + 1 per output" in program.describe()
    program.sync()
    assert_agree(build, leaves, "numpy")
