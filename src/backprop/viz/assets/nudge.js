// Nudge a leaf, live, on explain()'s page: pick a leaf (click it), type a value or drag, and
// the page recomputes the forward and the backward pass in the browser (replay.js's run and
// explanation, the op rules of ops.py) and shows the lecture's check beside the leaf's grad:
// (L(x + h) - L(x)) / h, the output's change divided by a small nudge h. The numbers the
// browser computed are marked as such (its Math.tanh and exp may differ from CPython's in the
// last digit); Reset brings back the recorded numbers, Python's, exactly.
(function () {
  "use strict";
  const { $, el, fmt, pyRepr } = window.bpCommon;
  let leaf = null, values = null, box = null, h = 1e-7, timer = null;

  const tapeOf = (D) => ({
    ops: D.ops, inputs: D.inputs, args: D.args, root: D.root, view: D,
  });
  const numbers = (D) => D.data.map(Number);

  function panel() {
    if (!box) {
      box = el("section", "bp-nudge");
      box.id = "bp-nudge";
      $("panel").insertBefore(box, $("bp-step"));
    }
    return box;
  }

  // why the browser cannot recompute this graph, or null
  function refusal(D) {
    try {
      window.bpReplay.check(tapeOf(D), false);
      return null;
    } catch (e) {
      return String(e.message).replace(/^bpReplay: /, "")
        .replace(/^node (\d+)/, (m, i) => D.names[Number(i)]);
    }
  }

  function show(i) {
    const D = window.bpExplain.recorded();
    if (D.mode === "forward" || D.ops[i] !== null || leaf === i) return;
    leaf = i;
    build(D, i);
  }

  // before a leaf is picked: how to nudge one
  function tip() {
    const D = window.bpExplain.recorded(), p = panel();
    if (D.mode === "forward") { p.hidden = true; return; }
    p.replaceChildren(el("p", "tip", "Nudge an input, live: click a leaf (a box with no " +
      "oval before it) to change its value and watch every gradient follow."));
  }

  function build(D, i) {
    const p = panel();
    p.hidden = false;
    p.replaceChildren();
    const name = D.names[i], root = D.names[D.root];
    p.appendChild(el("h3", "", "Nudge " + name + ", live"));
    const why = refusal(D);
    if (why) {
      p.appendChild(el("p", "refused", "This page cannot recompute the graph in the " +
        "browser: " + why + "."));
      return;
    }
    if (!values) values = numbers(D);
    const x0 = Number(D.data[i]);
    p.appendChild(el("p", "", "Change " + name + " and the page runs the forward and the " +
      "backward pass again, in your browser. The recorded value is " + fmt(x0) + "."));
    const row = el("div", "row");
    const input = el("input");
    Object.assign(input, { id: "bp-nudge-value", type: "text", value: pyRepr(values[i]) });
    input.setAttribute("aria-label", "value of " + name);
    const scale = Math.max(Math.abs(x0), 1);
    const slider = el("input");
    Object.assign(slider, { id: "bp-nudge-slider", type: "range", min: -1, max: 1,
      step: 0.005, value: 0 });
    slider.setAttribute("aria-label", "drag to nudge " + name);
    slider.title = "drag: " + fmt(x0 - scale) + " to " + fmt(x0 + scale);
    const reset = el("button", "", "Reset");
    reset.id = "bp-nudge-reset";
    reset.title = "the recorded numbers, Python's, exactly";
    row.append(input, slider, reset);
    p.appendChild(row);
    const hrow = el("div", "row");
    const hIn = el("input");
    Object.assign(hIn, { id: "bp-nudge-h", type: "text", value: String(h) });
    hIn.setAttribute("aria-label", "h");
    hrow.append(el("span", "", "h ="), hIn);
    p.appendChild(hrow);
    const out = el("div", "check");
    out.id = "bp-nudge-check";
    p.appendChild(out);
    const set = (x, from) => {
      if (!(Number.isFinite(x))) return;
      values[i] = x;
      if (from !== input) input.value = pyRepr(x);
      if (from !== slider) slider.value = Math.max(-1, Math.min(1, (x - x0) / scale));
      schedule(D, i, root);
    };
    input.addEventListener("change", () => {
      const text = input.value.trim().replace(/\u2212/g, "-");
      if (text) set(Number(text), input);
    });
    input.addEventListener("keydown", (e) => { if (e.key === "Enter") input.blur(); });
    slider.addEventListener("input", () => set(x0 + Number(slider.value) * scale, slider));
    hIn.addEventListener("change", () => {
      const v = Number(hIn.value);
      if (Number.isFinite(v) && v !== 0) { h = v; check(D, i, root); }
    });
    reset.addEventListener("click", () => resetAll(D, i));
    check(D, i, root);
  }

  function schedule(D, i, root) {
    if (timer !== null) return;
    timer = requestAnimationFrame(() => { timer = null; recompute(D, i, root); });
  }

  // the whole page again from the nudged values: the browser's forward and backward pass
  function recompute(D, i, root) {
    const tape = tapeOf(D);
    const r = window.bpReplay.run(tape, values, null);
    const again = window.bpReplay.explanation(tape, r.data, D.derivatives);
    window.bpExplain.setSource({ data: again.data, dataText: again.dataText,
      steps: again.steps });
    mark(true);
    check(D, i, root, r);
  }

  // the lecture's check at the current value: (L(x + h) - L(x)) / h beside x.grad
  function check(D, i, root, r) {
    const tape = tapeOf(D);
    r = r || window.bpReplay.run(tape, values, null);
    const up = values.slice();
    up[i] = values[i] + h;
    const L = r.data[D.root], Lh = window.bpReplay.run(tape, up, null).data[D.root];
    const fd = (Lh - L) / h, g = r.grad[i], name = D.names[i];
    const out = $("bp-nudge-check");
    out.replaceChildren();
    out.dataset.fd = String(fd);
    out.dataset.grad = String(g);
    out.dataset.loss = String(L);
    out.appendChild(el("div", "", root + " = " + fmt(L) + " at " + name + " = " +
      fmt(values[i])));
    const paren = (x) => (x < 0 ? "(" + pyRepr(x) + ")" : pyRepr(x));
    out.appendChild(el("div", "term", "(" + root + "(" + name + " + h) \u2212 " + root + "(" +
      name + ")) / h = (" + pyRepr(Lh) + " \u2212 " + paren(L) + ") / " + pyRepr(h) + " = " +
      fmt(fd)));
    out.appendChild(el("div", "term", name + ".grad = " + fmt(g)));
    out.appendChild(el("p", "", "They agree to " + agreement(fd, g) + ": the gradient is the " +
      "slope, how much " + root + " moves per unit nudge of " + name + ". (The difference " +
      "shrinks with h, until rounding takes over.)"));
    out.appendChild(el("p", "browser-note", "Computed by your browser (its tanh and exp may " +
      "differ from Python's in the last digit)."));
  }

  function agreement(a, b) {
    const d = Math.abs(a - b), scale = Math.max(Math.abs(a), Math.abs(b), 1e-300);
    if (d === 0) return "every digit";
    const digits = Math.floor(-Math.log10(d / scale));
    return digits >= 1 ? "about " + digits + " significant digit" + (digits === 1 ? "" : "s") :
      "less than one digit (try a smaller h)";
  }

  function mark(on) {
    document.body.classList.toggle("bp-browser", on);
    document.body.dataset.browser = on ? "1" : "";
    let note = $("bp-browser-note");
    if (on && !note) {
      note = el("div", "bp-browser-note", "Nudged: the numbers in purple were computed by " +
        "your browser, not by Python (its tanh and exp may differ in the last digit). Reset " +
        "brings back the recorded ones.");
      note.id = "bp-browser-note";
      $("panel").insertBefore(note, $("panel").firstChild);
    } else if (!on && note) note.remove();
  }

  function resetAll(D, i) {
    values = numbers(D);
    window.bpExplain.reset();
    mark(false);
    leaf = null;
    show(i);
  }

  window.bpExplain.onNode((i) => show(i));
  window.bpExplain.onStart(tip);
  window.bpNudge = {
    set: (i, x) => {  // for tests and the console: nudge leaf i to x
      window.bpExplain.handle().showNode(i);
      window.bpExplain.handle().reveal(i);
      const input = $("bp-nudge-value");
      input.value = pyRepr(x);
      input.dispatchEvent(new Event("change"));
    },
    flush: () => {
      if (timer !== null) {
        cancelAnimationFrame(timer);
        timer = null;
        const D = window.bpExplain.recorded();
        recompute(D, leaf, D.names[D.root]);
      }
    },
    reset: () => $("bp-nudge-reset").click(),
    setH: (x) => { h = x; },
  };
})();
