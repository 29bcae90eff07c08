// explain()'s page, block by block: window.bpExplain.start(D) mounts the step-through
// (explain.js) at the top level of the scopes the graph was built in (backprop.scope), and
// opens a block in place to step through its insides, and closes it again.
//
// The page data (stepthrough's view.py and blocks.py): D.steps are the flat steps (the seed,
// one per node with an op, the summary); D.order lists the node steps in the order the page
// takes them, each block's steps together (every node still receives its terms in backward()'s
// order, so every number is the flat page's, bit for bit); D.blocks[0] is the whole graph and
// each block lists its items: [start, end, block] (positions in D.order, block -1 for a single
// step). A graph without scopes has neither: one level, the flat steps.
//
// Each level is mounted as a page of its own (the same drawing, kept where it was): its steps
// are its items, a block's changes merged (each node's first value before and last after).
// bpExplain.setSource(D2, note) shows other numbers on the same structure (nudge.js: the
// browser's recomputation), bpExplain.reset() the recorded ones.
(function () {
  "use strict";
  const { $, el, fmt } = window.bpCommon;

  let recorded = null, source = null, stack = [0], level = null, handle = null;
  const listeners = { onNode: [], onStart: [] };

  const shown = (n, word) => n + " " + word + (n === 1 ? "" : "s");
  const bits = (x) => (x === "NaN" || x === "Infinity" || x === "-Infinity" ? Number(x) : x);

  // ---- the levels ----------------------------------------------------------------------------

  function build(D, b) {
    const blocks = D.blocks, order = D.order, S = D.steps.length;
    const forward = D.mode === "forward", CELL = D.cell || "grad", START = D.cellStart || "0.0";
    const blk = blocks[b], N = D.names.length;
    const stepAt = (p) => D.steps[order[p]];
    const steps = [], spans = [];  // spans: the positions [start, end) each level step covers
    if (b === 0) { steps.push(D.steps[0]); spans.push([0, 0]); }
    else { steps.push(enter(D, blk, CELL, START, forward)); spans.push([blk.start, blk.start]); }
    for (const [start, end, child] of blk.items) {
      steps.push(child < 0 ? stepAt(start) : block(D, blocks[child], CELL, forward));
      spans.push([start, end]);
    }
    if (b === 0) { steps.push(D.steps[S - 1]); spans.push([order.length, order.length]); }
    else {
      const last = steps.length - 1, s = steps[last];
      steps[last] = Object.assign({}, s, { of: s, lines: s.lines.concat(["This is the last " +
        "step inside " + blk.name + ": close it (Esc, or the button above) to go on."]) });
    }
    // where each node's step is (its item), and after which step its cell no longer changes
    const stepOf = new Array(N).fill(-1), lastTouch = new Array(N).fill(-1);
    const lastPos = lastPositions(D);
    spans.forEach(([start, end], k) => {
      for (let p = start; p < end; p++) stepOf[stepAt(p).node] = k;
    });
    for (let i = 0; i < N; i++) {
      const p = lastPos[i];
      if (p === null) continue;
      if (p < blk.start) lastTouch[i] = 0;
      else if (p < blk.end) {
        lastTouch[i] = spans.findIndex(([s, e]) => p >= s && p < e);
      }
    }
    if (b === 0) lastTouch[D.root] = Math.max(lastTouch[D.root], 0);
    return Object.assign({}, D, { steps: steps, stepOf: stepOf, lastTouch: lastTouch });
  }

  // the last position in D.order whose step changes each node's cell (-1: the seed's; null:
  // never)
  function lastPositions(D) {
    if (D._lastPos) return D._lastPos;
    const out = new Array(D.names.length).fill(null);
    for (const c of D.steps[0].changes) out[c[0]] = -1;
    D.order.forEach((k, p) => { for (const c of D.steps[k].changes) out[c[0]] = p; });
    Object.defineProperty(D, "_lastPos", { value: out });
    return out;
  }

  function nodesOf(D, blk) {
    return D.order.slice(blk.start, blk.end).map((k) => D.steps[k].node);
  }

  // a block's steps as one: each node's first value before and last after
  function merged(D, blk) {
    const at = new Map();
    for (let p = blk.start; p < blk.end; p++) {
      for (const c of D.steps[D.order[p]].changes) {
        const m = at.get(c[0]);
        if (!m) at.set(c[0], { c: [c[0], c[1], c[2], c[3], c[4]], terms: [c[6]] });
        else { m.c[2] = c[2]; m.c[4] = c[4]; m.terms.push(c[6]); }
      }
    }
    return at;
  }

  // terms as shown, added up as a learner writes them (long sums cut, as sumText)
  function sumOf(terms) {
    const shown = terms.length <= 6 ? terms : terms.slice(0, 4);
    let text = shown[0];
    for (const t of shown.slice(1)) {
      text += t.startsWith("-") ? " \u2212 " + t.slice(1) : " + " + t;
    }
    if (terms.length > 6) {
      const last = terms[terms.length - 1];
      text += " + \u2026 (" + (terms.length - 5) + " more) \u2026" +
        (last.startsWith("-") ? " \u2212 " + last.slice(1) : " + " + last);
    }
    return text;
  }

  function listed(items, limit, more) {
    const out = items.slice(0, limit);
    if (items.length > limit) out.push("\u2026 and " + (items.length - limit) + " " + more);
    return out;
  }

  // what nodes' cells show just before position pos of D.order (start: never changed)
  function cellsBefore(D, pos, nodes, start) {
    const want = new Set(nodes), out = new Map();
    for (let p = pos - 1; p >= -1 && want.size; p--) {
      const changes = p < 0 ? D.steps[0].changes : D.steps[D.order[p]].changes;
      for (let k = changes.length - 1; k >= 0; k--) {
        const c = changes[k];
        if (want.has(c[0])) { out.set(c[0], c[4]); want.delete(c[0]); }
      }
    }
    for (const i of want) out.set(i, start);
    return out;
  }

  // a block as one step of the level above it
  function block(D, blk, CELL, forward) {
    const nodes = nodesOf(D, blk), members = new Set(nodes), at = merged(D, blk);
    const names = D.names, outputs = blk.outputs, inputs = blk.inputs;
    const byData = (list) => list.filter((i) => D.ops[i] !== null)
      .concat(list.filter((i) => D.ops[i] === null));
    const lines = [], formulas = [], sums = [];
    const calls = forward ? shown(nodes.length, "tangent") : shown(nodes.length, "_backward() call");
    const what = blk.gathered === "singles" ? "These " + shown(nodes.length, "node") +
      " were made outside any scope, one step each; they are gathered here to keep this " +
      "level short. Together they take " : blk.gathered ? "These " +
      shown(blk.items.length, "step") + " of the level (" + shown(nodes.length, "node") +
      " with an op) are gathered here to keep it short. Together they take " :
      blk.name + " is a block of " + shown(nodes.length, "node") + " with an op: it takes ";
    const size = what + shown(inputs.length, "value") + " from outside (data and " +
      "parameters) and give" + (blk.gathered ? " " : "s ") + shown(outputs.length, "output") +
      " that the rest of the graph uses.";
    lines.push(size);
    let rec;
    if (!forward) {
      lines.push("By the chain rule, each input's grad gets one term per path through the " +
        "block: the local derivatives along the path, multiplied, times the output's grad. " +
        "The block's " + calls + " add them up, one input at a time; open it to see each one.");
      lines.push("Its outputs' gradients are final now: every node that uses them has passed " +
        "its gradient back. Arriving at its outputs:");
      const arrived = cellsBefore(D, blk.start, outputs, "0.0");
      listed(byData(outputs).map((i) => names[i] + ".grad = " + arrived.get(i)), 8,
        "more outputs").forEach((t) => formulas.push(t));
      rec = inputs.filter((i) => at.has(i));
      const sent = byData(rec).map((i) => {
        const m = at.get(i);
        return names[i] + ".grad += " + sumOf(m.terms) + (m.terms.length > 1 ?
          " (" + m.terms.length + " terms from " + blk.name + ")" : "") +
          ": " + m.c[3] + " \u2192 " + m.c[4];
      });
      sums.push("Sent to its inputs, summed:");
      listed(sent, 12, "more inputs (click one on the graph to see its grad)")
        .forEach((t) => sums.push(t));
    } else {
      lines.push("Forward mode carries the tangents of its inputs through the block, node " +
        "by node, to its outputs: " + calls + ", each from its inputs' tangents.");
      rec = inputs;
      listed(byData(outputs).map((i) => names[i] + ".tangent = " +
        (at.has(i) ? at.get(i).c[4] : "0.0")), 12, "more outputs").forEach((t) => formulas.push(t));
    }
    const out = outputs.length ? outputs[forward ? outputs.length - 1 : 0] : nodes[0];
    return {
      kind: "block",
      node: members.has(out) ? out : nodes[0],
      nodes: nodes,
      rec: rec,
      block: blk,
      title: blk.name + ": " + (forward ? "the tangents pass through the block" :
        "the gradient passes back through the block") + " (" + calls + ")",
      lines: lines,
      formulas: formulas,
      sums: sums,
      changes: Array.from(at.values(), (m) => m.c),
    };
  }

  // a block's first step when opened: the state before it
  function enter(D, blk, CELL, START, forward) {
    const state = new Map();
    for (const c of D.steps[0].changes) state.set(c[0], c);
    for (let p = 0; p < blk.start; p++) {
      for (const c of D.steps[D.order[p]].changes) state.set(c[0], c);
    }
    const changes = Array.from(state.values(), (c) => [c[0], 0.0, c[2], START, c[4]]);
    const n = blk.end - blk.start;
    return {
      kind: "enter",
      node: blk.outputs.length ? blk.outputs[0] : null,
      nodes: nodesOf(D, blk),
      title: "Inside " + (blk.gathered ? blk.name : blk.path) + ": " +
        shown(blk.items.length, "step"),
      lines: [
        (forward ? "The tangents of its inputs are known: " : "The gradients of its outputs " +
          "have arrived: ") + "this level takes the block's " + shown(n, "node") + " one " +
          (forward ? "tangent" : "_backward() call") + " at a time (a block inside it is one " +
          "step, and opens too), in the order " + (forward ? "the forward pass computed them." :
          "backward() runs them."),
        "Every number is the one the flat page shows at the same " + CELL + ", bit for bit.",
      ],
      sums: [],
      changes: changes,
    };
  }

  // ---- mounting and the bar above the panel --------------------------------------------------

  function bar() {
    let box = $("bp-levels");
    if (!box) {
      box = el("div", "bp-levels");
      box.id = "bp-levels";
      $("panel").insertBefore(box, $("panel").firstChild);
    }
    return box;
  }

  function showBar(k, s) {
    const box = bar(), D = source;
    box.replaceChildren();
    if (!D.blocks) { box.hidden = true; return; }
    box.hidden = false;
    const crumbs = el("div", "crumbs");
    stack.forEach((b, depth) => {
      const name = b === 0 ? "all steps" : D.blocks[b].name;
      if (depth === stack.length - 1) crumbs.appendChild(el("b", "", name));
      else {
        const a = el("button", "crumb", name);
        a.onclick = () => close(stack.length - 1 - depth);
        crumbs.appendChild(a);
        crumbs.appendChild(document.createTextNode(" \u203a "));
      }
    });
    box.appendChild(crumbs);
    const row = el("div", "row");
    if (s.kind === "block") {
      const b = D.blocks.indexOf(s.block);
      const open = el("button", "open", "Open " + s.block.name + " \u25b8 (" +
        shown(s.block.items.length, "step") + " inside)");
      open.id = "bp-open";
      open.title = "step through this block's insides (Enter)";
      open.onclick = () => openBlock(b);
      row.appendChild(open);
    }
    if (stack.length > 1) {
      const up = el("button", "close", "\u25b4 Close " + D.blocks[stack[stack.length - 1]].name);
      up.id = "bp-close";
      up.title = "back to the level above (Esc)";
      up.onclick = () => close(1);
      row.appendChild(up);
    }
    box.appendChild(row);
    box.appendChild(outline(k));
    document.body.dataset.level = stack.map((b) => (b ? D.blocks[b].path : "")).join(">");
  }

  // the level's steps at a glance, around the current one: a block's name and size, a node's
  // name; click to go there
  function outline(k) {
    const steps = level.steps, list = el("ol", "outline");
    list.id = "bp-outline";
    const lo = Math.max(0, Math.min(k - 4, steps.length - 9)), hi = Math.min(steps.length, lo + 9);
    list.start = lo;
    for (let j = lo; j < hi; j++) {
      const s = steps[j];
      const words = s.kind === "block" ? s.block.name + " \u25b8 " +
        shown(s.block.end - s.block.start, "node") : s.kind === "seed" ? "start at the output" :
        s.kind === "done" ? "done" : s.kind === "enter" ? "before the block" :
        level.names[s.node] + (level.mode === "forward" ? ".tangent" : "._backward()");
      const item = el("li", j === k ? "now" : "", words);
      item.value = j;
      item.onclick = () => handle.go(j);
      if (s.kind === "block") item.ondblclick = () => openBlock(source.blocks.indexOf(s.block));
      list.appendChild(item);
    }
    if (lo > 0) list.insertBefore(el("li", "more", "\u2026"), list.firstChild);
    if (hi < steps.length) list.appendChild(el("li", "more", "\u2026"));
    return list;
  }

  function mountLevel(at, view, node) {
    const b = stack[stack.length - 1];
    level = source.blocks ? build(source, b) : source;
    handle = window.bpStepThrough.mount(level, {
      at: at,
      view: view,
      onStep: showBar,
      onNode: (i, box) => listeners.onNode.forEach((f) => f(i, box)),
    });
    if (node !== null && node !== undefined) handle.showNode(node);
    return handle;
  }

  function openBlock(b) {
    const view = handle.view(), node = handle.selected();
    stack.push(b);
    mountLevel(0, view, node);
  }

  function close(levels) {
    if (stack.length <= 1) return;
    const view = handle.view(), node = handle.selected();
    let b = null;
    for (let k = 0; k < levels && stack.length > 1; k++) b = stack.pop();
    const parent = source.blocks[stack[stack.length - 1]];
    // the item of the block closed (or of the block holding it), shown done
    const pos = source.blocks[b].start;
    const k = parent.items.findIndex(([s, e]) => pos >= s && pos < e);
    mountLevel(k + 1, view, node).follow();  // back where the block's step is
  }

  function keys(e) {
    const t = e.target;
    if (!handle || window.bpStepThrough.mounted() !== handle) return;  // closed (a page's overlay)
    if (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA") return;
    if (e.key === "Enter" && $("bp-open") && t.tagName !== "BUTTON") {
      e.preventDefault();
      $("bp-open").click();
    } else if (e.key === "Escape" && stack.length > 1) {
      e.preventDefault();
      close(1);
    }
  }

  function start(D) {
    recorded = source = D;
    stack = [0];
    window.addEventListener("keydown", keys);
    mountLevel(0);
    listeners.onStart.forEach((f) => f(D));
    window.bpExplain.readyMs = performance.now();  // from the start of navigation
    return handle;
  }

  // other numbers on the same graph (a nudge's), at the same level, step and view
  function setSource(D2) {
    const at = handle.step(), view = handle.view(), node = handle.selected();
    source = Object.assign({}, recorded, D2);
    return mountLevel(at, view, node);
  }

  function reset() {
    source = recorded;
    const at = handle.step(), view = handle.view(), node = handle.selected();
    return mountLevel(at, view, node);
  }

  window.bpExplain = {
    start: start,
    setSource: setSource,
    reset: reset,
    openBlock: (b) => openBlock(b),
    close: () => close(1),
    level: () => stack.slice(),
    recorded: () => recorded,
    source: () => source,
    handle: () => handle,
    onNode: (f) => listeners.onNode.push(f),
    onStart: (f) => listeners.onStart.push(f),
    build: build,
    fmt: fmt,
    bits: bits,
  };
})();
