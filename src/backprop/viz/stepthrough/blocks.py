"""Block by block: the steps of a page grouped by the scopes their nodes were made in
(``backprop.scope``, read as ``Value.scope``).

Two parts, both from the graph's shape alone (the page's script words the block steps from
the numbers, so that a nudged page words them the same way):

- ``block_order``: the order the page takes its steps in. The flat page takes them in
  ``backward()``'s order (the reverse of ``topological_order()``), where a block's nodes can
  be interleaved with other nodes. This order puts each block's steps together where it can,
  under one rule: every node still receives its gradient terms in the same order as in
  ``backward()`` (each input after all of its users, and the users of any one node in their
  ``backward()`` order). Every term, every partial sum and every final gradient is then the
  same float as on the flat page, bit for bit. Forward mode needs only a topological order:
  each node's tangent is set once, from its inputs' tangents.
- ``block_tree``: the levels of the page. A level (the whole graph, or one block) is a list of
  items in that order: a node outside any deeper scope is a single step; consecutive steps of
  one deeper scope are one block, which opens in place to a level of its own. A top level of
  more than LEVEL_STEPS (40) steps gathers each run of single steps into a block, and if it is
  still too long, its steps into consecutive groups, so that a page opens on at most 40 steps
  (a block's insides are shown whole, as the flat page shows them).
"""

from __future__ import annotations

__all__ = ["block_order", "block_tree", "LEVEL_STEPS"]

LEVEL_STEPS = 40  # a top level with more steps than this gathers its runs of single steps


def _parts(scope: str) -> tuple[str, ...]:
    return tuple(p for p in scope.split("/") if p) if scope else ()


def block_order(ops, inputs, scopes, forward: bool = False) -> list[int]:
    """The nodes with an op (the ones that have a step), in the order the page steps through
    them: reverse mode's each user before its inputs, forward mode's each input first."""
    n = len(ops)
    stepped = [i for i in range(n) if ops[i] is not None]
    flat = stepped if forward else stepped[::-1]
    if not any(scopes[i] for i in stepped):
        return flat
    rank = {node: k for k, node in enumerate(flat)}
    after: dict[int, list[int]] = {i: [] for i in stepped}  # node -> nodes that wait for it
    waiting = dict.fromkeys(stepped, 0)
    users: list[list[int]] = [[] for _ in range(n)]
    for i in stepped:
        for p in dict.fromkeys(inputs[i]):
            users[p].append(i)

    def must_precede(a: int, b: int) -> None:
        after[a].append(b)
        waiting[b] += 1

    for p in range(n):
        if forward:
            if ops[p] is not None:
                for u in users[p]:
                    must_precede(p, u)
            continue
        chain = sorted(users[p], key=rank.__getitem__)  # the order its terms arrive in
        for a, b in zip(chain, chain[1:]):
            must_precede(a, b)
        if ops[p] is not None and chain:
            must_precede(chain[-1], p)  # its last user first (so all of them)
    return _greedy(flat, rank, after, waiting, [_parts(scopes[i]) for i in range(n)])


def _greedy(flat, rank, after, waiting, paths) -> list[int]:
    """A topological sort that stays in the deepest open scope while it can, and enters a
    block only once nothing outside it holds it up, so that it runs whole (ties: flat order).
    """
    outside: dict[tuple[str, ...], int] = {}  # per scope: constraints from outside not yet met

    def scopes_apart(a: int, b: int):  # the scopes of b that a is not in
        pa, pb = paths[a], paths[b]
        return (pb[:k] for k in range(1, len(pb) + 1) if pa[:k] != pb[:k])

    for a, later in after.items():
        for b in later:
            for q in scopes_apart(a, b):
                outside[q] = outside.get(q, 0) + 1
    ready: dict[tuple[str, ...], set[int]] = {}

    def add(i: int) -> None:
        for k in range(len(paths[i]) + 1):
            ready.setdefault(paths[i][:k], set()).add(i)

    for i in flat:
        if waiting[i] == 0:
            add(i)
    order: list[int] = []
    current: tuple[str, ...] = ()
    while len(order) < len(flat):
        i = _pick(ready, current, paths, outside, rank)
        for k in range(len(paths[i]) + 1):
            ready[paths[i][:k]].discard(i)
        order.append(i)
        current = paths[i]
        for j in after[i]:
            for q in scopes_apart(i, j):
                outside[q] -= 1
            waiting[j] -= 1
            if waiting[j] == 0:
                add(j)
    return order


def _pick(ready, current, paths, outside, rank) -> int:
    """The next node: from the deepest scope of ``current`` that has a ready one, the first
    (in flat order) that is a single step of that level or starts a block nothing outside
    holds up; else the first."""
    for k in range(len(current), -1, -1):
        candidates = ready.get(current[:k])
        if not candidates:
            continue
        whole = [i for i in candidates if len(paths[i]) == k or not outside.get(paths[i][: k + 1])]
        return min(whole or candidates, key=rank.__getitem__)
    raise RuntimeError("block_order: the step constraints have a cycle")  # pragma: no cover


def block_tree(order: list[int], scopes, inputs, root: int) -> list[dict]:
    """The page's blocks: ``blocks[0]`` is the whole graph's level; each block has its
    ``path``, its ``name`` (the last part of the path, with the part number when a scope's
    steps come in more than one run), ``start`` and ``end`` (positions in ``order``, end
    excluded), ``items`` ([start, end, block] per step of its level, block -1 for a single
    step), ``parent``, and for a scope block its ``outputs`` (its nodes used outside it, or
    the root) and ``inputs`` (the nodes outside it that its nodes use)."""
    paths = [_parts(s) for s in scopes]
    blocks: list[dict] = [{"path": "", "name": "", "start": 0, "end": len(order), "parent": -1}]
    _fill_level(blocks, 0, order, paths, 0)
    _collapse(blocks)
    inside = _membership(blocks, order, len(scopes))
    users: list[list[int]] = [[] for _ in scopes]
    for i, ins in enumerate(inputs):
        for p in dict.fromkeys(ins):
            users[p].append(i)
    for b, blk in enumerate(blocks[1:], 1):
        members = inside[b]
        blk["outputs"] = sorted(
            i for i in members if i == root or any(u not in members for u in users[i])
        )
        blk["inputs"] = sorted({p for i in members for p in inputs[i] if p not in members})
    _name_parts(blocks)
    return blocks


def _fill_level(blocks, b: int, order, paths, depth: int) -> None:
    blk = blocks[b]
    items: list[list[int]] = []
    k = blk["start"]
    while k < blk["end"]:
        path = paths[order[k]]
        single = k + 1 == blk["end"] or paths[order[k + 1]][: depth + 1] != path[: depth + 1]
        if len(path) <= depth or single:
            items.append([k, k + 1, -1])
            k += 1
            continue
        key = path[: depth + 1]
        end = k + 1
        while end < blk["end"] and paths[order[end]][: depth + 1] == key:
            end += 1
        child = len(blocks)
        blocks.append({"path": "/".join(key), "start": k, "end": end, "parent": b})
        items.append([k, end, child])
        _fill_level(blocks, child, order, paths, depth + 1)
        k = end
    if depth == 0 and len(items) + 1 > LEVEL_STEPS:  # the top level, where a page opens
        items = _gather_singles(blocks, b, items)
    if depth == 0 and len(items) + 1 > LEVEL_STEPS:
        items = _gather_chunks(blocks, b, items)
    blk["items"] = items


def _gather_chunks(blocks, b: int, items: list[list[int]]) -> list[list[int]]:
    """A level still too long: its steps in consecutive groups, each a block of its own."""
    size = -(-len(items) // (LEVEL_STEPS - 1))
    out: list[list[int]] = []
    for k in range(0, len(items), size):
        part = items[k : k + size]
        if len(part) == 1:
            out.append(part[0])
            continue
        child = len(blocks)
        start, stop = part[0][0], part[-1][1]
        for item in part:
            if item[2] >= 0:
                blocks[item[2]]["parent"] = child
        blocks.append({
            "path": blocks[b]["path"], "start": start, "end": stop, "parent": b, "items": part,
            "name": f"steps {k + 1} to {k + len(part)} of {len(items)}", "gathered": "steps",
        })  # fmt: skip
        out.append([start, stop, child])
    return out


def _gather_singles(blocks, b: int, items: list[list[int]]) -> list[list[int]]:
    """A level of more than LEVEL_STEPS steps: each run of single steps (nodes made outside
    any deeper scope) becomes one block of its own, named by its size, that opens to them."""
    out: list[list[int]] = []
    k = 0
    while k < len(items):
        end = k
        while end < len(items) and items[end][2] < 0:
            end += 1
        if end - k < 2:
            out.append(items[k])
            k += 1
            continue
        child = len(blocks)
        start, stop = items[k][0], items[end - 1][1]
        blocks.append({
            "path": blocks[b]["path"], "start": start, "end": stop, "parent": b,
            "items": items[k:end], "name": f"{end - k} steps outside any scope",
            "gathered": "singles",
        })  # fmt: skip
        out.append([start, stop, child])
        k = end
    return out


def _membership(blocks, order, n) -> list[set[int]]:
    """Each block's nodes: those of its steps, and the leaves made in its scope."""
    return [set(order[blk["start"] : blk["end"]]) for blk in blocks]


def _collapse(blocks) -> None:
    """A block that holds nothing but one block (mlp/layer3 around its one neuron0) is that
    block, named by both (layer3/neuron0): opening it would show one step. The block left out
    stays in the list, with no parent's item pointing at it (parent -2)."""
    for b in range(len(blocks) - 1, 0, -1):
        blk = blocks[b]
        items = blk["items"]
        if len(items) == 1 and items[0][2] >= 0:
            child = blocks[items[0][2]]
            parent = blocks[blk["parent"]]
            for item in parent["items"]:
                if item[2] == b:
                    item[2] = items[0][2]
            child["parent"] = blk["parent"]
            blk["parent"] = -2


def _name_parts(blocks) -> None:
    runs: dict[tuple[int, str], list[dict]] = {}
    for blk in blocks[1:]:
        if "name" not in blk:  # (a run of single steps is named by its size)
            runs.setdefault((blk["parent"], blk["path"]), []).append(blk)
    for (parent, path), same in runs.items():
        above = blocks[parent]["path"] if parent >= 0 else ""
        name = path[len(above) + 1 :] if above and path.startswith(above + "/") else path
        name = name if parent >= 0 else path.rsplit("/", 1)[-1]
        for k, blk in enumerate(same, 1):
            blk["name"] = name if len(same) == 1 else f"{name} (part {k} of {len(same)})"
