"""One shape of a jitted function: its compiled program, and how a call's integers and
leaf Values become the program's inputs (jit.py traces; this module compiles and replays)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from operator import attrgetter

import numpy as np

from ..engine import Value
from . import replayed
from .program import BACKENDS, LeafMismatchError, Program, _read
from .tape import trace

_data = attrgetter("data")
CHECKED = 512  # live leaves whose references a call checks (check_replaced), in rotation


# ---- one compiled shape -------------------------------------------------------------------


@dataclass
class Entry:
    program: Program
    hot_slot: np.ndarray  # per one-hot input leaf: the int argument it reads,
    hot_j: np.ndarray  # the position it stands for,
    hot_n: np.ndarray  # and the length of the sequence
    check_slot: np.ndarray  # every (int, length) a take indexed: checked at every call
    check_n: np.ndarray
    check_line: list[str]
    n_args: int  # leaf Values among the arguments, in flattening order
    arg_at: np.ndarray  # the position among them of each one the graph reads
    live: list[Value]  # the leaves the program reads besides its inputs (parameters)
    base_refs: int  # the references the program itself holds to each of them
    reason: str
    trace_seconds: float = 0.0
    calls: int = 0
    hits: int = 0
    arg_values: list[Value] = field(default_factory=list)
    checked_from: int = 0

    def run(self, ints: list[int], arg_values: list[Value]) -> float:
        if len(self.check_slot):
            numbers = np.asarray(ints, dtype=np.int64)
            self._check(numbers)
            idx = numbers[self.hot_slot]
            idx += np.where(idx < 0, self.hot_n, 0)
            hot = (idx == self.hot_j).astype(np.float64)
        else:
            hot = np.zeros(0)
        if len(self.arg_at):
            data = _read([arg_values[k] for k in self.arg_at], _data, "data")
            hot = np.concatenate([hot, data])
        self.arg_values = arg_values
        self.calls += 1
        return self.program.forward(inputs=hot) if len(hot) else self.program.forward()

    def _check(self, ints: np.ndarray) -> None:
        idx = ints[self.check_slot]
        bad = (idx >= self.check_n) | (idx < -self.check_n)
        if bad.any():
            k = int(np.argmax(bad))
            raise IndexError(
                f"take: index {int(idx[k])} out of range for length {int(self.check_n[k])}, "
                f"at {self.check_line[k]}"
            )

    def backward(self, grad: float) -> None:
        program = self.program
        if program.n_inputs:
            program.input_grad[...] = 0.0  # the one-hot leaves' and holders' own grads
        program.backward(grad)
        if len(self.arg_at):
            start = len(self.hot_slot)
            grads = program.input_grad[start:].tolist()
            for k, g in zip(self.arg_at.tolist(), grads):
                v = self.arg_values[k]
                v.grad += g

    def check_replaced(self) -> None:
        """A leaf the program reads that nobody else references any more was replaced (a
        parameter Value swapped for a new one): the program would train the old one. Checked
        in rotation, CHECKED leaves a call (a whole re-created model is seen at once)."""
        live = self.live
        if not live:
            return
        start = self.checked_from
        stop = start + CHECKED
        self.checked_from = 0 if stop >= len(live) else stop
        part = live[start:stop]
        alone = self.base_refs + 1  # the program's references, and the slice's
        if min(map(sys.getrefcount, part)) > alone:
            return
        refs = list(map(sys.getrefcount, part))
        k = start + next(i for i, r in enumerate(refs) if r <= alone)
        raise LeafMismatchError(
            f"a Value this jitted function read when traced ({live[k]!r}) is referenced by "
            f"nothing but the program: it was replaced by another Value. Call step.clear() "
            f"to trace again with the new Values"
        )


# ---- tracing -> program -------------------------------------------------------------------


def compile_trace(box: list, record, holders: list, n_args: int, reason: str) -> Entry:
    """The Entry for a traced graph, whose root is box's only item (taken out of it, so that
    the graph is freed here and the references left to each leaf can be counted)."""
    root = box.pop()
    tape = trace(root)
    on_tape = {id(v): k for k, v in enumerate(tape.leaves)}
    hot_leaves, hot_slot, hot_j, hot_n = [], [], [], []
    check_slot, check_n, check_line = [], [], []
    for (slot, n), leaves in record.onehots.items():
        check_slot.append(slot)
        check_n.append(n)
        check_line.append(record.lines[(slot, n)])
        for j, v in enumerate(leaves):
            if id(v) in on_tape:
                hot_leaves.append(v)
                hot_slot.append(slot)
                hot_j.append(j)
                hot_n.append(n)
    arg_at = [k for k, v in enumerate(holders) if id(v) in on_tape]
    inputs = hot_leaves + [holders[k] for k in arg_at]
    taken = {id(v) for v in inputs}
    # the other leaves: a leaf nobody references but the graph was made inside fn (a number
    # lifted by an op, softmax's max): a constant, copied once; the rest are read every call
    others = [v for v in tape.leaves if id(v) not in taken]
    uses = _uses(tape)
    probe = [Value(0.0)]
    base = next(map(sys.getrefcount, probe))  # a list's reference, as map passes it
    refs = np.fromiter(map(sys.getrefcount, others), np.int64, len(others))
    use = np.array([uses[on_tape[id(v)]] for v in others], dtype=np.int64)
    external = refs - base - 1 - use  # less tape.leaves' reference and the graph's edges
    held = external > 0
    live = [v for v, x in zip(others, held.tolist()) if x]
    external = external[held]
    del others, refs
    program = Program(tape, root, BACKENDS["numpy"], inputs=inputs, parameters=live)
    del tape, root, on_tape
    # nobody else holds the program's root: a tape kept for compiling it again goes now,
    # not at the first forward(), so that the references counted below stay as they are
    replayed.drop_tape_if_alone(program.root)
    # the graph is gone: what the program and this entry hold of each live leaf is the rest
    # (the same for every one: the lists that hold them)
    now = np.fromiter(map(sys.getrefcount, live), np.int64, len(live))
    base_refs = int((now - external).max()) if live else 0
    return Entry(
        program=program,
        hot_slot=np.array(hot_slot, dtype=np.int64),
        hot_j=np.array(hot_j, dtype=np.int64),
        hot_n=np.array(hot_n, dtype=np.int64),
        check_slot=np.array(check_slot, dtype=np.int64),
        check_n=np.array(check_n, dtype=np.int64),
        check_line=check_line,
        n_args=n_args,
        arg_at=np.array(arg_at, dtype=np.intp),
        live=live,
        base_refs=base_refs,
        reason=reason,
    )


def _uses(tape) -> np.ndarray:
    """How many operand slots of the graph's nodes hold each tape leaf (by leaf order)."""
    n = len(tape)
    count = np.zeros(n + 1, dtype=np.int64)
    for column in tape.columns:
        col = np.frombuffer(column, dtype=np.int64) if len(column) else np.zeros(0, np.int64)
        count += np.bincount(col + 1, minlength=n + 1)[: n + 1]
    return count[1:][np.asarray(tape.leaf_ids, dtype=np.intp)]
