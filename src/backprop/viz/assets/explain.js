// The step-through view of one backward pass, shared by explain()'s page and the explorer's:
// window.bpStepThrough.mount(D, hooks) runs it on the page's step-view markup (stepthrough's
// step_view_markup(): the ids below) with the page data D (explain()'s #bp-data), and returns
// a handle whose destroy() removes every listener it added. One view is mounted at a time.
// hooks (optional, explain()'s blocks.js and nudge.js): onStep(k, step) after each step,
// onNode(i, box) after a node's details are shown, at (the step to start at) and view (the
// part of the graph to show, from an earlier handle's view(): a level of blocks, or a nudge,
// mounts its own data on the same drawing without moving it). A step may list nodes (a
// block's: drawn as one) and rec (the nodes it sends gradients to).
(function () {
  "use strict";
  let mounted = null;

  // the helpers every page shares (common.js, inlined before this file)
  const { $, el, ref, pyRepr } = window.bpCommon;

  // The drawing, from the compact page data of a big graph (view.py's view_of(compact=True)):
  // the same elements view.py writes for a small one, built in the browser a node at a time
  // (fewer of them: one path for both separators, the tooltip left to the node's panel).
  const esc = (s) => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;")
    .replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  const f1 = (x) => x.toFixed(1);

  // the edges drawn into node i: from each input's box to its op's oval, and from the oval on
  function edgesInto(D, i) {
    const off = D.cull ? " off" : "", out = [];
    const edge = (x1, y1, x2, y2, src) => {  // (the arrow head from the CSS)
      const mid = (x1 + x2) / 2;
      out.push('<path class="edge' + off + '" data-node="' + i + '" data-src="' + src +
        '" d="M' + f1(x1) + "," + f1(y1) + " C" + f1(mid) + "," + f1(y1) + " " + f1(mid) + "," +
        f1(y2) + " " + f1(x2) + "," + f1(y2) + '"/>');
    };
    const b = D.boxes[i], oy = (b[5] + b[7]) / 2, count = new Map(), seen = new Map();
    for (const p of D.inputs[i]) count.set(p, (count.get(p) || 0) + 1);
    for (const p of D.inputs[i]) {
      const k = seen.has(p) ? seen.get(p) + 1 : 0;
      seen.set(p, k);
      const shift = (k - (count.get(p) - 1) / 2) * 8, pb = D.boxes[p];
      edge(pb[2], (pb[1] + pb[3]) / 2 + shift, b[4], oy + shift, p);
    }
    edge(b[6], oy, b[0], (b[1] + b[3]) / 2, i);
    return out.join("");
  }

  // node i's box (name, data and grad cells), then its op's oval
  function nodeMarkup(D, i) {
    const off = D.cull ? " off" : "", CELL = D.cell || "grad", START = D.cellStart || "0.0";
    const b = D.boxes[i], w = b[2] - b[0], h = b[3] - b[1], name = D.names[i];
    const short = name.length <= 28 ? name : name.slice(0, 27) + "\u2026";
    const cells = [D.cells[i][0], D.cells[i][1], w - D.cells[i][0] - D.cells[i][1]];
    const texts = [["name" + (D._auto.has(i) ? " auto" : ""), short],
      ["data", "data " + D.dataText[i]], ["grad", CELL + " " + START]];
    let g = '<g class="vnode' + (D.ops[i] === null ? " leaf" : "") + off + '" id="v' + i +
      '" data-i="' + i + '" data-name="' + esc(name) + '" data-grad="0.0" transform="translate(' +
      f1(b[0]) + "," + f1(b[1]) + ')"><rect class="box" width="' + f1(w) + '" height="' + f1(h) +
      '" rx="4"/>';
    g += '<path class="sep" d="M' + f1(cells[0]) + ",0V" + h + "M" + f1(cells[0] + cells[1]) +
      ",0V" + h + '"/>';
    let cx = 0;
    for (let k = 0; k < 3; k++) {
      if (k === 2) {
        g += '<rect class="gradcell" x="' + f1(cx) + '" width="' + f1(cells[2]) + '" height="' +
          f1(h) + '" rx="4"/>';
      }
      g += '<text class="' + texts[k][0] + '" x="' + f1(cx + cells[k] / 2) + '" y="' +
        f1(h / 2 + 4) + '">' + esc(texts[k][1]) + "</text>";
      cx += cells[k];
    }
    g += "</g>";
    if (D.ops[i] !== null) {
      const ox = (b[4] + b[6]) / 2, oy = (b[5] + b[7]) / 2;
      g += '<g class="opnode' + off + '" id="o' + i + '" data-i="' + i + '"><ellipse cx="' +
        f1(ox) + '" cy="' + f1(oy) + '" rx="' + f1((b[6] - b[4]) / 2) + '" ry="' +
        f1((b[7] - b[5]) / 2) + '"/><text x="' + f1(ox) + '" y="' + f1(oy + 4) + '">' +
        esc(D.ovals[i]) + "</text></g>";
    }
    return g;
  }

  // A big graph's drawing (built here from its compact data) is made a node at a time, when a
  // node first comes into view or is asked for (make()), and kept out of the document but for
  // what is in view: world holds two layers, edges under boxes, and cull() moves elements in
  // and out of them. The browser then builds, styles and lays out a few hundred elements, not
  // the whole graph's (a 40,000-node graph has some 400,000), when it opens and at every step.
  function lazyDrawing(D, world) {
    const SVGNS = world.namespaceURI;
    const layers = ["bp-edges", "bp-nodes"].map((id) => {
      const g = document.createElementNS(SVGNS, "g");
      g.id = id;
      return g;
    });
    world.replaceChildren(...layers);
    const users = Array.from({ length: D.names.length }, () => []);
    D.inputs.forEach((ins, i) => ins.forEach((p) => users[p].push(i)));
    return { boxes: D.boxes, edges: layers[0], nodes: layers[1], users: users,
      scratch: document.createElementNS(SVGNS, "g"), edgesMade: new Uint8Array(D.names.length) };
  }

  // the elements of the drawing in world, by node (a lazy drawing's: null until made)
  let drawn = null, lazy = null;
  function elements(world, svg, N, apart) {
    const els = { first: world.firstElementChild, N: N, vnode: new Array(N).fill(null),
      opnode: new Array(N).fill(null), gradText: new Array(N).fill(null),
      dataText: new Array(N).fill(null), tips: new Array(N).fill(null),
      visible: new Uint8Array(N), cull: null, apart: apart };
    els.edgesOf = Array.from({ length: N }, () => []);  // edges drawn into node i (and its op)
    els.edgesFrom = Array.from({ length: N }, () => []);
    if (apart) return els;
    for (let i = 0; i < N; i++) {
      const g = els.vnode[i] = document.getElementById("v" + i);
      els.opnode[i] = document.getElementById("o" + i);
      els.gradText[i] = g.querySelector("text.grad");
      els.dataText[i] = g.querySelector("text.data");
      els.tips[i] = g.querySelector("title");
    }
    for (const e of svg.querySelectorAll("path.edge")) edgeMade(els, e);
    return els;
  }

  function edgeMade(els, e) {
    els.edgesOf[+e.dataset.node].push(e);
    els.edgesFrom[+e.dataset.src].push(e);
  }

  // node i's elements in a lazy drawing, and the edges into it and into its users (those into
  // a node are made together); the new edges touching a node in view go straight in
  function makeNode(els, D, i) {
    const apart = els.apart, scratch = apart.scratch;
    scratch.innerHTML = nodeMarkup(D, i);
    const g = els.vnode[i] = scratch.firstElementChild;
    els.opnode[i] = g.nextElementSibling;
    els.gradText[i] = g.querySelector("text.grad");
    els.dataText[i] = g.querySelector("text.data");
    scratch.replaceChildren();
    for (const j of [i].concat(apart.users[i])) {
      if (apart.edgesMade[j] || D.ops[j] === null) continue;  // (a leaf has none)
      apart.edgesMade[j] = 1;
      scratch.innerHTML = edgesInto(D, j);
      for (const e of Array.from(scratch.children)) {
        edgeMade(els, e);
        if (els.visible[+e.dataset.node] || els.visible[+e.dataset.src]) {
          e.classList.remove("off");
          apart.edges.appendChild(e);
        } else e.remove();
      }
    }
  }

  // Python's repr() of each number, once per array of numbers
  const reprCache = new WeakMap();
  function reprs(data) {
    if (!reprCache.has(data)) reprCache.set(data, Array.from(data, pyRepr));
    return reprCache.get(data);
  }

  function mount(D, hooks) {
    if (mounted) mounted.destroy();
    hooks = hooks || {};
    const N = D.names.length, S = D.steps.length;
    // the word in each node's third cell, and what it shows before any step: "grad" and 0.0,
    // or forward mode's "tangent" and "?" (not computed yet)
    const CELL = D.cell || "grad", START = D.cellStart || "0.0";
    const forwardMode = D.mode === "forward";
    const svg = $("bp-svg"), slider = $("bp-slider"), playBtn = $("bp-play");
    const world = $("bp-world");
    if (typeof D.svg === "string") {  // the explorer's: one per tape
      world.innerHTML = D.svg;
      lazy = null;
    } else if (D.cells && !(lazy && lazy.boxes === D.boxes)) {
      lazy = lazyDrawing(D, world);  // a big graph's, drawn here as it is needed
    }
    if (D.cells && !D._auto) Object.defineProperty(D, "_auto", { value: new Set(D.auto) });
    const control = new AbortController();
    const on = (target, type, handler, options) =>
      target.addEventListener(type, handler, Object.assign({ signal: control.signal }, options));
    let destroyed = false;
    // the drawing's elements, looked up once per drawing (a page may mount other data on the
    // same drawing: a level of blocks, a nudge)
    const apart = D.cells && lazy && lazy.boxes === D.boxes ? lazy : null;
    const same = drawn && drawn.first === world.firstElementChild && drawn.N === N &&
      drawn.apart === apart;
    const els = same ? drawn : elements(world, svg, N, apart);
    drawn = els;
    const { vnode, opnode, gradText, dataText, tips, edgesOf, edgesFrom } = els;
    const users = apart ? apart.users : Array.from({ length: N }, () => []);
    if (!apart) D.inputs.forEach((ins, i) => ins.forEach((p) => users[p].push(i)));

    // a fresh view: the drawing may have been shown before, with other numbers
    const setText = (e, text) => { if (e.textContent !== text) e.textContent = text; };
    const STATES = ["cur", "rec", "active", "selected", "match", "near", "inblk"];
    // touching only what differs: big graphs have 10^4 elements
    const clear = (e) => { if (e) e.classList.remove(...STATES); };
    if (apart) {  // (the elements out of the document too)
      vnode.forEach(clear);
      opnode.forEach(clear);
      edgesOf.forEach((list) => list.forEach(clear));
    } else for (const e of svg.querySelectorAll("." + STATES.join(",."))) clear(e);
    if (!same || els.cull !== !!D.cull) {  // a drawing already culled as D wants is kept so
      for (const e of svg.querySelectorAll(".vnode, .opnode, path.edge")) {
        if (e.classList.contains("off") !== !!D.cull) e.classList.toggle("off", !!D.cull);
      }
      els.visible = new Uint8Array(N);
      els.cull = !!D.cull;
    }
    const exacts = D.dataText ? reprs(D.data) : null;
    for (let i = 0; i < N; i++) {  // (the grads: the first go() paints every node)
      const g = vnode[i];
      if (!g) continue;  // not made yet (a lazy drawing's): made with these numbers
      // (written only where they differ: explain()'s own page draws its numbers already)
      if (D.dataText) {
        setText(dataText[i], "data " + D.dataText[i]);
        const exact = exacts[i];
        if (g.dataset.data !== exact) g.dataset.data = exact;
        if (tips[i]) setText(tips[i], D.names[i] + ": data " + exact);
      }
    }
    svg.classList.remove("filtered", "dragging", "tiny");
    slider.max = S - 1;
    slider.value = 0;
    for (const e of document.querySelectorAll(".bp-rootname")) e.textContent = ref(D.names[D.root]);
    if (D.engine) $("bp-engine").textContent = "layout: " + D.engine;
    $("bp-node").hidden = true;
    $("bp-node").replaceChildren();
    $("bp-search").value = "";
    $("bp-found").textContent = "";
    $("bp-near").checked = false;

    // ---- state: grads after applying steps 0..cur --------------------------------------------
    const grad = new Array(N).fill(0), gradShown = new Array(N).fill(START);
    const hits = new Array(N).fill(0);  // how many terms a node has received so far
    let cur = -1;
    const marked = [];  // elements highlighted for the current step
    let inBlock = new Set(), received = new Set();  // the current step's block, its receivers
    // node i's marks for the current step (on its elements, once made)
    function marks(i) {
      const s = D.steps[cur], mark = (e, cls) => { e.classList.add(cls); marked.push(e); };
      if (i === s.node) {
        mark(vnode[i], "cur");
        if (opnode[i]) mark(opnode[i], "cur");
        if (s.kind !== "seed") edgesOf[i].forEach((e) => mark(e, "active"));
      }
      if (inBlock.has(i)) {
        mark(vnode[i], "inblk");
        if (opnode[i]) mark(opnode[i], "inblk");
      }
      if (received.has(i)) mark(vnode[i], "rec");
    }
    // node i's elements, made first in a lazy drawing, with what the view shows of it now
    function V(i) {
      if (vnode[i] !== null) return vnode[i];
      makeNode(els, D, i);
      paint(i, cur);
      if (D.dataText) vnode[i].dataset.data = exacts[i];
      if (cur >= 0) marks(i);
      if (selected === i) vnode[i].classList.add("selected");
      if (matchSet.has(i)) vnode[i].classList.add("match");
      if (near.has(i)) nearMarks(i);
      return vnode[i];
    }

    function apply(k, forward) {
      for (const c of D.steps[k].changes) {
        const i = c[0];
        grad[i] = Number(forward ? c[2] : c[1]);
        gradShown[i] = forward ? c[4] : c[3];
        hits[i] += forward ? 1 : -1;
      }
    }

    function touchedBy(k, set) {
      const s = D.steps[k];
      if (s.node !== null) set.add(s.node);
      for (const c of s.changes) set.add(c[0]);
    }

    // (written only where they differ, so that a big graph's styles are recomputed only for
    // what changed)
    function paint(i, k) {
      const g = vnode[i], fresh = hits[i] === 0 && grad[i] === 0;
      if (!g) return;  // not made yet: make() paints it
      setText(gradText[i], CELL + " " + gradShown[i]);
      const exact = fresh ? "0.0" : String(grad[i]);
      if (g.dataset.grad !== exact) g.dataset.grad = exact;
      const reached = hits[i] > 0, fin = D.lastTouch[i] >= 0 && D.lastTouch[i] <= k;
      if (g.classList.contains("reached") !== reached) g.classList.toggle("reached", reached);
      if (g.classList.contains("final") !== fin) g.classList.toggle("final", fin);
    }

    function go(k, everyNode) {
      k = Math.max(0, Math.min(S - 1, Math.round(k)));
      if (k === cur) return;
      const dirty = new Set();
      if (cur >= 0) touchedBy(cur, dirty);
      while (cur < k) { cur += 1; apply(cur, true); touchedBy(cur, dirty); }
      while (cur > k) { apply(cur, false); touchedBy(cur, dirty); cur -= 1; }
      for (const e of marked) e.classList.remove("cur", "rec", "active", "inblk");
      marked.length = 0;
      if (everyNode) for (let i = 0; i < N; i++) paint(i, k);
      else dirty.forEach((i) => paint(i, k));
      const s = D.steps[k];
      inBlock = new Set(s.nodes || []);  // a block's nodes
      received = new Set(s.rec ? s.rec : s.kind === "backward" ? s.changes.map((c) => c[0]) :
        s.kind === "forward" ? D.inputs[s.node] : []);
      svg.classList.toggle("blockstep", inBlock.size > 0);
      if (s.node !== null && vnode[s.node] === null) V(s.node);  // (marked as it is made)
      else if (s.node !== null) marks(s.node);
      for (const i of inBlock) if (vnode[i] && i !== s.node) marks(i);
      for (const i of received) if (vnode[i] && i !== s.node && !inBlock.has(i)) marks(i);
      slider.value = k;
      $("bp-counter").textContent = "step " + k + " / " + (S - 1);
      $("bp-first").disabled = $("bp-prev").disabled = k === 0;
      $("bp-next").disabled = $("bp-last").disabled = k === S - 1;
      document.body.dataset.step = k;
      showStep(s, k);
      if (nearOn) neighbourhood();
      follow(s);
      if (selected !== null) showNode(selected);
      if (hooks.onStep) hooks.onStep(k, s);
    }

    function follow(s) {  // with "follow" ticked: the step's node (or block) in view
      if ($("bp-follow").checked && s.nodes && s.nodes.length) {
        const b = around(s.nodes);
        fitTo(b[0], b[1], b[2], b[3]);
        // a block too big to read whole: its output (where the gradient arrives), readable
        if (T.s < 0.3 && s.node !== null) reveal(s.node, true);
      } else if ($("bp-follow").checked && s.node !== null) reveal(s.node, false);
    }

    function showStep(s, k) {
      const plain = s.kind === "seed" || s.kind === "done" || s.kind === "enter";
      $("bp-title").textContent = (plain ? "" : "Step " + k + ": ") + s.title;
      const lines = $("bp-lines"), terms = $("bp-terms");
      lines.replaceChildren();
      terms.replaceChildren();
      for (const t of s.lines) lines.appendChild(el("p", "", t));
      if (k === 0) {
        lines.appendChild(el("p", "hint-next", "Press Next (or the \u2192 key) to take the " +
          "first step, or Play to watch them all."));
      }
      if (s.kind === "backward") {
        lines.appendChild(el("p", "", "Chain rule, one term per input:"));
        for (const c of s.changes) {
          const term = terms.appendChild(el("div", "term", c[5]));
          if (c[3] !== "0.0") {  // adding to a gradient that already holds something
            term.appendChild(el("div", "now", "so " + D.names[c[0]] + ".grad goes from " + c[3] +
              " to " + c[4]));
          }
        }
      }
      for (const t of s.formulas || []) terms.appendChild(el("div", "term", t));  // forward
      for (const t of s.sums) terms.appendChild(el("div", "term sum", t));
    }

    // ---- node details ----------------------------------------------------------------------
    let selected = null;
    function showNode(i) {
      if (selected !== null && vnode[selected]) vnode[selected].classList.remove("selected");
      selected = i;
      for (const e of svg.querySelectorAll(".selected")) e.classList.remove("selected");
      V(i).classList.add("selected");
      const box = $("bp-node");
      box.hidden = false;
      box.replaceChildren();
      box.appendChild(el("h3", "", D.names[i]));
      const kind = D.ops[i] === null ? "an input (leaf)" : "the result of " + D.ops[i] + "(" +
        D.inputs[i].map((p) => D.names[p]).join(", ") + ")";
      box.appendChild(el("div", "", D.names[i] + " is " + kind + "."));
      if (D.scopes && D.scopes[i]) {
        box.appendChild(el("div", "scope", "made in the scope " + D.scopes[i]));
      }
      box.appendChild(el("div", "", "data = " + D.dataText[i] + ", " + CELL + " now = " +
        gradShown[i]));
      const exact = String(grad[i]);
      if (hits[i] > 0 && Number(gradShown[i]) !== grad[i]) {
        box.appendChild(el("div", "exact", "(" + CELL + " exactly " + exact + ", data exactly " +
          String(Number(D.data[i])) + ")"));
      }
      const got = [];
      for (let k = 0; k <= cur; k++) {
        for (const c of D.steps[k].changes) {
          if (c[0] === i && D.steps[k].kind === "backward") {
            got.push("+ " + c[6] + " from " + D.names[D.steps[k].node] + " (step " + k + ")");
          }
        }
      }
      if (got.length) {
        box.appendChild(el("div", "", "Terms received so far:"));
        const ul = el("ul");
        got.forEach((t) => ul.appendChild(el("li", "", t)));
        box.appendChild(ul);
      }
      if (users[i].length > 1 && !forwardMode) {
        box.appendChild(el("div", "", "Used by " + users[i].length + " nodes, so its grad " +
          "is the sum of " + users[i].length + " terms."));
      }
      if (D.stepOf[i] >= 0) {
        const b = el("button", "", "go to its step (" + D.stepOf[i] + ")");
        b.onclick = () => go(D.stepOf[i]);
        box.appendChild(b);
      } else if (D.lastTouch[i] > 0) {
        const b = el("button", "", "go to where its " + CELL + " is complete (step " +
          D.lastTouch[i] + ")");
        b.onclick = () => go(D.lastTouch[i]);
        box.appendChild(b);
      }
      if (hooks.onNode) hooks.onNode(i, box);
    }
    on(svg, "click", (e) => {
      if (moved) return;
      const g = e.target.closest(".vnode, .opnode");
      if (g) showNode(+g.dataset.i);
    });

    // ---- playing -----------------------------------------------------------------------------
    let timer = null;
    function setPlaying(on) {
      if (on && cur === S - 1) go(0);
      clearInterval(timer);
      timer = null;
      if (on) {
        timer = setInterval(() => { if (cur >= S - 1) setPlaying(false); else go(cur + 1); },
          +$("bp-speed").value);
      }
      playBtn.textContent = on ? "\u275A\u275A Pause" : "\u25B6 Play";
      playBtn.setAttribute("aria-label", on ? "pause" : "play");
      playBtn.setAttribute("aria-pressed", on ? "true" : "false");
    }
    const stop = () => setPlaying(false);
    on(playBtn, "click", () => setPlaying(timer === null));
    on($("bp-speed"), "change", () => { if (timer !== null) setPlaying(true); });
    on($("bp-next"), "click", () => { stop(); go(cur + 1); });
    on($("bp-prev"), "click", () => { stop(); go(cur - 1); });
    on($("bp-first"), "click", () => { stop(); go(0); });
    on($("bp-last"), "click", () => { stop(); go(S - 1); });
    on(slider, "input", () => { stop(); go(+slider.value); });
    // Keys, while mounted: caught on the way down (capture, on window) and not passed on, so a
    // page's own keys (the explorer's epoch scrubber) stay quiet while the step-through is open.
    on(window, "keydown", (e) => {
      const t = e.target;
      if (t === slider || (t.tagName === "INPUT" && t.type !== "checkbox") ||
          t.tagName === "SELECT" || e.altKey || e.ctrlKey || e.metaKey) return;
      if (e.key === " " && t.type === "checkbox") return;  // space ticks the box, as usual
      const keys = {
        ArrowRight: () => { stop(); go(cur + 1); }, ArrowLeft: () => { stop(); go(cur - 1); },
        Home: () => { stop(); go(0); }, End: () => { stop(); go(S - 1); },
        " ": () => setPlaying(timer === null),
      };
      if (keys[e.key]) {
        e.preventDefault();
        e.stopPropagation();
        if (t.tagName === "BUTTON") t.blur();  // space would also click the focused button
        keys[e.key]();
      }
    }, { capture: true });

    // ---- pan and zoom ------------------------------------------------------------------------
    const view = { x: -20, y: -20, w: D.width + 40, h: D.height + 40 };
    // the graph area's size on screen, read once (and on resize): reading it after every step
    // would force the browser to lay out the whole drawing again, slow for big graphs
    let area = svg.getBoundingClientRect();
    const rect = () => area;
    // The view is drawn by a transform on the drawing's group, not by the svg's viewBox: the
    // browser re-lays out every element when a viewBox changes, but not for a transform.
    const T = { s: 1, tx: 0, ty: 0 };  // screen = graph * s + t, inside the svg element
    function setView() {
      const aw = Math.max(area.width, 1), ah = Math.max(area.height, 1);
      T.s = Math.min(aw / view.w, ah / view.h);  // show all of view, centred ("meet")
      T.tx = (aw - view.w * T.s) / 2 - view.x * T.s;
      T.ty = (ah - view.h * T.s) / 2 - view.y * T.s;
      world.setAttribute("transform", "translate(" + T.tx + "," + T.ty + ") scale(" + T.s + ")");
      svg.dataset.view = [view.x, view.y, view.w, view.h].join(" ");
      svg.dataset.scale = T.s;
      svg.classList.toggle("tiny", T.s < 0.3);  // too small to read: no text
      if (D.cull && !cullPending) { cullPending = true; requestAnimationFrame(cull); }
    }
    // big graphs: only nodes in (or near) view are displayed; the rest are "off"
    let cullPending = false;
    const visible = els.visible;
    function inView(i, x0, y0, x1, y1) {
      const b = D.boxes[i];
      for (let k = 0; k < b.length; k += 4) {
        if (b[k + 2] >= x0 && b[k] <= x1 && b[k + 3] >= y0 && b[k + 1] <= y1) return true;
      }
      return false;
    }
    function cull() {
      cullPending = false;
      if (destroyed) return;
      const gx0 = -T.tx / T.s, gy0 = -T.ty / T.s;  // the part of the graph on screen
      const gx1 = (area.width - T.tx) / T.s, gy1 = (area.height - T.ty) / T.s;
      const m = Math.max(gx1 - gx0, gy1 - gy0) * 0.3;
      const x0 = gx0 - m, y0 = gy0 - m, x1 = gx1 + m, y1 = gy1 + m;
      const changed = [];
      for (let i = 0; i < N; i++) {
        const v = inView(i, x0, y0, x1, y1) ? 1 : 0;
        if (v !== visible[i]) { visible[i] = v; changed.push(i); }
      }
      for (const i of changed) {
        const off = !visible[i];
        if (off && vnode[i] === null) continue;  // never made, nothing to hide
        show(V(i), off, els.apart && els.apart.nodes);
        if (opnode[i]) show(opnode[i], off, els.apart && els.apart.nodes);
        for (const e of edgesOf[i].concat(edgesFrom[i])) {
          show(e, !(visible[+e.dataset.node] || visible[+e.dataset.src]),
            els.apart && els.apart.edges);
        }
      }
    }
    function show(e, off, layer) {  // in view or not (a lazy drawing's: in its layer or out)
      e.classList.toggle("off", off);
      if (!layer) return;
      if (off) e.remove();
      else if (e.parentNode !== layer) layer.appendChild(e);
    }
    function screenScale() {  // graph units per screen pixel
      return 1 / T.s;
    }
    function zoom(factor, cx, cy) {
      const r = rect();
      const px = cx === undefined ? view.x + view.w / 2 : (cx - r.left - T.tx) / T.s;
      const py = cy === undefined ? view.y + view.h / 2 : (cy - r.top - T.ty) / T.s;
      const w = Math.min(Math.max(view.w * factor, 60), (D.width + 200) * 4);
      const f = w / view.w;
      view.x = px - (px - view.x) * f;
      view.y = py - (py - view.y) * f;
      view.w *= f;
      view.h *= f;
      setView();
    }
    function fitTo(x0, y0, x1, y1) {
      const r = rect();
      const pad = 30;
      const w = x1 - x0 + 2 * pad, h = y1 - y0 + 2 * pad;
      const aspect = Math.max(r.width, 1) / Math.max(r.height, 1);
      view.w = Math.max(w, h * aspect, r.width / 1.5);  // never blow a small graph up past 1.5x
      view.h = view.w / aspect;
      view.x = (x0 + x1) / 2 - view.w / 2;
      view.y = (y0 + y1) / 2 - view.h / 2;
      setView();
    }
    function fit() {
      fitTo(0, 0, D.width, D.height);
    }
    function around(ids) {  // the bounding box of some nodes with their op ovals
      let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
      for (const i of ids) {
        const b = D.boxes[i];
        for (let k = 0; k < b.length; k += 4) {
          x0 = Math.min(x0, b[k]); y0 = Math.min(y0, b[k + 1]);
          x1 = Math.max(x1, b[k + 2]); y1 = Math.max(y1, b[k + 3]);
        }
      }
      return [x0, y0, x1, y1];
    }
    function reveal(i, always) {  // bring node i and its inputs into view
      const b = around([i].concat(D.inputs[i]));
      const pad = 20;
      const inside = b[0] - pad > view.x && b[2] + pad < view.x + view.w &&
        b[1] - pad > view.y && b[3] + pad < view.y + view.h;
      const tiny = T.s < 0.3;  // the text is not drawn: a step in view could not be read
      if (inside && !always && !tiny) return;
      if (tiny) {  // to the scale a big graph opens at
        const r = rect();
        view.w = Math.max(r.width, 1) / 0.9;
        view.h = Math.max(r.height, 1) / 0.9;
      }
      if (b[2] - b[0] + 2 * pad > view.w || b[3] - b[1] + 2 * pad > view.h) {
        const r = rect();
        const w = (b[2] - b[0] + 2 * pad) * Math.max(1, (b[3] - b[1]) / (b[2] - b[0]));
        if (r.width / w >= 0.45) { fitTo(b[0], b[1], b[2], b[3]); return; }
        const own = around([i]);  // too spread out to show at a readable size: just the node
        b[0] = own[0]; b[1] = own[1]; b[2] = own[2]; b[3] = own[3];
      }
      view.x = (b[0] + b[2]) / 2 - view.w / 2;
      view.y = (b[1] + b[3]) / 2 - view.h / 2;
      setView();
    }
    on(svg, "wheel", (e) => {
      e.preventDefault();
      zoom(Math.exp(e.deltaY * 0.0015), e.clientX, e.clientY);
    }, { passive: false });
    let drag = null, moved = false;
    on(svg, "pointerdown", (e) => {
      drag = { x: e.clientX, y: e.clientY, vx: view.x, vy: view.y, s: screenScale() };
      moved = false;
    });
    on(window, "pointermove", (e) => {
      if (!drag) return;
      const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 3) { moved = true; svg.classList.add("dragging"); }
      view.x = drag.vx - dx * drag.s;
      view.y = drag.vy - dy * drag.s;
      setView();
    });
    on(window, "pointerup", () => { drag = null; svg.classList.remove("dragging"); });
    on($("bp-fit"), "click", fit);
    on($("bp-zoomin"), "click", () => zoom(1 / 1.4));
    on($("bp-zoomout"), "click", () => zoom(1.4));

    // ---- filtering: search, and only the current step's neighbourhood ------------------------
    let matches = [], matchAt = -1, matchSet = new Set();
    on($("bp-search"), "input", () => {
      const q = $("bp-search").value.trim().toLowerCase();
      for (const i of matches) if (vnode[i]) vnode[i].classList.remove("match");
      matches = [];
      matchAt = -1;
      matchSet = new Set();
      if (q) {
        for (let i = 0; i < N; i++) {
          const scope = D.scopes ? D.scopes[i].toLowerCase() : "";
          if (!D.names[i].toLowerCase().includes(q) && !scope.includes(q)) continue;
          matches.push(i);
          matchSet.add(i);
          if (vnode[i]) vnode[i].classList.add("match");
        }
      }
      const hint = matches.length ? " (Enter)" : "";
      $("bp-found").textContent = q ? matches.length + " found" + hint : "";
    });
    on($("bp-search"), "keydown", (e) => {
      if (e.key !== "Enter" || !matches.length) return;
      matchAt = (matchAt + 1) % matches.length;
      const i = matches[matchAt];
      showNode(i);
      reveal(i, true);
    });
    let nearOn = false;
    const near = new Set();
    function nearMarks(i) {  // node i in the neighbourhood, and its edges from there
      vnode[i].classList.add("near");
      if (opnode[i]) opnode[i].classList.add("near");
      for (const e of edgesOf[i]) if (near.has(+e.dataset.src)) e.classList.add("near");
    }
    function neighbourhood() {
      near.forEach((i) => {
        if (!vnode[i]) return;
        vnode[i].classList.remove("near");
        if (opnode[i]) opnode[i].classList.remove("near");
        for (const e of edgesOf[i]) e.classList.remove("near");
      });
      near.clear();
      const s = D.steps[cur];
      const start = s.node === null ? D.root : s.node;
      let frontier = [start];
      near.add(start);
      for (let d = 0; d < 2; d++) {  // two hops, either way along the edges
        const next = [];
        for (const i of frontier) {
          for (const j of D.inputs[i].concat(users[i])) {
            if (!near.has(j)) { near.add(j); next.push(j); }
          }
        }
        frontier = next;
      }
      near.forEach((i) => { V(i); nearMarks(i); });
      const b = around(Array.from(near));
      fitTo(b[0], b[1], b[2], b[3]);
    }
    on($("bp-near"), "change", () => {
      nearOn = $("bp-near").checked;
      svg.classList.toggle("filtered", nearOn);
      if (nearOn) neighbourhood(); else fit();
    });

    // ---- start -------------------------------------------------------------------------------
    const handle = {
      go: go,
      step: () => cur,
      steps: S,
      names: D.names,
      grads: () => grad.slice(),
      nodes: () => vnode.map((_, i) => V(i)),  // each node's box (a big graph's: made now)
      playing: () => timer !== null,
      view: () => Object.assign({}, view),
      selected: () => selected,
      showNode: (i) => showNode(i),
      reveal: (i) => reveal(i, true),
      follow: () => follow(D.steps[cur]),  // (blocks.js, back at a level: its step in view)
      data: D,
      destroy: destroy,
    };
    function destroy() {
      if (destroyed) return;
      destroyed = true;
      control.abort();
      clearInterval(timer);
      timer = null;
      if (watcher) watcher.disconnect();
      if (mounted === handle) mounted = null;
      if (window.backprop === handle) delete window.backprop;
      delete document.body.dataset.step;
    }
    mounted = handle;
    window.backprop = handle;  // for tests and the console: the mounted view
    const hidden = (box) => box.width < 1 || box.height < 1;
    function start() {
      fit();
      const box = area;
      if (box.width / view.w < 0.6) {  // too small to read when fitted: start at the output
        view.w = box.width / 0.9;
        view.h = box.height / 0.9;
        reveal(D.root, true);
      }
    }
    go(hooks.at || 0, true);
    if (hooks.view) {  // the same drawing, as it was shown
      Object.assign(view, hooks.view);
      if (!hidden(area)) setView();
    } else if (!hidden(area)) start();
    // the graph area can change size with the window, or when a page shows the view it holds
    const resized = () => {
      const before = area;
      area = svg.getBoundingClientRect();
      if (hidden(area)) return;
      if (hidden(before)) { start(); return; }  // mounted while hidden: start now
      view.h = view.w * area.height / Math.max(area.width, 1);
      setView();
    };
    let watcher = null;
    if (typeof ResizeObserver === "function") {
      watcher = new ResizeObserver(() => { if (!destroyed) resized(); });
      watcher.observe(svg);
    } else {
      on(window, "resize", resized);
    }
    return handle;
  }

  window.bpStepThrough = { mount: mount, mounted: () => mounted };
})();
