"""Losses against torch.nn.functional in float64: values and gradients, every reduction."""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from backprop import Value
from backprop.losses import (
    binary_cross_entropy,
    cross_entropy,
    hinge,
    l2_penalty,
    log_softmax,
    mse,
    softmax,
)

REDUCTIONS = ["mean", "sum"]
finite = st.floats(-30, 30, allow_nan=False, allow_infinity=False)


def _ours(fn, xs, targets, reduction):
    vs = [Value(x) for x in xs]
    out = fn(vs, targets, reduction=reduction)
    out.backward()
    return out.data, [v.grad for v in vs]


def _theirs(fn, xs, targets, reduction):
    t = torch.tensor(xs, dtype=torch.float64, requires_grad=True)
    out = fn(t, torch.tensor(targets, dtype=torch.float64), reduction)
    out.backward()
    return out.item(), t.grad.tolist()


def _close(a, b, rtol=1e-12, atol=1e-12):
    assert a == pytest.approx(b, rel=rtol, abs=atol)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(finite, finite), min_size=1, max_size=8))
def test_mse_matches_torch(reduction, pairs):
    xs, ts = [p for p, _ in pairs], [t for _, t in pairs]
    value, grads = _ours(mse, xs, ts, reduction)
    tv, tg = _theirs(lambda a, b, r: F.mse_loss(a, b, reduction=r), xs, ts, reduction)
    _close(value, tv)
    _close(grads, tg)


def _torch_hinge(s, y, reduction):
    # relu, as micrograd writes it: at the kink 1 - y*s = 0 its gradient is 0 (clamp's is 1)
    loss = torch.relu(1 - y * s)
    return loss.mean() if reduction == "mean" else loss.sum()


@pytest.mark.parametrize("reduction", REDUCTIONS)
@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(finite, st.sampled_from([-1.0, 1.0])), min_size=1, max_size=8))
def test_hinge_matches_torch(reduction, pairs):
    xs, ts = [p for p, _ in pairs], [t for _, t in pairs]
    value, grads = _ours(hinge, xs, ts, reduction)
    tv, tg = _theirs(_torch_hinge, xs, ts, reduction)
    _close(value, tv)
    _close(grads, tg)


def _torch_bce(x, y, reduction):
    return F.binary_cross_entropy_with_logits(x, y, reduction=reduction)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(-800, 800, allow_nan=False), st.floats(0, 1)), min_size=1, max_size=8
    )
)
def test_binary_cross_entropy_matches_torch(reduction, pairs):
    xs, ts = [p for p, _ in pairs], [t for _, t in pairs]
    value, grads = _ours(binary_cross_entropy, xs, ts, reduction)
    tv, tg = _theirs(_torch_bce, xs, ts, reduction)
    _close(value, tv, rtol=1e-10, atol=1e-12)
    _close(grads, tg, rtol=1e-10, atol=1e-12)


def test_binary_cross_entropy_is_stable_and_exact_at_zero():
    # logits far beyond exp's range give finite losses and gradients sigmoid(x) - y
    x = [Value(1000.0), Value(-1000.0), Value(0.0)]
    losses = binary_cross_entropy(x, [0.0, 1.0, 1.0], reduction="none")
    assert [v.data for v in losses] == pytest.approx([1000.0, 1000.0, math.log(2)])
    for v in losses:
        v.backward()
    assert [v.grad for v in x] == pytest.approx([1.0, -1.0, -0.5])  # sigmoid(0) - 1 = -1/2


def _logit_rows():
    return st.integers(2, 5).flatmap(
        lambda k: st.lists(
            st.tuples(st.lists(finite, min_size=k, max_size=k), st.integers(0, k - 1)),
            min_size=1,
            max_size=5,
        )
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@settings(max_examples=40, deadline=None)
@given(_logit_rows())
def test_cross_entropy_matches_torch(reduction, rows):
    zs = [[Value(x) for x in z] for z, _ in rows]
    targets = [t for _, t in rows]
    out = cross_entropy(zs, targets, reduction=reduction)
    out.backward()
    t = torch.tensor([z for z, _ in rows], dtype=torch.float64, requires_grad=True)
    ref = F.cross_entropy(t, torch.tensor(targets), reduction=reduction)
    ref.backward()
    _close(out.data, ref.item(), rtol=1e-10)
    ours = [v.grad for z in zs for v in z]
    _close(ours, t.grad.flatten().tolist(), rtol=1e-10, atol=1e-12)


def test_cross_entropy_is_stable_for_huge_logits():
    z = [Value(1000.0), Value(-1000.0), Value(999.0)]
    out = cross_entropy([z], [2])
    out.backward()
    t = torch.tensor([[1000.0, -1000.0, 999.0]], dtype=torch.float64, requires_grad=True)
    ref = F.cross_entropy(t, torch.tensor([2]))
    ref.backward()
    assert math.isfinite(out.data)
    _close(out.data, ref.item())
    _close([v.grad for v in z], t.grad[0].tolist())


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-700, 700), min_size=1, max_size=6))
def test_softmax_and_log_softmax_match_torch(xs):
    t = torch.tensor(xs, dtype=torch.float64)
    probs = softmax(xs)
    assert [p.data for p in probs] == pytest.approx(F.softmax(t, 0).tolist(), rel=1e-12, abs=1e-300)
    assert sum(p.data for p in probs) == pytest.approx(1.0)
    logs = log_softmax(xs)
    assert [v.data for v in logs] == pytest.approx(F.log_softmax(t, 0).tolist(), rel=1e-12)


def test_softmax_gradient_matches_torch():
    xs = [0.5, -1.25, 3.0]
    weights = [0.3, -2.0, 1.7]
    vs = [Value(x) for x in xs]
    sum(w * p for w, p in zip(weights, softmax(vs))).backward()
    t = torch.tensor(xs, dtype=torch.float64, requires_grad=True)
    (torch.tensor(weights, dtype=torch.float64) * F.softmax(t, 0)).sum().backward()
    _close([v.grad for v in vs], t.grad.tolist())


def test_reduction_none_gives_per_sample_losses():
    out = mse([Value(1.0), Value(3.0)], [0.0, 0.0], reduction="none")
    assert [v.data for v in out] == [1.0, 9.0]
    out = cross_entropy([[0.0, 0.0]] * 3, [0, 1, 0], reduction="none")
    assert len(out) == 3 and out[0].data == pytest.approx(math.log(2))


def test_l2_penalty_matches_micrograd_term():
    ps = [Value(0.5), Value(-2.0), Value(3.0)]
    out = l2_penalty(ps, alpha=1e-4)
    assert out.data == pytest.approx(1e-4 * (0.25 + 4 + 9))
    out.backward()
    assert [p.grad for p in ps] == pytest.approx([1e-4, -4e-4, 6e-4])
    assert l2_penalty([]).data == 0.0


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: mse([Value(1.0)] * 3, [1.0, 2.0]), "3 predictions but 2 targets"),
        (lambda: hinge([1.0, 2.0], [1.0]), "2 predictions but 1 targets"),
        (lambda: binary_cross_entropy([1.0], [1.0, 0.0]), "1 predictions but 2 targets"),
        (lambda: cross_entropy([[1.0, 2.0]], [0, 1]), "1 predictions but 2 targets"),
        (lambda: mse([], []), "no samples"),
        (lambda: hinge([1.0], [0.0]), r"-1 or \+1, got 0.0"),
        (lambda: binary_cross_entropy([1.0], [2.0]), r"\[0, 1\], got 2.0"),
        (lambda: cross_entropy([[1.0, 2.0]], [2]), "0..1, got 2"),
        (lambda: mse([1.0], [1.0], reduction="avg"), "'avg'"),
        (lambda: l2_penalty([Value(1.0)], alpha=-1), "got -1"),
    ],
)
def test_bad_inputs_raise_value_error_with_the_value(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_bad_types_raise_type_error():
    with pytest.raises(TypeError, match="str"):
        mse(["1.0"], [1.0])
    with pytest.raises(TypeError, match="sequence"):
        mse(Value(1.0), [1.0])


# ---- targets as Values (what a compiled graph re-assigns per batch) ---------------------------


def _loss_and_grads(fn, xs, targets):
    vs = [Value(x) for x in xs]
    out = fn(vs, targets)
    out.backward()
    return out.data, [v.grad for v in vs]


@pytest.mark.parametrize(
    "fn, targets",
    [
        (mse, [0.5, -2.0, 3.0]),
        (hinge, [1.0, -1.0, -1.0]),
        (binary_cross_entropy, [1.0, 0.0, 0.25]),
    ],
)
def test_value_targets_build_the_same_graph_as_float_targets(fn, targets):
    xs = [0.7, -1.3, 2.2]
    as_values = [Value(t) for t in targets]
    assert _loss_and_grads(fn, xs, as_values) == _loss_and_grads(fn, xs, targets)  # bit for bit
    # and the targets are leaves of the graph, with the gradient of the loss
    out = fn([Value(x) for x in xs], as_values)
    assert all(v in out.topological_order() for v in as_values)


def test_mse_gradient_reaches_value_targets():
    t = Value(0.5)
    mse([Value(2.0)], [t]).backward()
    assert t.grad == -2 * (2.0 - 0.5)


def test_value_targets_are_not_range_checked():
    # a Value target may be a placeholder whose .data is assigned before replay
    assert hinge([Value(1.0)], [Value(0.0)]).data == 1.0
    assert binary_cross_entropy([Value(0.0)], [Value(5.0)]).data == pytest.approx(math.log(2))


@settings(max_examples=40, deadline=None)
@given(_logit_rows())
def test_cross_entropy_one_hot_rows_equal_class_indices_bit_for_bit(rows):
    k = len(rows[0][0])
    by_index = [[Value(x) for x in z] for z, _ in rows]
    by_row = [[Value(x) for x in z] for z, _ in rows]
    one_hot = [[Value(1.0 if j == t else 0.0) for j in range(k)] for _, t in rows]
    a = cross_entropy(by_index, [t for _, t in rows])
    b = cross_entropy(by_row, one_hot)
    a.backward()
    b.backward()
    assert a.data == b.data
    assert [v.grad for z in by_index for v in z] == [v.grad for z in by_row for v in z]


def test_cross_entropy_with_class_probabilities_matches_torch():
    z = [[0.5, 2.0, -1.0], [3.0, -0.5, 0.25]]
    probs = [[0.2, 0.7, 0.1], [0.0, 0.5, 0.5]]
    for reduction in REDUCTIONS:
        zs = [[Value(x) for x in row] for row in z]
        out = cross_entropy(zs, probs, reduction=reduction)
        out.backward()
        t = torch.tensor(z, dtype=torch.float64, requires_grad=True)
        ref = F.cross_entropy(t, torch.tensor(probs, dtype=torch.float64), reduction=reduction)
        ref.backward()
        _close(out.data, ref.item())
        _close([v.grad for row in zs for v in row], t.grad.flatten().tolist())


@pytest.mark.parametrize(
    "targets, message",
    [
        ([[1.0, 0.0]], "target 0 has 2 class probabilities for 3 logits"),
        ([[0.5, 1.5, 0.0]], r"target 0 holds 1.5, not a probability in \[0, 1\]"),
        ([Value(1.0)], r"class index in 0..2, got Value\(data=1.0"),
    ],
)
def test_cross_entropy_bad_probability_rows(targets, message):
    with pytest.raises(ValueError, match=message):
        cross_entropy([[1.0, 2.0, 3.0]], targets)
