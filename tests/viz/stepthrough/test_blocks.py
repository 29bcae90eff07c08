"""explain() block by block (issue 20): the page's order of steps groups each scope's nodes
and keeps every number bit for bit; the levels; the page's size for a one-token attention loss.
Browser tests: test_blocks_browser.py."""

from __future__ import annotations

import json
import re

import pytest
from token_graph import tagged_scopes, token_loss

from backprop import Value, explain
from backprop.viz.stepthrough.blocks import block_order, block_tree


def page_data(ex) -> dict:
    m = re.search(r'<script type="application/json" id="bp-data">(.*?)</script>', ex.html, re.S)
    return json.loads(m.group(1))


@pytest.fixture(scope="module")
def small():
    loss, params = token_loss(token=1, target=2, n_embd=4, n_head=2, vocab=5)
    with tagged_scopes():
        yield loss, explain(loss), params


def replay_in_page_order(ex, order):
    """Apply every step's changes in the page's order, checking that each change starts from
    the value the node holds then (the page's state is consistent), exactly; returns the
    final values and, per node, the values it took in turn."""
    state = [0.0] * len(ex.names)
    seen = [[] for _ in ex.names]
    state[ex.root] = ex.seed
    seen[ex.root].append(ex.seed)
    for k in order:
        for c in ex.steps[k].contributions:
            assert c.before == state[c.node] or (
                c.before != c.before and state[c.node] != state[c.node]
            )
            state[c.node] = c.after
            seen[c.node].append(c.after)
    return state, seen


def test_page_order_keeps_every_number_bit_for_bit(small):
    loss, ex, _ = small
    order, blocks = ex.block_steps()
    flat = list(range(1, len(ex.steps) - 1))
    assert sorted(order) == flat and order != flat  # a permutation, and not the flat one
    got, seen = replay_in_page_order(ex, order)
    want, seen_flat = replay_in_page_order(ex, flat)
    assert got == want == ex.grads  # bit for bit: == on floats
    assert seen == seen_flat  # every node takes the same values, in the same order


def test_each_scope_is_together_where_backward_allows(small):
    loss, ex, _ = small
    order, blocks = ex.block_steps()
    top = blocks[0]
    assert [blocks[b]["path"] for _, _, b in top["items"] if b >= 0] == [
        "loss",
        "lm_head",
        "attn",
        "embed",
    ]
    assert len(top["items"]) + 1 <= 40
    # items tile their block, and each block's steps are its scope's
    for b, blk in enumerate(blocks):
        ends = [blk["start"]] + [e for _, e, _ in blk["items"]]
        assert [s for s, _, _ in blk["items"]] == ends[:-1] and ends[-1] == blk["end"]
        for k in range(blk["start"], blk["end"]):
            node = ex.steps[order[k]].node
            assert (ex.scopes[node] + "/").startswith(blk["path"] + "/") or b == 0
    heads = [blk for blk in blocks if blk["path"].startswith("attn/head")]
    assert sorted(blk["path"] for blk in heads if "/" not in blk["path"][5:]) == [
        "attn/head0",
        "attn/head1",
    ]  # each head in one piece


def test_outputs_and_inputs_of_a_block(small):
    loss, ex, _ = small
    order, blocks = ex.block_steps()
    (lm_head,) = [b for b in blocks if b["path"] == "lm_head" and not b.get("gathered")]
    members = {ex.steps[order[k]].node for k in range(lm_head["start"], lm_head["end"])}
    assert len(lm_head["outputs"]) == 5  # the 5 logits
    for i in lm_head["outputs"]:
        assert i in members
    for i in lm_head["inputs"]:
        assert i not in members
    weights = [i for i in lm_head["inputs"] if ex.names[i].startswith("lm_head[")]
    assert len(weights) == 5 * 4


def test_forward_mode_groups_too(small):
    loss, _, params = small
    order_ = loss.topological_order()
    wrt = [v for v in order_ if v.label == "wq[0][0]"][0]
    with tagged_scopes():
        ex = explain(loss, mode="forward", wrt=wrt)
        order, blocks = ex.block_steps()
    position = {k: p for p, k in enumerate(order)}
    for k in order:  # each node's tangent after its inputs'
        s = ex.steps[k]
        for p in ex.inputs[s.node]:
            if ex.ops[p] is not None:
                assert position[ex.steps.index(_step_of(ex, p))] < position[k]
    assert [blocks[b]["path"] for _, _, b in blocks[0]["items"] if b >= 0] == [
        "embed",
        "attn",
        "lm_head",
        "loss",
    ]
    data = page_data(ex)
    assert data["order"] == order and data["mode"] == "forward"
    assert "bp-blocks-intro" in ex.html


def _step_of(ex, node):
    return next(s for s in ex.steps if s.node == node and s.kind == "forward")


def test_a_graph_without_scopes_keeps_the_flat_order():
    a, b = Value(2.0, label="a"), Value(-1.0, label="b")
    ex = explain((a * b + a).tanh())
    assert ex.block_steps()[0] == list(range(1, len(ex.steps) - 1))
    data = page_data(ex)
    assert "order" not in data and "blocks" not in data and "scopes" not in data
    assert data["args"] == [None] * len(ex.names) and "tanh" in data["derivatives"]
    assert "bp-blocks-intro" not in ex.html


def test_block_order_alone_keeps_users_in_backward_order():
    # x is used inside block "b" and outside it, interleaved: its two users keep their order
    ops = [None, "mul", "mul", "add"]
    inputs = [[], [0, 0], [0, 0], [1, 2]]
    order = block_order(ops, inputs, ["", "b", "", ""])
    assert order == [3, 2, 1]
    tree = block_tree(order, ["", "b", "", ""], inputs, 3)
    assert [item[2] for item in tree[0]["items"]] == [-1, -1, -1]  # one step alone: no block


def test_the_token_graph_top_level_and_size():
    loss, _ = token_loss()
    with tagged_scopes():
        ex = explain(loss)
        html = ex.html
    assert 3800 < len(ex.names) < 4200
    order, blocks = ex.block_steps()
    assert len(blocks[0]["items"]) + 1 <= 40
    assert len(html.encode("utf-8")) < 5_000_000
    assert 'id="v0"' not in html  # a big graph is drawn by the page's script
    data = page_data(ex)
    assert len(data["cells"]) == len(ex.names) and len(data["order"]) == len(ex.steps) - 2


def test_a_long_level_gathers_its_single_steps():
    import backprop

    x = Value(0.5, label="x")
    y = x
    for k in range(30):  # 30 blocks, each between two steps made outside any scope
        y = y * 1.01 + 0.1
        with backprop.scope(f"b{k}"):
            y = (y * y).tanh()
    ex = explain(y)
    order, blocks = ex.block_steps()
    top = blocks[0]["items"]
    assert len(top) + 1 <= 40
    runs = [blk for blk in blocks if blk.get("gathered") and "outside" in blk["name"]]
    assert runs and all(len(blk["items"]) >= 2 for blk in runs)
    assert runs[0]["name"] == f"{len(runs[0]['items'])} steps outside any scope"
    for blk in runs:  # it opens to single steps of nodes outside any scope
        assert all(b < 0 and not ex.scopes[ex.steps[order[s]].node] for s, _, b in blk["items"])
    chunks = [blocks[b] for _, _, b in top if b >= 0]  # the level was still too long
    assert all(blk.get("gathered") and blk["name"].startswith("steps ") for blk in chunks)
    got, _ = replay_in_page_order(ex, order)
    assert got == ex.grads


def test_blocks_false_gives_the_flat_page(small):
    loss, grouped, _ = small
    with tagged_scopes():
        flat = explain(loss, blocks=False)
    assert flat.grads == grouped.grads and "order" not in page_data(flat)
    assert flat.block_steps()[0] == list(range(1, len(flat.steps) - 1))
    with pytest.raises(TypeError, match="blocks must be True or False"):
        explain(loss, blocks="no")
