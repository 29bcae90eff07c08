"""detect_anomaly: it names the line and the node where nan or inf is first made, forward or
backward, and is off again after its block."""

from __future__ import annotations

import inspect
import math

import pytest
from catalog import CASES

from backprop import MLP, AnomalyError, Value, detect_anomaly, engine, grad, no_grad


def buried_log(x):
    h = (x * 2).tanh() + 1
    bad = (h - 3).log()  # the line detect_anomaly must name: log of a negative number
    return (bad * h).exp()


def test_detect_anomaly_names_the_line_of_a_buried_log_of_a_negative_number():
    line = next(
        i for i, text in enumerate(inspect.getsource(buried_log).splitlines()) if "bad = " in text
    )
    line += buried_log.__code__.co_firstlineno
    with detect_anomaly():
        with pytest.raises(AnomalyError) as caught:
            buried_log(Value(0.3))
    text = str(caught.value)
    assert "log" in text and "nan" in text
    assert f"test_anomaly.py:{line} in buried_log" in text
    assert "bad = (h - 3).log()" in text
    assert buried_log(Value(0.3)).data != buried_log(Value(0.3)).data  # outside: nan, no error


def test_detect_anomaly_names_the_node_where_backward_first_makes_inf():
    x = Value(0.0, label="x")
    with detect_anomaly():
        r = x.sqrt()  # finite forward (0), infinite derivative 1 / (2 sqrt(0))
        r.label = "r"
        loss = r * 3 + x
        with pytest.raises(AnomalyError) as caught:
            loss.backward()
    text = str(caught.value)
    assert "backward of sqrt" in text and "'r'" in text and "inf" in text
    assert "test_anomaly.py" in text and "r = x.sqrt()" in text
    with pytest.raises(AnomalyError, match="backward of sqrt"):
        with detect_anomaly():
            grad(loss, x)
    loss.backward()  # outside: inf, no error
    assert x.grad == math.inf


def test_detect_anomaly_names_a_line_through_library_code():
    model = MLP(2, [2, 1], seed=0)
    with detect_anomaly() as anomaly:
        out = model([Value(1.0), Value(2.0)])
    where = anomaly.where(out)
    assert where is not None and "test_anomaly.py" in where and "model([" in where
    assert "nn.py" in where  # the library frame it came through


def test_detect_anomaly_is_off_again_after_the_block_even_after_an_error():
    assert engine._watcher is None and engine._open_blocks == 0
    with pytest.raises(AnomalyError):
        with detect_anomaly() as outer:
            assert engine._watcher is outer and engine._open_blocks == 1
            with detect_anomaly(check_nan=False):
                quiet = Value(-1.0).log()  # nested, not checking: no error, but recorded
            assert outer.where(quiet) is not None
            Value(-1.0).log()
    # outside, making a node tests engine._open_blocks (0) and nothing else
    assert engine._watcher is None and engine._open_blocks == 0
    assert outer.where(quiet) is not None  # the record outlives the block


def test_detect_anomaly_checks_inside_no_grad_and_leaves_finite_work_alone():
    with detect_anomaly():
        assert (Value(2.0) * 3).data == 6.0
        assert math.isnan((Value(float("nan")) + 1).data)  # nan in, nan out: not made here
        with no_grad(), pytest.raises(AnomalyError, match="div"):
            Value(1.0) / 0.0
    with pytest.raises(TypeError, match="check_nan"):
        detect_anomaly(check_nan="yes")


def test_every_op_method_is_watched_by_detect_anomaly():
    with detect_anomaly() as anomaly:
        for case in CASES:
            leaves = [Value(0.7) for _ in range(case.arity)]
            out = case.ours(*leaves)
            assert anomaly.where(out) is not None, case.name


def test_detect_anomaly_checks_a_create_graph_backward_too():
    x = Value(0.0, label="x")
    with detect_anomaly():
        y = x.sqrt() * 2
        with pytest.raises(AnomalyError, match="backward of sqrt"):
            y.backward(create_graph=True)
        z = x * x + 1
        z.backward(create_graph=True)  # fine: no error, and .grad is a graph
    assert isinstance(x.grad, Value)
