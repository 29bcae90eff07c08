// Exact in-browser replay of one point's loss graph (the explorer's tapes, see explorer.py):
// forward and backward with the same formulas, in the same order, as Python's Value.backward()
// and the op table in ops.py, so that every data and grad is Python's double, bit for bit.
// JavaScript numbers are IEEE doubles and it never fuses a multiply-add, so + - * / sqrt agree
// exactly; Math.tanh, exp and log may differ from CPython's libm in the last bits, which the
// page's one-byte hints correct (fix()). window.bpReplay also words the backward pass as
// explain() does (explanation(): the data that bpStepThrough.mount() shows). Needs common.js
// (window.bpCommon: fmt and ref) first.
(function () {
  "use strict";

  // ---- bytes ---------------------------------------------------------------------------------

  function decodeU8(b64) {
    const text = atob(b64);
    const out = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
    return out;
  }

  function decodeF64(b64) {  // little-endian, as the page writes them
    const bytes = decodeU8(b64);
    const view = new DataView(bytes.buffer);
    const out = new Float64Array(bytes.length >> 3);
    for (let i = 0; i < out.length; i++) out[i] = view.getFloat64(8 * i, true);
    return out;
  }

  const scratch = new DataView(new ArrayBuffer(8));

  function lowByte(x) {
    scratch.setFloat64(0, x, true);
    return scratch.getUint8(0);
  }

  // The double nearest to approx (counted in ulps, i.e. in bit patterns of the same sign) whose
  // little-endian byte 0 is lowByte: Python's number, when approx is within 128 ulps of it.
  // Doubles of one sign are ordered as their bit patterns, across powers of two too.
  function fix(approx, lowByte) {
    if (!Number.isFinite(approx)) return approx;  // inf and nan: IEEE in both, no hint needed
    scratch.setFloat64(0, approx, true);
    if (scratch.getUint8(0) === lowByte) return approx;
    const bits = scratch.getBigUint64(0, true);
    const sign = bits & 0x8000000000000000n;
    const magnitude = bits ^ sign;
    const base = (magnitude & ~0xffn) | BigInt(lowByte);
    let best = -1n, distance = 0n;
    for (const c of [base - 256n, base, base + 256n]) {
      if (c < 0n || c >= 0x7ff0000000000000n) continue;  // keep the sign, stay finite
      const d = c > magnitude ? c - magnitude : magnitude - c;
      if (best < 0n || d < distance) { best = c; distance = d; }
    }
    scratch.setBigUint64(0, sign | best, true);
    return scratch.getFloat64(0, true);
  }

  // ---- the op table: ops.py's rows, term for term ------------------------------------------

  // 1 - y*y rounded once (ops.py's _one_minus_square): Dekker's exact product, then Fast2Sum
  function oneMinusSquare(y) {
    const c = 134217729.0 * y;
    const hi = c - (c - y);
    const lo = y - hi;
    const p = y * y;
    const e = ((hi * hi - p) + 2.0 * hi * lo) + lo * lo;
    const s = 1.0 - p;
    const t = (1.0 - s) - p;
    return s + (t - e);
  }

  const sign = (x) => (x > 0.0 ? 1.0 : (x < 0.0 ? -1.0 : x * 0.0));

  // forward(a, b | k) and backward(g, out, a, b | k) -> one grad per input. Division by zero
  // is IEEE's in JavaScript, as ops.py's _div makes it in Python.
  const OPS = {
    add: { f: (a, b) => a + b, b: (g, out, a, b) => [g, g] },
    sub: { f: (a, b) => a - b, b: (g, out, a, b) => [g, -g] },
    mul: { f: (a, b) => a * b, b: (g, out, a, b) => [g * b, g * a] },
    div: { f: (a, b) => a / b, b: (g, out, a, b) => [g / b, -g * ((a / b) / b)] },
    neg: { f: (a) => -a, b: (g) => [-g] },
    abs: { f: (a) => Math.abs(a), b: (g, out, a) => [g * sign(a)] },
    relu: { f: (a) => (a > 0.0 || a !== a ? a : 0.0), b: (g, out) => [out <= 0.0 ? 0.0 : g] },
    sqrt: { f: (a) => Math.sqrt(a), b: (g, out) => [g / (2.0 * out)] },
    sign: { f: (a) => sign(a), b: () => [0.0] },
    relu_grad: {  // g where c > 0, else 0: relu's derivative as an op of its own
      f: (g, c) => (c <= 0.0 ? 0.0 : g),
      b: (gg, out, g, c) => [c <= 0.0 ? 0.0 : gg, 0.0],
    },
    exp: { f: (a) => Math.exp(a), b: (g, out) => [g * out], libm: true },
    log: { f: (a) => Math.log(a), b: (g, out, a) => [g / a], libm: true },
    tanh: { f: (a) => Math.tanh(a), b: (g, out) => [g * oneMinusSquare(out)], libm: true },
    sigmoid: {
      f: (a) => 1.0 / (1.0 + Math.exp(-a)),
      b: (g, out) => [g * (1.0 - out) * out],
      libm: true,
    },
    // x ** k as ops.py's _pow_constant computes it: exact (no libm pow) for k in EXACT_POWERS,
    // else Math.pow, corrected by a hint; the derivative k * x ** (k - 1) takes its power from
    // p when given (run()'s powers: Python's, from a backward hint)
    powc: {
      f: (a, k) => powConstant(a, k),
      b: (g, out, a, k, p) => [k === 0.0 ? 0.0 :
        g * (k * (p === undefined ? powConstant(a, k - 1.0) : p))],
    },  // (a libm op for some k only: refusal() checks its hints itself)
  };
  const EXACT_POWERS = [0.0, 1.0, 2.0, 0.5, -0.5];
  function powConstant(a, k) {
    return k === 2.0 ? a * a : k === 0.5 ? Math.sqrt(a) : k === -0.5 ? 1.0 / Math.sqrt(a) :
      Math.pow(a, k);
  }
  const exactPower = (k) => EXACT_POWERS.includes(k);

  // A layer's activation as the explorer's views compute it: the op table's own rows, so that
  // the rules are written once. f(z) is the forward rule; backward(g, y) the gradient through
  // it from its output y (tanh's 1 - y*y rounded once, sigmoid's g * (1 - y) * y in that
  // order, as ops.py); slope(y) = backward(1, y), the local derivative.
  const IDENTITY = { f: (z) => z, b: (g) => [g] };
  const ACTIVATIONS = {};
  for (const [name, row] of [["tanh", OPS.tanh], ["relu", OPS.relu], ["sigmoid", OPS.sigmoid],
    ["linear", IDENTITY]]) {
    ACTIVATIONS[name] = {
      f: row.f,
      backward: (g, y) => row.b(g, y)[0],
      slope: (y) => row.b(1.0, y)[0],
    };
  }

  // why a node cannot be replayed exactly, or null (hinted, bhinted: the sets of nodes with a
  // hint for their data and for their derivative's power, or null when the replay has none)
  function refusal(tape, i, hinted, bhinted) {
    const op = tape.ops[i];
    if (op === null) return null;
    if (!(op in OPS)) {
      return "node " + i + " is " + op + ", which the page cannot replay exactly" +
        (op === "pow" || op === "rpow" ? " (its derivative needs a libm pow or log)" : "");
    }
    if (op === "powc") {
      const k = Number(tape.args[i]);
      const exact = exactPower(k) || (hinted && hinted.has(i));
      const local = k === 0.0 || exactPower(k - 1.0) || (bhinted && bhinted.has(i));
      if (!exact || !local) {
        return "node " + i + " is x ** " + tape.args[i] + ": only ** 0, 1, 2, 0.5 and -0.5 " +
          "replay exactly without hints (other powers need a libm pow)";
      }
      return null;
    }
    if (hinted && OPS[op].libm && !hinted.has(i)) {
      return "node " + i + " (" + op + ") has no hint: the browser's Math." + op +
        " may differ from Python's in the last bit";
    }
    return null;
  }

  function hintedSet(tape, which) {
    const slot = new Map();
    (tape[which || "hinted"] || []).forEach((node, k) => slot.set(node, k));
    return slot;
  }

  // Refuses (throws) a tape with an op it cannot replay exactly; null when all is well.
  function check(tape, withHints) {
    const slot = withHints === false ? null : hintedSet(tape);
    const bslot = withHints === false ? null : hintedSet(tape, "bhinted");
    for (let i = 0; i < tape.ops.length; i++) {
      const why = refusal(tape, i, slot, bslot);
      if (why) throw new Error("bpReplay: " + why);
    }
    return null;
  }

  function backwardOf(op, g, out, xs, arg, power) {
    const row = OPS[op];
    return arg === null || arg === undefined ? row.b(g, out, xs[0], xs[1]) :
      row.b(g, out, xs[0], arg, power);
  }

  // Every node's data and grad: tape in topological order, leafValue(leaf, i) (or an array by
  // node) for its leaves, hints the low bytes of the hinted nodes' data (k-th byte for the
  // k-th of tape.hinted), then of the powers in the derivatives of tape.bhinted's nodes. Without
  // hints (null) libm ops keep the browser's numbers: exact is then false. The backward pass
  // is Value.backward()'s: grads start at 0, the root gets seed, nodes run newest first, each
  // adding its terms into its inputs in operand order. powers: node -> the hinted power in its
  // derivative (for explanation()).
  function run(tape, leafValue, hints, seed) {
    const withHints = hints !== null && hints !== undefined;
    check(tape, withHints);
    const n = tape.ops.length;
    const slot = hintedSet(tape), bslot = hintedSet(tape, "bhinted");
    const H = (tape.hinted || []).length;
    const data = new Float64Array(n), grad = new Float64Array(n), powers = new Map();
    const valueOf = typeof leafValue === "function" ? leafValue : (leaf, i) => leafValue[i];
    for (let i = 0; i < n; i++) {
      const op = tape.ops[i];
      if (op === null) {
        data[i] = Number(valueOf(tape.leaves ? tape.leaves[i] : null, i));
        continue;
      }
      const ins = tape.inputs[i], arg = tape.args[i];
      const a = data[ins[0]];
      let out = arg === null || arg === undefined ?
        OPS[op].f(a, ins.length > 1 ? data[ins[1]] : undefined) : OPS[op].f(a, Number(arg));
      if (withHints && slot.has(i)) out = fix(out, hints[slot.get(i)]);
      data[i] = out;
      if (withHints && bslot.has(i)) {
        const k = Number(arg);
        powers.set(i, fix(powConstant(a, k - 1.0), hints[H + bslot.get(i)]));
      }
    }
    grad[tape.root] += seed === undefined ? 1.0 : seed;
    for (let i = n - 1; i >= 0; i--) {
      const op = tape.ops[i];
      if (op === null) continue;
      const ins = tape.inputs[i], arg = tape.args[i];
      const xs = ins.map((j) => data[j]);
      const terms = backwardOf(op, grad[i], data[i], xs, arg === null ? null : Number(arg),
        powers.get(i));
      for (let k = 0; k < ins.length; k++) grad[ins[k]] += terms[k];
    }
    return { data: data, grad: grad, exact: withHints, powers: powers };
  }

  // the gradient of each parameter (model.parameters() order) from a run's grads
  function paramGrads(tape, grad, P) {
    const out = new Float64Array(P);
    tape.leaves.forEach((leaf, i) => {
      if (leaf && leaf.param !== undefined) out[leaf.param] = grad[i];
    });
    return out;
  }

  // The nodes of every neuron: [layer][neuron] -> {sum, out}, the node of b + w0*x0 + ... and
  // of its activation (the same node for 'linear'). From tape.neurons when the tape has them,
  // else read off the graph as nn.Neuron builds it: its bias, then one add per input.
  function neurons(tape, sizes, activations) {
    if (tape.neurons) return tape.neurons;
    const n = tape.ops.length, users = Array.from({ length: n }, () => []);
    tape.inputs.forEach((ins, i) => ins.forEach((p) => users[p].push(i)));
    const nodeOfParam = new Map();
    tape.leaves.forEach((leaf, i) => {
      if (leaf && leaf.param !== undefined) nodeOfParam.set(leaf.param, i);
    });
    const follow = (node, op) => users[node].find((u) => tape.ops[u] === op &&
      tape.inputs[u][0] === node);
    const layers = [];
    let offset = 0;
    for (let l = 0; l + 1 < sizes.length; l++) {
      const nin = sizes[l], layer = [];
      for (let j = 0; j < sizes[l + 1]; j++) {
        let node = nodeOfParam.get(offset + j * (nin + 1) + nin);  // the bias
        for (let k = 0; k < nin && node !== undefined; k++) node = follow(node, "add");
        const act = activations[l];
        const out = node === undefined || act === "linear" ? node : follow(node, act);
        if (node === undefined || out === undefined) {
          throw new Error("bpReplay: neuron " + j + " of layer " + (l + 1) + " is not in " +
            "the tape as nn.Neuron builds it");
        }
        layer.push({ sum: node, out: out });
      }
      layers.push(layer);
      offset += sizes[l + 1] * (nin + 1);
    }
    return layers;
  }

  // each neuron's weighted sum and activation for one run: {sum: [[...]], out: [[...]]}
  function neuronValues(layers, data) {
    return {
      sum: layers.map((layer) => layer.map((u) => data[u.sum])),
      out: layers.map((layer) => layer.map((u) => data[u.out])),
    };
  }

  // ---- numbers as explain() writes them: common.js's fmt (stepthrough's fmt) -------------

  const { fmt, ref } = window.bpCommon;

  const constant = (k) => (Number.isInteger(k) && Math.abs(k) < 1e15 ? String(k) : fmt(k));

  function sumText(terms, limit) {
    limit = limit === undefined ? 12 : limit;
    const shown = terms.length <= limit ? terms : terms.slice(0, limit - 2);
    const term = (t) => (t < 0 ? " \u2212 " + fmt(-t) : " + " + fmt(t));
    let text = fmt(shown[0]);
    for (const t of shown.slice(1)) text += term(t);
    if (terms.length > limit) {
      text += " + \u2026 (" + (terms.length - shown.length - 1) + " more terms) \u2026";
      text += term(terms[terms.length - 1]);
    }
    return text;
  }

  // Python's float() of a text, or null where it raises ValueError
  const DIGITS = "\\d(?:_?\\d)*";  // Python allows single underscores between digits
  const FLOAT = new RegExp("^[+-]?(?:(?:" + DIGITS + "(?:\\.(?:" + DIGITS + ")?)?|\\." + DIGITS +
    ")(?:[eE][+-]?" + DIGITS + ")?|inf|infinity|nan)$", "i");
  function pyFloat(text) {
    const s = text.trim();
    if (!FLOAT.test(s)) return null;
    const body = s.replace(/_/g, "").replace(/^([+-]?)inf(inity)?$/i, "$1Infinity");
    return /nan$/i.test(body) ? NaN : Number(body);
  }

  function sameNumber(text, x) {
    const plain = text.replace(/\u2212/g, "-").replace(/^[()]+|[()]+$/g, "");
    const v = pyFloat(plain);
    return v !== null && fmt(v) === fmt(x);
  }

  const PLACEHOLDER = /\{(a|b|out)(\.data)?\}|\{(k|km1)\}/g;
  function fill(template, names, values, numeric) {
    return template.replace(PLACEHOLDER, (m, key, data, k, start) => {
      if (k) return constant(values[k]);
      if (data === undefined) return ref(names[key]);
      if (!numeric) return ref(names[key]) + ".data";
      const text = fmt(values[key]);
      const end = start + m.length;
      const enclosed = start > 0 && template[start - 1] === "(" && template[end] === ")";
      return text.startsWith("-") && !enclosed ? "(" + text + ")" : text;
    });
  }

  // ---- the step-through's data, as stepthrough.py's _replay and _page build it -------------

  // D for bpStepThrough.mount(): tape.view's drawing and structure, with data (every node's
  // value, e.g. run().data) and the steps of the backward pass from seed (default 1), worded
  // with derivatives (explain()'s LOCAL_DERIVATIVES: {op: {computes, locals, why}}); powers,
  // run().powers when the run had hints.
  function explanation(tape, values, derivatives, seed, powers) {
    seed = seed === undefined ? 1.0 : seed;
    const power = (i) => (powers ? powers.get(i) : undefined);
    const view = tape.view, names = view.names, n = names.length, root = tape.root;
    check(tape, !!powers);  // with run()'s powers, its hinted powers are Python's
    const grad = new Float64Array(n);
    const received = Array.from({ length: n }, () => []);  // [step node, term]
    const outName = ref(names[root]);
    grad[root] += seed;
    const steps = [{
      kind: "seed",
      node: root,
      title: "Start at the output: " + outName + ".grad = " + fmt(seed),
      lines: [
        "The derivative of " + outName + " with respect to itself is " +
          (seed === 1.0 ? "1" : fmt(seed)) + ", so backward() starts with " + outName +
          ".grad = " + fmt(seed) + ". Every other grad starts at 0.",
        "Each following step takes one node, newest first, and passes its gradient to its " +
          "inputs with the chain rule: input.grad += (local derivative) \u00d7 node.grad.",
      ],
      sums: [],
      changes: [[root, 0.0, seed, "0.0", fmt(seed)]],
    }];
    for (let i = n - 1; i >= 0; i--) {
      const op = tape.ops[i];
      if (op === null) continue;
      const ins = tape.inputs[i];
      const arg = tape.args[i] === null || tape.args[i] === undefined ? null : Number(tape.args[i]);
      const xs = ins.map((j) => values[j]);
      const befores = ins.map((j) => grad[j]);
      const g = grad[i], out = values[i];
      const terms = backwardOf(op, g, out, xs, arg, power(i));
      const locals = backwardOf(op, 1.0, out, xs, arg, power(i));
      for (let k = 0; k < ins.length; k++) grad[ins[k]] += terms[k];  // _backward() itself
      const explained = derivatives[op];
      const labels = { out: names[i] }, vals = { out: out };
      ins.forEach((j, k) => { labels["ab"[k]] = names[j]; vals["ab"[k]] = values[j]; });
      if (arg !== null) { vals.k = arg; vals.km1 = arg - 1.0; }
      const me = ref(names[i]);
      const step = {
        kind: "backward",
        node: i,
        title: me + "._backward(): " + fill(explained.computes, labels, vals, false),
        lines: [
          me + ".grad = " + fmt(g) + " is final: every node that uses " + me +
            " has already passed its gradient back to it.",
          "Local derivative: " + explained.why + ".",
        ],
        sums: [],
        changes: [],
      };
      const running = new Map();
      ins.forEach((j, k) => {
        const term = terms[k], local = locals[k], who = ref(names[j]);
        const before = running.has(j) ? running.get(j) : befores[k];
        const after = before + term;
        running.set(j, after);
        let symbolic = fill(explained.locals[k], labels, vals, false);
        let numeric = fill(explained.locals[k], labels, vals, true);
        if (op === "relu") {
          const passes = local !== 0;  // Python's truth of a float: nonzero (nan too)
          symbolic = numeric = passes ? "1" : "0";
          step.lines.push("Here " + me + ".data = " + fmt(out) + " " + (passes ? ">" : "\u2264") +
            " 0, so the local derivative is " + symbolic + ".");
        }
        const wrap = symbolic.includes(" ") ? (s) => "(" + s + ")" : (s) => s;
        let line = who + ".grad += " + wrap(symbolic) + " \u00d7 " + me + ".grad = " +
          wrap(numeric) + " \u00d7 " + fmt(g);
        if (!sameNumber(numeric, local)) line += " = " + fmt(local) + " \u00d7 " + fmt(g);
        line += " = " + fmt(term);
        received[j].push([i, term]);
        step.changes.push([j, before, after, fmt(before), fmt(after), line, fmt(term)]);
      });
      for (const j of new Set(ins)) {
        const got = received[j];
        if (got.length < 2) continue;
        const by = new Map();
        for (const [s] of got) by.set(ref(names[s]), (by.get(ref(names[s])) || 0) + 1);
        const uses = by.size <= 4 ? Array.from(by, ([u, k]) => k + " by " + u).join(", ") :
          "by " + by.size + " different nodes";
        step.sums.push(ref(names[j]) + " is used " + got.length + " times (" + uses + "), so " +
          "its gradient is the sum of one term per use: " + ref(names[j]) + ".grad = " +
          sumText(got.map((t) => t[1])) + " = " + fmt(grad[j]));
      }
      steps.push(step);
    }
    const leaves = [];
    for (let i = 0; i < n; i++) if (tape.ops[i] === null && i !== root) leaves.push(i);
    const summary = [
      "Every gradient is now final. Each one says how " + outName + " responds to a small " +
        "nudge h of that node: " + outName + " changes by about grad \u00d7 h.",
    ];
    if (leaves.length > 12) {
      summary.push("The first 12 of " + leaves.length + " inputs (click a node to see its grad):");
    }
    steps.push({
      kind: "done",
      node: null,
      title: "Done: the backward pass is complete",
      lines: summary,
      sums: leaves.slice(0, 12).map((i) => ref(names[i]) + ".grad = " + fmt(grad[i])),
      changes: [],
    });
    return Object.assign({}, view, {
      data: Array.from(values),
      dataText: Array.from(values, fmt),
      steps: steps,
      grads: Array.from(grad),
    });
  }

  // ---- the explorer's page data (explorer.py's #bpx-data) -----------------------------------

  // One decoding of a page's arrays, and each point's replay at any frame:
  // point(frame, i) -> {tape, data, grad, loss, paramGrads, neurons: {sum, out}};
  // explanation(frame, i) -> the step-through's D for that point's backward pass.
  function forPage(page) {
    const params = decodeF64(page.params), grads = decodeF64(page.grads);
    const hints = decodeU8(page.hints);
    const P = page.P, H = page.H, count = page.X.length;
    const shapes = new Map();
    function neuronsOf(tape) {
      if (!shapes.has(tape)) shapes.set(tape, neurons(tape, page.sizes, page.activations));
      return shapes.get(tape);
    }
    function point(frame, i) {
      const c = page.y[i], tape = page.tapes[page.tapeOfClass[c]];
      const x = page.X[i], target = Number(page.targetOfClass[c]), base = frame * P;
      const leaf = (l) => (l.param !== undefined ? params[base + l.param] :
        l.input !== undefined ? x[l.input] : l.target ? target : Number(l.const));
      const at = (frame * count + i) * H;
      const r = run(tape, leaf, hints.subarray(at, at + H));
      return {
        tape: tape,
        data: r.data,
        grad: r.grad,
        loss: r.data[tape.root],
        paramGrads: paramGrads(tape, r.grad, P),
        neurons: neuronValues(neuronsOf(tape), r.data),
      };
    }
    return {
      params: params,
      grads: grads,
      hints: hints,
      frameParams: (frame) => params.subarray(frame * P, (frame + 1) * P),
      frameGrads: (frame) => grads.subarray(frame * P, (frame + 1) * P),
      point: point,
      explanation: (frame, i) => {
        const p = point(frame, i);
        return explanation(p.tape, p.data, page.derivatives);
      },
    };
  }

  window.bpReplay = {
    decodeF64: decodeF64,
    decodeU8: decodeU8,
    lowByte: lowByte,
    fix: fix,
    check: check,
    run: run,
    paramGrads: paramGrads,
    neurons: neurons,
    neuronValues: neuronValues,
    explanation: explanation,
    forPage: forPage,
    activations: ACTIVATIONS,
    fmt: fmt,
    fill: fill,
    sumText: sumText,
    sameNumber: sameNumber,
    ref: ref,
    constant: constant,
  };
})();
