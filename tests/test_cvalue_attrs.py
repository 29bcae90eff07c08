"""The native part's fields from user code: .grad reads specialized by the interpreter, writes
through one setattr that keeps every hook (the collector's tracking, data as a double)."""

from __future__ import annotations

import dis
import gc
import pickle
import sys

import pytest

from backprop import Value
from backprop._base import NATIVE

native = pytest.mark.skipif(not NATIVE, reason="the native part is off or not built")


def _read_grads(values):
    total = 0.0
    for v in values:
        total += v.grad
    return total


@native
@pytest.mark.skipif(sys.version_info[:2] not in ((3, 11), (3, 12)), reason="3.11/3.12 opcodes")
def test_grad_reads_are_specialized_like_a_slot():
    # a getset descriptor is never specialized; a T_OBJECT_EX member becomes LOAD_ATTR_SLOT
    values = [Value(float(i)) for i in range(64)]
    for _ in range(200):
        _read_grads(values)
    names = {i.opname for i in dis.get_instructions(_read_grads, adaptive=True)}
    assert "LOAD_ATTR_SLOT" in names, sorted(names)


def test_writes_keep_their_meaning():
    v = Value(2.0)
    v.grad = 0
    assert v.grad == 0 and type(v.grad) is int
    v.data = 3
    assert v.data == 3 and type(v.data) is int  # what was put there, as a slot gives back
    v.data = 0.25
    assert v.data == 0.25 and type(v.data) is float
    v.data -= 0.5
    assert v.data == -0.25
    v.label = "w"
    assert v.label == "w"
    del v.grad
    with pytest.raises(AttributeError):
        _ = v.grad
    with pytest.raises(AttributeError):
        del v.grad
    v.grad = 1.5
    assert v.grad == 1.5
    w = pickle.loads(pickle.dumps(v))
    assert (w.data, w.grad, w.label) == (v.data, v.grad, v.label)


def test_unknown_attributes_are_refused():
    v = Value(1.0)
    with pytest.raises(AttributeError):
        v.gradd = 1.0


@native
def test_a_grad_that_closes_a_cycle_tracks_the_node():
    x = Value(1.5)
    y = x * x
    assert not gc.is_tracked(y)
    y.grad = y * 2.0  # y -> its grad -> y: a cycle only the collector can free
    assert gc.is_tracked(y)
    x.label = [x]
    assert gc.is_tracked(x)


@native
def test_a_setattr_by_a_computed_name_takes_the_same_path():
    x = Value(1.5)
    y = x * x
    setattr(y, "".join(["gr", "ad"]), y * 2.0)
    assert gc.is_tracked(y)
    setattr(x, "".join(["da", "ta"]), 0.5)
    assert x.data == 0.5


def test_a_subclass_property_of_the_same_name_wins():
    seen = []

    class Logged(Value):
        __slots__ = ()

        @property
        def grad(self):
            return seen[-1] if seen else 0.0

        @grad.setter
        def grad(self, value):
            seen.append(value)

    v = Logged(1.0)
    v.grad = 2.5
    assert seen[-1] == 2.5 and v.grad == 2.5


@native
def test_read_data_reads_the_doubles_and_stops_at_a_non_number():
    np = pytest.importorskip("numpy")
    from backprop._base import native as module

    values = [Value(0.1 * i) for i in range(100)] + [Value(1.0) * 3.0]
    out = np.empty(len(values))
    assert module.read_data(values, out) == -1
    assert out.tolist() == [v.data for v in values]
    values[7].data = 2  # an int is kept as the object, and read as a number
    values[9].data = "x"
    assert module.read_data(values, out) == 9 and out[7] == 2.0
    with pytest.raises(ValueError):
        module.read_data(values, np.empty(3))


def test_freeing_values_and_subclasses_lets_go_of_their_type_once():
    # with the native part, Value frees its nodes itself (not through the heap type's generic
    # dealloc) and must let go of the type's reference exactly once, subclasses included
    class WithDict(Value):
        pass

    class WithSlot(Value):
        __slots__ = ("extra",)

    class Plain(Value):
        __slots__ = ()

    for cls in (Value, WithDict, WithSlot, Plain):
        gc.collect()
        before = sys.getrefcount(cls)
        leaves = [cls(float(i)) for i in range(200)]
        nodes = [v * v + 1.0 for v in leaves]
        assert sys.getrefcount(cls) > before
        del leaves, nodes
        gc.collect()
        assert sys.getrefcount(cls) == before, cls.__name__


@pytest.mark.parametrize("start", [0.0, -0.0, 0, 2.5, float("inf")])
def test_backward_adds_into_grad_as_python_adds(start):
    x = Value(-0.0)
    x.grad = start
    y = x * -1.0 + x * 0.5  # two terms into x.grad, after what was there
    y.backward()
    expected = start + (-1.0)
    expected = expected + 0.5
    assert type(x.grad) is type(expected) or isinstance(start, int)
    assert repr(x.grad) == repr(expected) or x.grad == expected


def test_the_native_sources_are_split_into_files_of_at_most_600_lines():
    # issue 18: no module over 700 lines; the one extension is built from several sources
    from pathlib import Path

    here = Path(__file__).resolve().parents[1] / "src" / "backprop"
    sources = sorted(here.glob("_cvalue*.[ch]"))
    assert {p.name for p in sources} >= {"_cvalue.c", "_cvalue.h"}
    sizes = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in sources}
    assert len(sizes) >= 3 and max(sizes.values()) <= 600, sizes


@native
def test_the_module_built_from_them_has_every_function():
    import backprop._cvalue as c

    for name in ("Base", "bind", "set_open", "op_method", "node", "sweep", "topological_order"):
        assert callable(getattr(c, name))
    for name in ("sweep_graph", "backward", "read_data"):
        assert callable(getattr(c, name))
