"""Planning for the numpy backend: the scalar tape fused into sums of products, levelled,
factored into matrix products where it can be, laid out in slots and cut into steps (see
numpy_backend's docstring for the five stages)."""

from __future__ import annotations

import numpy as np

from ..ops import ADD, MUL, SUB
from .numpy_steps import _Elementwise, _Index, _MatMul, _ScalarRun, _SegmentSum
from .tape import OP_LIST, Tape

SUM = len(OP_LIST)  # the kind of a fused sum node, after the op codes


def _native():
    """The native module when it has the planning loop (as tape.py finds it), else None."""
    from .tape import _native as native

    module = native()
    return module if hasattr(module, "levels") else None


def plan(tape: Tape, min_block: int, tiny: int):
    """Fuse, level and order the tape; return (steps, number of levels, slot of each node,
    number of slots, (level, step) pairs). Python loops here run over nodes once (levels)
    and over steps. Fewer than ``min_block`` sum nodes are not factored into a matrix
    product; groups of at most ``tiny`` nodes run as Python floats."""
    g = _Graph(tape)
    _fuse(g)
    levels = _levels(tape, g)
    left, right, term_start, term_count = _terms(g)
    slot, claim, next_slot = _slots(tape, g)
    nodes = np.flatnonzero((g.code >= 0) & ~g.fused)
    kind = np.where(g.summing[nodes], SUM, g.code[nodes])
    nodes = nodes[np.lexsort((kind, levels[nodes]))]
    if nodes.size == 0:
        return [], int(levels.max(initial=0)), slot, next_slot[0], []
    steps, step_levels = [], []
    terms = (left, right, term_start, term_count)
    for run, scalar in _groups(g, nodes, levels, term_count, tiny):
        if scalar:
            inner = _with_members(g, run)
            steps.append(_scalar_run(run, inner, g.code, g.cols, g.args, slot, claim))
            low, high = int(levels[run[0]]), int(levels[run[-1]])
            step_levels.append((f"{low}-{high}" if high > low else low, steps[-1]))
            continue
        if g.summing[run[0]]:
            new = _plan_sums(run, *terms, slot, claim, g.one, min_block)
        else:
            new = [_plan_elementwise(run, g.code, g.cols, g.args, slot, claim)]
        steps += new
        step_levels += [(int(levels[run[0]]), step) for step in new]
    return steps, int(levels.max(initial=0)), slot, next_slot[0], step_levels


class _Graph:
    """The tape as arrays, with what fusion decides: who consumes each node (for single-use
    nodes, which node and which operand), which nodes are sums, which are fused into one."""

    def __init__(self, tape: Tape) -> None:
        n = self.n = len(tape)
        self.one, self.minus_one = n, n + 1  # node ids of the constants terms multiply
        self.code = code = np.asarray(tape.codes).astype(np.intp)
        self.args = np.asarray(tape.args)
        self.cols = cols = [np.asarray(c).astype(np.intp) for c in tape.columns]
        ids = np.arange(n)
        self.used = np.zeros(n, dtype=np.intp)
        self.consumer = np.full(n, -1, dtype=np.intp)
        self.operand = np.zeros(n, dtype=np.intp)
        for k, col in enumerate(cols):
            has = col >= 0
            self.used += np.bincount(col[has], minlength=n)
            self.consumer[col[has]] = ids[has]
            self.operand[col[has]] = k
        self.used[np.asarray(tape.output_ids, dtype=np.intp)] += 1  # an output keeps its slot
        self.summing = (code == OP_LIST.index(ADD)) | (code == OP_LIST.index(SUB))
        self.is_mul = code == OP_LIST.index(MUL)
        self.is_sub = code == OP_LIST.index(SUB)
        self.fused = self.up = self.members = self.member_start = None
        # constant leaves (copied at compile time: compile(parameters=...), jit) that hold +0.0,
        # such as the 0 that sum() starts from: a sum's plain term of one adds nothing
        self.zero = np.zeros(n, dtype=bool)
        if tape.n_constants:
            first = len(tape.leaf_ids) - tape.n_constants
            data = np.array([v.data for v in tape.leaves[first:]], dtype=np.float64)
            ids = np.asarray(tape.leaf_ids[first:], dtype=np.intp)
            self.zero[ids[(data == 0.0) & ~np.signbit(data)]] = True


def _fuse(g: _Graph) -> None:
    """A single-use add/sub/mul read by an add (or as a sub's left) joins that sum: g.fused,
    and g.up, each node's sum root (itself when not fused)."""
    fused = (g.used == 1) & (g.summing | g.is_mul)
    c = np.where(fused, g.consumer, 0)
    fused &= g.summing[c] & ((g.operand == 0) | ~g.is_sub[c])
    up = np.where(fused, g.consumer, np.arange(g.n))
    while True:  # pointer jumping: log depth rounds
        nxt = up[up]
        if np.array_equal(nxt, up):
            break
        up = nxt
    g.fused, g.up = fused, up


def _levels(tape: Tape, g: _Graph) -> np.ndarray:
    """Each node's level, one more than its inputs' highest (fused nodes add none), in one
    pass over the topological order."""
    n = g.n
    native = _native()
    if native is not None and len(g.cols) == 2:
        rise = (~g.fused & (g.code >= 0)).astype(np.uint8)
        a, b = (np.ascontiguousarray(c, dtype=np.int64) for c in g.cols)
        return np.frombuffer(native.levels(a, b, rise), dtype=np.int64).astype(np.intp)
    rise = (~g.fused & (g.code >= 0)).tolist()
    level = [0] * (n + 1)  # level[-1] is a 0 for the -1 of a missing operand
    if len(g.cols) == 2:
        for i, x, y, r in zip(range(n), tape.columns[0], tape.columns[1], rise):
            p, q = level[x], level[y]
            level[i] = (p if p > q else q) + r
    else:
        for i, r in enumerate(rise):
            level[i] = max(level[col[i]] for col in tape.columns) + r
    return np.array(level[:n], dtype=np.intp)


def _terms(g: _Graph):
    """The terms of every sum node, (left, right) operand ids in the sum's own order, with
    each root's first term and term count (a plain term x is x * 1, a sub's right x * -1)."""
    left, right, owner, key = [], [], [], []
    s = np.flatnonzero(g.summing)
    for k in (0, 1):
        x = g.cols[k][s]
        keep = ~(g.fused[x] & g.summing[x])  # a fused inner sum contributes its own terms
        xs, ss = x[keep], s[keep]
        product = g.fused[xs] & g.is_mul[xs]
        plain = np.where(g.is_sub[ss] & (k == 1), g.minus_one, g.one)
        left.append(np.where(product, g.cols[0][xs], xs))
        right.append(np.where(product, g.cols[1][xs], plain))
        owner.append(g.up[ss])
        key.append(ss * 2 + k)
    left, right, owner, key = (np.concatenate(a) for a in (left, right, owner, key))
    # a plain term of a +0.0 constant is dropped (x + 0 is x; only a -0 sum would turn +0),
    # so that sum()'s leading 0 does not make each neuron's weights a row of their own
    # (microgpt's linear layers, one per position, then stack into one matrix product)
    drop = (right >= g.one) & g.zero[left]
    if drop.any():
        drop &= np.bincount(owner[~drop], minlength=g.n)[owner] > 0  # one term stays
        left, right, owner, key = (a[~drop] for a in (left, right, owner, key))
    # by owner, then by key (unique): one sort of one number, not lexsort's two passes
    order = np.argsort(owner * (2 * g.n + 2) + key)
    left, right, owner = left[order], right[order], owner[order]
    term_start = np.zeros(g.n + 1, dtype=np.intp)
    term_count = np.bincount(owner, minlength=g.n)
    term_start[1:] = np.cumsum(term_count)
    return left, right, term_start, term_count


def _slots(tape: Tape, g: _Graph):
    """The slot array (leaves first, in tape order, then the constants 1 and -1), and
    ``claim(nodes) -> (start, stop)`` giving the next run of slots to a step's outputs."""
    slot = np.full(g.n + 2, -1, dtype=np.intp)
    n_leaves = len(tape.leaf_ids)
    slot[np.array(tape.leaf_ids, dtype=np.intp)] = np.arange(n_leaves)
    slot[g.one], slot[g.minus_one] = n_leaves, n_leaves + 1
    next_slot = [n_leaves + 2]

    def claim(outs: np.ndarray) -> tuple[int, int]:
        start = next_slot[0]
        slot[outs] = np.arange(start, start + outs.size)
        next_slot[0] += outs.size
        return start, next_slot[0]

    return slot, claim, next_slot


def _groups(g: _Graph, nodes: np.ndarray, levels: np.ndarray, term_count: np.ndarray, tiny):
    """The materialized nodes (sorted by level and kind) cut into groups of one op at one
    level, as (nodes, False); consecutive tiny groups (a serial chain: one node per level)
    come as one (nodes, True), to run as Python floats, where a numpy call per node would
    cost ten times more than the arithmetic."""
    kind = np.where(g.summing[nodes], SUM, g.code[nodes])
    cuts = np.flatnonzero((np.diff(levels[nodes]) != 0) | (np.diff(kind) != 0)) + 1
    bounds = np.r_[0, cuts, nodes.size]
    sizes = np.diff(bounds)
    is_sum = g.summing[nodes[bounds[:-1]]]
    terms = np.add.reduceat(term_count[nodes], bounds[:-1])
    small = (sizes <= tiny) & (~is_sum | (terms <= 4 * tiny))
    segments = np.flatnonzero(np.r_[True, small[1:] != small[:-1]]).tolist() + [small.size]
    for first, stop in zip(segments[:-1], segments[1:]):
        if small[first]:
            yield nodes[bounds[first] : bounds[stop]], True
            continue
        for k in range(first, stop):
            yield nodes[bounds[k] : bounds[k + 1]], False


def _with_members(g: _Graph, run: np.ndarray) -> np.ndarray:
    """run's nodes with the nodes fused into them, in tape order (for a scalar run)."""
    if g.members is None:  # fused nodes listed under their sum root, in tape order
        members = np.flatnonzero(g.fused)
        roots = g.up[members]
        if roots.size and not (roots[1:] >= roots[:-1]).all():  # a chain's come in order
            members = members[np.argsort(roots, kind="stable")]
        g.members = members
        g.member_start = np.zeros(g.n + 1, dtype=np.intp)
        g.member_start[1:] = np.cumsum(np.bincount(g.up[g.members], minlength=g.n))
    members, member_start = g.members, g.member_start
    counts = member_start[run + 1] - member_start[run]
    offsets = np.repeat(member_start[run] - (np.cumsum(counts) - counts), counts)
    absorbed = members[offsets + np.arange(offsets.size)]
    return np.sort(np.concatenate([run, absorbed]))


_ARITY = np.array([op.arity for op in OP_LIST], dtype=np.intp)
_HAS_ARG = np.array([op.has_arg for op in OP_LIST], dtype=bool)
_FORWARD = [op.forward for op in OP_LIST]
_BACKWARD = [op.backward for op in OP_LIST]


def _sorted_unique(x: np.ndarray) -> np.ndarray:
    x = np.sort(x)  # sorting beats np.unique's hash table on large index arrays
    return x[np.r_[True, x[1:] != x[:-1]]] if x.size else x


def _scalar_run(run, inner, code, cols, args, slot, claim) -> _ScalarRun:
    """The nodes of consecutive tiny groups (``run``: materialized, ``inner``: with their
    fused terms, in tape order) as one step that replays them with the scalar rules.

    Locals are numbered external inputs first (sorted by node), then the run's own nodes in
    tape order; the numbering is done with arrays and the equations are zipped, so planning
    a chain of a million nodes costs about a microsecond per node."""
    start, stop = claim(run)
    m = inner.size
    codes = code[inner]
    arity = _ARITY[codes]
    operand = np.stack([col[inner] for col in cols])  # (operands, nodes), -1 where none
    used = np.arange(len(cols))[:, None] < arity[None, :]
    n = len(cols[0])
    if m * 16 >= n:  # a run of much of the tape (a chain): a dense map beats a binary search
        where = np.full(n + 1, -1, dtype=np.intp)  # where[-1]: the -1 of a missing operand
        where[inner] = np.arange(m)
        pos = where[operand]
        local = used & (pos >= 0)
        external = _sorted_unique(operand[used & ~local])
        where[external] = np.arange(external.size)
        outer = where[operand]
    else:
        pos = np.minimum(np.searchsorted(inner, operand), m - 1)
        local = used & (inner[pos] == operand)
        external = _sorted_unique(operand[used & ~local])
        outer = np.searchsorted(external, operand)
    n_ext = external.size
    number = np.where(local, n_ext + pos, outer)
    number[1][arity < 2] = -1  # a unary op's second operand (MAX_ARITY is 2)
    in0, in1 = number[0].tolist(), number[1].tolist()
    arg = [None] * m
    with_arg = np.flatnonzero(_HAS_ARG[codes])
    for k, x in zip(with_arg.tolist(), args[inner[with_arg]].tolist()):
        arg[k] = x
    code_list = codes.tolist()
    forward = list(map(_FORWARD.__getitem__, code_list))
    backward = list(map(_BACKWARD.__getitem__, code_list))
    outputs = (n_ext + np.searchsorted(inner, run)).tolist()
    columns = (forward, backward, in0, in1, arg)
    return _ScalarRun(columns, _Index(slot[external]), outputs, start, stop, m)


def _plan_elementwise(group, code, cols, args, slot, claim) -> _Elementwise:
    op = OP_LIST[int(code[group[0]])]
    # order outputs like their first input, so that a step reading a whole step is a view
    group = group[np.argsort(slot[cols[0][group]], kind="stable")]
    ins = [_Index(slot[cols[k][group]]) for k in range(op.arity)]
    arg = None
    if op.has_arg:
        values = args[group]
        arg = float(values[0]) if (values == values[0]).all() else values
    start, stop = claim(group)
    return _Elementwise(op, ins, start, stop, arg)


def _plan_sums(group, left, right, term_start, term_count, slot, claim, one, min_block) -> list:
    """Sum nodes of one level: matrix-product blocks where the terms factor, segments else."""
    steps, rest = [], []
    counts = term_count[group]
    for k in np.unique(counts):
        roots = group[counts == k]
        terms = term_start[roots][:, None] + np.arange(k)
        lm, rm = left[terms], right[terms]
        # plain terms (x * 1 or x * -1 in every sum) are left out of the factoring: a bias,
        # or an addend per output (a residual added to a layer), rides along the product
        plain = (rm >= one).all(axis=0)
        products = ~plain if plain.any() and not plain.all() else None
        if products is None:
            blocks, leftover = _factor(lm, rm, min_block)
        else:  # and what does not factor so is tried with its plain terms, as a bias
            blocks, leftover = _factor(lm[:, products], rm[:, products], min_block)
            if leftover.size:
                more, rest_of = _factor(lm[leftover], rm[leftover], min_block)
                blocks += [(leftover[rows], rid, cid) for rows, rid, cid in more]
                leftover = leftover[rest_of]
        for rows, rid, cid in blocks:
            if (rm[rows] >= one).all():  # every right operand a constant: nothing to multiply
                leftover = np.concatenate([leftover, rows])
                continue
            step = _matmul_step(roots[rows], lm[rows], rm[rows], rid, cid, slot, claim, one)
            if step is None:  # plain terms whose signs differ: summed as segments
                leftover = np.concatenate([leftover, rows])
                continue
            steps.append(step)
        rest.append(roots[leftover])
    rest = np.concatenate(rest)
    if rest.size:
        steps.append(_segment_step(rest, left, right, term_start, term_count, slot, claim, one))
    return steps


def _row_ids(m: np.ndarray) -> tuple[np.ndarray, int]:
    """An id per row of m, equal ids for equal rows: a random hash, checked exactly."""
    weights = np.random.default_rng(0).integers(1, 2**62, size=m.shape[1])
    with np.errstate(over="ignore"):
        h = (m.astype(np.int64) * weights).sum(axis=1)  # wraps modulo 2**64, as intended
    uniq, first, inv = np.unique(h, return_index=True, return_inverse=True)
    inv = inv.ravel()
    if not (m[first][inv] == m).all():  # a hash collision: fall back to sorting rows
        uniq, inv = np.unique(m, axis=0, return_inverse=True)
        inv = inv.ravel()
    return inv, len(uniq)


def _factor(lm: np.ndarray, rm: np.ndarray, min_block: int = 8):
    """Split sum nodes (rows of term operands lm, rm) into matrix-product blocks and the rest.

    Nodes sharing a left row or a right row are connected; a connected set is a block when it
    holds every (left row, right row) pair exactly once. Returns a list of blocks as (row
    indices, their left-row ids, their right-row ids), and the leftover row indices.
    """
    n = len(lm)
    everything = np.arange(n)
    if n < min_block:
        return [], everything
    rid, n_rows = _row_ids(lm)
    cid, n_cols = _row_ids(rm)
    # connected components by label propagation between row ids and column ids
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
        return [], everything  # too tangled to be worth it
    component = label_row[rid]
    order = np.argsort(component, kind="stable")
    cuts = np.flatnonzero(np.diff(component[order])) + 1
    # per component (in label order): its size, distinct left rows and right rows, and
    # distinct pairs; a row id or a column id, and so a pair, belongs to one component only
    sizes = np.diff(np.r_[0, cuts, n])
    which = np.empty(n, dtype=np.intp)
    which[order] = np.repeat(np.arange(sizes.size), sizes)
    of_row, of_col = np.empty(n_rows, dtype=np.intp), np.empty(n_cols, dtype=np.intp)
    of_row[rid], of_col[cid] = which, which
    n_r = np.bincount(of_row, minlength=sizes.size)
    n_c = np.bincount(of_col, minlength=sizes.size)
    pairs = np.bincount(of_row[np.unique(rid * n_cols + cid) // n_cols], minlength=sizes.size)
    grid = ((sizes >= min_block) & (sizes == n_r * n_c) & (pairs == sizes)).tolist()
    blocks, leftover = [], []
    for rows, is_block in zip(np.split(order, cuts), grid):
        if is_block:
            blocks.append((rows, rid[rows], cid[rows]))
        else:
            leftover.append(rows)
    return blocks, np.concatenate(leftover) if leftover else np.zeros(0, dtype=np.intp)


def _matmul_step(roots, lm, rm, rid, cid, slot, claim, one):
    """Lay out one factored block as W (rows x K) @ XT (K x cols), outputs row-major."""
    _, first_r, ri = np.unique(rid, return_index=True, return_inverse=True)
    _, first_c, ci = np.unique(cid, return_index=True, return_inverse=True)
    ur, uc, ri, ci = lm[first_r], rm[first_c], ri.ravel(), ci.ravel()
    grid = np.empty((len(ur), len(uc)), dtype=np.intp)
    grid[ri, ci] = roots
    # plain terms whose left operand changes along a row (not one bias per row) are added
    # per output: an addend matrix for each, times its sign
    at = np.empty(grid.shape, dtype=np.intp)
    at[ri, ci] = np.arange(len(rid))
    plain = (rm >= one).all(axis=0)
    per_output = plain & ~(lm[at] == lm[at][:, :1]).all(axis=(0, 1))
    addend = addend_coefs = None
    if per_output.any():
        signs = rm[:, per_output]
        if not (signs == signs[0]).all():
            return None
        addend = np.moveaxis(slot[lm[at][:, :, per_output]], 2, 0)  # (terms, rows, cols)
        addend_coefs = np.where(signs[0] == one, 1.0, -1.0)
        keep = ~per_output
        ur, uc = ur[:, keep], uc[:, keep]
    # right operands that are the same constant in every column become a bias
    const = (uc == uc[0]).all(axis=0) & (uc[0] >= one)
    var = ~const
    w, xt = slot[ur], slot[uc].T
    # rows in the order of their weights, columns in the order of their inputs
    first = np.argmax(var) if var.any() else 0
    prow = np.argsort(w[:, first], kind="stable")
    pcol = np.argsort(xt[first], kind="stable")
    w, xt, grid = w[prow], xt[:, pcol], grid[prow][:, pcol]
    bias = None
    coefs = None
    if const.any():
        bias = _Index(w[:, const])
        coefs = np.where(uc[0][const] == one, 1.0, -1.0)
    start, stop = claim(grid.ravel())
    step = _MatMul(_Index(w[:, var]), _Index(xt[var]), bias, coefs, start, stop)
    if addend is not None:
        step.addend = _Index(addend[:, prow][:, :, pcol])
        step.addend_coefs = addend_coefs
    return step


def _segment_step(roots, left, right, term_start, term_count, slot, claim, one):
    counts = term_count[roots]
    start, stop = claim(roots)
    if (counts == counts[0]).all():
        terms = term_start[roots][:, None] + np.arange(counts[0])
    else:
        terms = np.repeat(term_start[roots] - np.r_[0, np.cumsum(counts)[:-1]], counts)
        terms += np.arange(terms.size)
    lm, rm = left[terms], right[terms]
    right_index = right_var = None
    if not (rm == one).all():
        right_index = _Index(slot[rm])
        mask = rm < one  # constants 1 and -1 take no gradient
        if mask.any():
            right_var = (mask, _Index(slot[rm[mask]]))
    return _SegmentSum(_Index(slot[lm]), right_index, right_var, counts, start, stop)
