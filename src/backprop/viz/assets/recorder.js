// explore(recorder)'s page: a training loop recorded with backprop.Recorder. The step cursor
// moves through the kept frames; the scalar curves, each parameter's heatmap (weights or
// gradients), the gradient norms, the watched values and the probe's step-through all follow
// it. The page data's contract is the docstring of backprop/viz/recorder_page.py; window.bpr
// is a small hook for tests. Needs common.js, explain.js, replay.js and explore_draw.js first.
(function () {
  "use strict";
  const { $, el, fmt } = window.bpCommon;
  const R = window.bpReplay;
  const D = JSON.parse($("bpr-data").textContent);
  const { ORANGE, BLUE, mix, niceTicks, short, svgEl } = window.bpExplore.draw({ D: D, M: {} });
  const F = D.frameSteps.length, P = D.P;
  const DATA = R.decodeF64(D.data), GRADS = R.decodeF64(D.grads);
  const COLOURS = ["#1a73e8", "#e8710a", "#188038", "#a142f4", "#d93025", "#12a4b8", "#c69000",
    "#5f6368", "#e52592", "#7cb342"];
  let cur = 0, showGrads = false, timer = null;

  // where each named parameter's numbers start, row by row
  const params = [];
  {
    let o = 0;
    for (const p of D.params) {
      const n = p.rows.reduce((a, b) => a + b, 0);
      params.push({ name: p.name, rows: p.rows, offset: o, count: n });
      o += n;
    }
  }
  const frameOf = (arr, k, p) => arr.subarray(k * P + p.offset, k * P + p.offset + p.count);
  // each parameter's gradient size per frame: root-mean-square, so matrices of any size compare
  const norms = params.map((p) => Array.from({ length: F }, (_, k) => {
    let s = 0;
    for (const g of frameOf(GRADS, k, p)) s += g * g;
    return Math.sqrt(s / Math.max(p.count, 1));
  }));
  // the largest |weight| of each parameter over all frames: one scale, so changes show
  const dataScale = params.map((p) => {
    let m = 0;
    for (let k = 0; k < F; k++) for (const v of frameOf(DATA, k, p)) m = Math.max(m, Math.abs(v));
    return m || 1;
  });

  // ---- charts over the steps ------------------------------------------------------------------
  const charts = [];
  // an axis's tick labels in one format: as many decimals as their spacing needs, or all with
  // an exponent when they are very small or very large
  function tickLabels(ticks) {
    const top = Math.max(...ticks.map(Math.abs));
    if (ticks.length < 2 || !(top < 1e5 && top >= 1e-3)) return ticks.map(short);
    const gap = Math.abs(ticks[1] - ticks[0]);
    const decimals = Math.max(0, Math.min(6, Math.ceil(-Math.log10(gap) - 1e-9) + (String(gap / Math.pow(10, Math.floor(Math.log10(gap)))).length > 1 ? 1 : 0)));
    return ticks.map((t) => t.toFixed(decimals));
  }
  function chart(box, series, opts) {  // lines over the steps, with the cursor's step marked
    const W = 310, H = opts.height || 120, m = { l: 46, r: 8, t: 8, b: 20 };
    const svg = svgEl("svg", { width: W, height: H, class: "bpx-mini", viewBox: "0 0 " + W + " " + H });
    let lo = Infinity, hi = -Infinity;
    for (const s of series) for (const v of s.values) if (isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    if (opts.zero) lo = Math.min(lo, 0);
    if (!(hi > lo)) { lo = isFinite(lo) ? lo - 1 : 0; hi = isFinite(hi) ? hi + 1 : 1; }
    const s0 = 0, s1 = Math.max(D.steps - 1, 1);
    const X = (s) => m.l + ((s - s0) / (s1 - s0)) * (W - m.l - m.r);
    const Y = (v) => m.t + (1 - (v - lo) / (hi - lo)) * (H - m.t - m.b);
    const ticks = niceTicks(lo, hi, 4), labels = tickLabels(ticks);
    ticks.forEach((t, k) => {
      svgEl("line", { x1: m.l, x2: W - m.r, y1: Y(t), y2: Y(t), class: "bpx-gridline" }, svg);
      svgEl("text", { x: m.l - 4, y: Y(t) + 3, class: "bpx-tick", "text-anchor": "end" }, svg).textContent = labels[k];
    });
    svgEl("text", { x: X(s0), y: H - 6, class: "bpx-tick", "text-anchor": "start" }, svg).textContent = s0;
    svgEl("text", { x: X(s1), y: H - 6, class: "bpx-tick", "text-anchor": "end" }, svg).textContent = s1;
    svgEl("text", { x: (m.l + W - m.r) / 2, y: H - 6, class: "bpx-tick", "text-anchor": "middle" }, svg).textContent = "step";
    for (const s of series) {
      let d = "", pen = "M";
      s.values.forEach((v, i) => {
        if (!isFinite(v)) { pen = "M"; return; }
        d += pen + X(s.steps ? s.steps[i] : i).toFixed(1) + "," + Y(v).toFixed(1) + " ";
        pen = "L";
      });
      svgEl("path", { d: d, class: "bpx-line thin", stroke: s.colour }, svg);
    }
    const cursor = svgEl("line", { y1: m.t, y2: H - m.b, class: "bpx-cursor" }, svg);
    svg.addEventListener("click", (e) => {
      const b = svg.getBoundingClientRect(), x = (e.clientX - b.left) * (W / b.width);
      let best = 0;
      for (let k = 0; k < F; k++) if (Math.abs(X(D.frameSteps[k]) - x) < Math.abs(X(D.frameSteps[best]) - x)) best = k;
      stop();
      go(best);
    });
    box.appendChild(svg);
    charts.push({ cursor: cursor, X: X, svg: svg });
    return svg;
  }
  function buildCharts() {
    const sc = $("bpr-scalars");
    for (const s of D.scalars) {
      sc.appendChild(el("div", "bpr-chart-title", s.name));
      chart(sc, [{ values: Array.from(R.decodeF64(s.values)), colour: "#c2185b" }], {}).dataset.name = s.name;
    }
    if (!D.scalars.length) sc.appendChild(el("p", "bpx-note", "No scalars: call rec.step(loss) with the step's loss."));
    const nb = $("bpr-norms");
    chart(nb, params.map((p, q) => ({ values: norms[q], steps: D.frameSteps, colour: COLOURS[q % COLOURS.length] })),
      { zero: true, height: 160 }).id = "bpr-norm-chart";
    const legend = nb.appendChild(el("div", "bpr-legend"));
    params.forEach((p, q) => legend.appendChild(el("span", "", p.name)).style.setProperty("--c", COLOURS[q % COLOURS.length]));
  }

  // ---- heatmaps -----------------------------------------------------------------------------
  const colourOf = (v, scale) => {
    if (!isFinite(v)) return [200, 200, 200];
    const t = Math.max(-1, Math.min(1, v / scale));
    return t >= 0 ? mix(BLUE, t) : mix(ORANGE, -t);
  };
  // rows of numbers (lengths may differ) as a canvas, cell by cell; a long single row wraps
  function heatmap(canvas, rows, scale) {
    const width = Math.max(1, ...rows.map((r) => r.length)), height = Math.max(rows.length, 1);
    const cell = Math.max(2, Math.min(18, Math.floor(300 / width), Math.floor(300 / height)));
    canvas.width = width * cell;
    canvas.height = height * cell;
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    rows.forEach((row, r) => row.forEach((v, c) => {
      const rgb = colourOf(v, scale);
      ctx.fillStyle = "rgb(" + rgb.map(Math.round).join(",") + ")";
      ctx.fillRect(c * cell, r * cell, cell, cell);
    }));
    canvas.dataset.cell = cell;
  }
  const maps = [];
  function buildParams() {
    const box = $("bpr-params");
    params.forEach((p, q) => {
      const card = box.appendChild(el("div"));
      const title = card.appendChild(el("div", "bpr-map-title", p.name + " "));
      const shape = p.rows.length === 1 ? p.rows[0] + (p.rows[0] === 1 ? " value" : " values") : p.rows.length + " \u00d7 " + Math.max(...p.rows);
      title.appendChild(el("span", "bpx-muted", "(" + shape + ")"));
      const canvas = card.appendChild(el("canvas", "bpr-map"));
      canvas.dataset.name = p.name;
      canvas.addEventListener("mousemove", (e) => readout(e, canvas, p));
      // with image inputs, a matrix whose rows have one weight per pixel: each row as an image
      const pixels = D.imageShape ? D.imageShape[0] * D.imageShape[1] : 0;
      let images = null;
      if (pixels && p.rows.length > 1 && p.rows.every((n) => n === pixels)) {
        card.appendChild(el("p", "bpx-note", "Each row as the " + D.imageShape.join(" \u00d7 ") +
          " image of the pixels its weights multiply (blue +, orange \u2212):"));
        const row = card.appendChild(el("div", "bpr-images"));
        images = p.rows.map((_, r) => { const c = row.appendChild(el("canvas")); c.dataset.row = r; return c; });
      }
      maps.push({ p: p, q: q, canvas: canvas, images: images });
    });
  }
  function rowsOf(arr, p) {
    const out = [];
    let i = 0;
    for (const n of p.rows) { out.push(Array.from(arr.subarray(i, i + n))); i += n; }
    return out;
  }
  function readout(e, canvas, p) {
    const cell = +canvas.dataset.cell, b = canvas.getBoundingClientRect();
    const c = Math.floor((e.clientX - b.left) * (canvas.width / b.width) / cell);
    const r = Math.floor((e.clientY - b.top) * (canvas.height / b.height) / cell);
    if (r < 0 || r >= p.rows.length || c < 0 || c >= p.rows[r]) return;
    let i = 0;
    for (let k = 0; k < r; k++) i += p.rows[k];
    i += c;
    const w = frameOf(DATA, cur, p)[i], g = frameOf(GRADS, cur, p)[i];
    $("bpr-readout").textContent = p.name + "[" + (p.rows.length > 1 ? r + "][" : "") + c + "]: weight " + fmt(w) + ", gradient " + fmt(g);
  }
  function drawParams() {
    for (const m of maps) {
      const arr = showGrads ? GRADS : DATA;
      const values = frameOf(arr, cur, m.p);
      let scale = dataScale[m.q];
      if (showGrads) { scale = 0; for (const v of values) scale = Math.max(scale, Math.abs(v)); scale = scale || 1; }
      const rows = rowsOf(values, m.p);
      heatmap(m.canvas, rows, scale);
      if (m.images) {
        const [R, C] = D.imageShape;
        rows.forEach((row, r) => {
          let top = 0;
          for (const v of row) top = Math.max(top, Math.abs(v));
          heatmap(m.images[r], Array.from({ length: R }, (_, i) => row.slice(i * C, (i + 1) * C)), top || 1);
        });
      }
    }
    $("bpr-params-teach").textContent = showGrads
      ? "Each cell is one parameter's gradient at this step, scaled to the largest in its map: blue positive, orange negative. The update moves each weight against its gradient."
      : "Each cell is one parameter's value at this step, blue positive and orange negative, on one scale per map over the whole run (its largest |value|), so you can watch it change. Hover for the numbers.";
  }
  const ordinal = (n) => n + ([11, 12, 13].includes(n % 100) ? "th" : ["th", "st", "nd", "rd"][n % 10] || "th");
  function drawWatched() {
    const box = $("bpr-watched");
    box.replaceChildren();
    for (const w of D.watched) {
      const rows = w.frames[cur], S = w.stride || 1;
      const card = box.appendChild(el("div"));
      card.appendChild(el("div", "bpr-map-title", w.name));
      if (!rows) { card.appendChild(el("p", "bpx-note", "not watched at this step")); continue; }
      let scale = 0;
      for (const row of rows) for (const v of row) if (v !== null) scale = Math.max(scale, Math.abs(v));
      if (w.rows || w.columns) {  // labelled: a table, the labels beside the cells
        const table = card.appendChild(el("table", "bpr-labelled"));
        table.dataset.name = w.name;
        const width = Math.max(...rows.map((r) => r.length));
        const head = table.appendChild(el("tr"));
        head.appendChild(el("th"));
        for (let c = 0; c < width; c++) head.appendChild(el("th", "col", w.columns ? w.columns[c] || "" : String(c * S)));
        rows.forEach((row, r) => {
          const tr = table.appendChild(el("tr"));
          tr.appendChild(el("th", "", w.rows ? w.rows[r] || "" : String(r * S)));
          for (let c = 0; c < width; c++) {
            const td = tr.appendChild(el("td"));
            if (c >= row.length) continue;
            const v = row[c] === null ? NaN : row[c];
            td.style.background = "rgb(" + colourOf(v, scale || 1).map(Math.round).join(",") + ")";
            td.title = (w.rows ? w.rows[r] : r * S) + " \u00d7 " + (w.columns ? w.columns[c] : c * S) + ": " + row[c];
          }
        });
      } else {
        const canvas = card.appendChild(el("canvas", "bpr-map"));
        canvas.dataset.name = w.name;
        heatmap(canvas, rows.map((row) => row.map((v) => (v === null ? NaN : v))), scale || 1);
      }
      card.appendChild(el("p", "bpx-note", (S > 1 ? "every " + ordinal(S) + " row and column of " + w.size[0] + " \u00d7 " + w.size[1] + " (to keep the page small), " :
        rows.length + " row" + (rows.length > 1 ? "s" : "") + ", ") + "largest |value| " + fmt(scale)));
    }
    $("bpr-watched-card").hidden = D.watched.length === 0;
  }

  function drawNotes() {
    $("bpr-notes-card").hidden = D.notes.length === 0;
    const box = $("bpr-notes");
    box.replaceChildren();
    const now = D.frameSteps[cur];
    for (const n of D.notes) {
      box.appendChild(el("div", "bpr-chart-title", n.name));
      const list = box.appendChild(el("ul", "bpr-note-list"));
      const shown = n.entries.filter((e) => e[0] <= now).reverse();
      shown.forEach(([step, text], k) => {
        const li = list.appendChild(el("li", k === 0 ? "now" : ""));
        li.appendChild(el("span", "step", "step " + step));
        li.appendChild(document.createTextNode(text));
      });
      if (!shown.length) list.appendChild(el("li", "", "(none yet at this step)"));
    }
  }

  // ---- the probe ------------------------------------------------------------------------------
  // Its tape (with explain()'s drawing) comes as JSON, or for a big graph gzipped (packed),
  // inflated here with the browser's DecompressionStream once the rest of the page is drawn.
  let stepHandle = null, blocksOn = false;
  const probe = D.probe;
  let replayable = !!(probe && probe.tape), unpacking = !!(probe && probe.packed), unpackError = null;
  const shipped = !!(probe && (probe.tape || probe.packed));  // (else only its outputs)
  const PLEAVES = shipped ? R.decodeF64(probe.leaves) : null;
  const PHINTS = shipped ? R.decodeU8(probe.hints) : null;
  const FREE = probe && probe.free ? probe.free : [];
  function probeAt(k) {  // the probe's graph at frame k, replayed exactly: {data, grad, powers}
    const tape = probe.tape;
    const leafValue = new Float64Array(tape.ops.length);
    for (let i = 0; i < tape.ops.length; i++) {  // a parameter's value is the frame's
      const leaf = tape.leaves[i];
      if (leaf && leaf.param !== undefined) leafValue[i] = DATA[k * P + leaf.param];
    }
    FREE.forEach((i, q) => { leafValue[i] = PLEAVES[k * FREE.length + q]; });
    return R.run(tape, leafValue, PHINTS.subarray(k * probe.H, (k + 1) * probe.H));
  }
  async function unpack() {
    const bytes = R.decodeU8(probe.packed);
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return JSON.parse(await new Response(stream).text());
  }
  function nearestProbed(k) {
    let best = -1;
    for (let q = 0; q < F; q++) if (probe.probed[q] && (best < 0 || Math.abs(q - k) < Math.abs(best - k))) best = q;
    return best;
  }
  function drawProbe() {
    const box = $("bpr-probe");
    box.replaceChildren();
    if (!probe) {
      box.appendChild(el("p", "bpx-teach", "No probe. rec.probe(lambda: loss_of(example)) records a graph at every kept step, and this card steps through its backward pass at the step shown."));
      return;
    }
    const k = nearestProbed(cur);
    if (k < 0) { box.appendChild(el("p", "bpx-note", "The probe did not run at any kept step.")); return; }
    box.appendChild(el("p", "bpx-teach", "The graph that the probe function builds, " + probe.nodes.toLocaleString("en") +
      " nodes, recorded at step " + D.frameSteps[k] + (k !== cur ? " (the nearest kept step the probe ran at)" : "") +
      ": its output is " + (typeof probe.outputs[k] === "string" ? probe.outputs[k] : fmt(probe.outputs[k])) + "."));
    if (unpacking) {
      box.appendChild(el("p", "bpx-note", "Unpacking its graph for the step-through\u2026"));
      return;
    }
    if (!replayable) {
      box.appendChild(el("p", "bpx-note", "Its step-through is left out: " + (unpackError || probe.note) + "."));
      return;
    }
    const view = probe.tape.view;
    if (view.blocks) {
      const top = view.blocks[0].items;
      box.appendChild(el("p", "bpx-teach", "It was built in scopes, so the step-through opens on " +
        (top.length + 2) + " steps, " + top.filter((it) => it[2] >= 0).length + " of them blocks that open in place."));
    }
    const label = "\u25B6 Step through its backward pass at step " + D.frameSteps[k];
    const btn = box.appendChild(el("button", "bpx-primary", label));
    btn.id = "bpr-step-probe";
    btn.onclick = () => {  // a big graph takes seconds: say so first, then draw
      if (probe.nodes <= 3000) { openStepThrough(k); return; }
      btn.disabled = true;
      btn.textContent = "Drawing its " + probe.nodes.toLocaleString("en") + " nodes\u2026";
      requestAnimationFrame(() => setTimeout(() => {
        openStepThrough(k);
        btn.disabled = false;
        btn.textContent = label;
      }, 0));
    };
  }
  const overlay = $("bpx-overlay");
  function openStepThrough(k) {
    closeStepThrough();
    stop();
    const r = probeAt(k);
    $("bpx-overlay-title").textContent = "The probe at training step " + D.frameSteps[k] + ": the backward pass of its graph";
    overlay.hidden = false;
    document.body.classList.add("bpx-stepping");
    const ex = R.explanation(probe.tape, r.data, D.derivatives, 1.0, r.powers);
    blocksOn = !!ex.blocks;
    stepHandle = blocksOn ? window.bpExplain.start(ex) : window.bpStepThrough.mount(ex);
    $("bpx-back").focus();
  }
  function closeStepThrough() {
    const handle = blocksOn ? window.bpExplain.handle() : stepHandle;
    if (handle) handle.destroy();
    stepHandle = null;
    blocksOn = false;
    if (overlay.hidden) return;
    overlay.hidden = true;
    document.body.classList.remove("bpx-stepping");
  }
  $("bpx-back").onclick = closeStepThrough;

  // ---- time -----------------------------------------------------------------------------------
  const slider = $("bpr-slider"), playBtn = $("bpr-play");
  slider.max = F - 1;
  function go(k) {
    k = Math.max(0, Math.min(F - 1, Math.round(k)));
    cur = k;
    slider.value = k;
    $("bpr-step").textContent = "step " + D.frameSteps[k] + " / " + (D.steps - 1);
    const loss = D.scalars.find((s) => s.name === "loss");
    $("bpr-stats").textContent = loss ? "loss " + fmt(R.decodeF64(loss.values)[D.frameSteps[k]]) : "";
    $("bpr-first").disabled = $("bpr-prev").disabled = k === 0;
    $("bpr-last").disabled = $("bpr-next").disabled = k === F - 1;
    for (const c of charts) {
      const x = c.X(D.frameSteps[k]).toFixed(2);
      c.cursor.setAttribute("x1", x);
      c.cursor.setAttribute("x2", x);
      c.svg.dataset.cursor = x;
    }
    drawParams();
    drawWatched();
    drawNotes();
    drawProbe();
    document.body.dataset.frame = k;
  }
  function setPlaying(on) {
    if (on && cur === F - 1) go(0);
    clearInterval(timer);
    timer = on ? setInterval(() => { if (cur >= F - 1) setPlaying(false); else go(cur + 1); }, 200) : null;
    playBtn.textContent = on ? "\u275A\u275A Pause" : "\u25B6 Play";
  }
  const stop = () => setPlaying(false);
  playBtn.onclick = () => setPlaying(timer === null);
  $("bpr-first").onclick = () => { stop(); go(0); };
  $("bpr-prev").onclick = () => { stop(); go(cur - 1); };
  $("bpr-next").onclick = () => { stop(); go(cur + 1); };
  $("bpr-last").onclick = () => { stop(); go(F - 1); };
  slider.addEventListener("input", () => { stop(); go(+slider.value); });
  const mode = () => { showGrads = $("bpr-show-grads").checked; drawParams(); };
  $("bpr-show-data").addEventListener("change", mode);
  $("bpr-show-grads").addEventListener("change", mode);
  document.addEventListener("keydown", (e) => {
    if (!overlay.hidden) {  // (Esc inside a block closes the block: blocks.js's)
      const inBlock = blocksOn && window.bpExplain.level().length > 1;
      if (e.key === "Escape" && !inBlock) { e.preventDefault(); closeStepThrough(); }
      return;
    }
    if (e.target === slider || e.target.tagName === "INPUT" || e.altKey || e.ctrlKey || e.metaKey) return;
    const keys = {
      ArrowRight: () => { stop(); go(cur + 1); }, ArrowLeft: () => { stop(); go(cur - 1); },
      Home: () => { stop(); go(0); }, End: () => { stop(); go(F - 1); },
      " ": () => setPlaying(timer === null),
    };
    if (keys[e.key]) { e.preventDefault(); keys[e.key](); }
  });

  // ---- start ----------------------------------------------------------------------------------
  const t = D.thinned;
  $("bpr-sub").textContent = D.steps + " steps recorded; " + F + " kept frames of " + P + " parameters in " +
    params.length + " named part" + (params.length > 1 ? "s" : "") + (D.watched.length ? ", " + D.watched.length + " watched" : "") +
    ". Everything below is drawn in your browser from the recorded numbers." +
    (t ? " To stay under its " + (t.maxBytes / 1e6).toFixed(1) + " MB budget (explore(rec, max_bytes=...)), the page keeps " +
      t.kept + " of the " + t.recorded + " recorded frames, evenly spaced." : "");
  buildCharts();
  buildParams();
  go(F - 1);
  window.bpr = {
    frames: F,
    frame: (k) => { if (k !== undefined) { stop(); go(k); } return cur; },
    step: () => D.frameSteps[cur],
    params: (k, name) => Array.from(frameOf(DATA, k, params.find((p) => p.name === name))),
    grads: (k, name) => Array.from(frameOf(GRADS, k, params.find((p) => p.name === name))),
    norms: () => norms.map((n) => n.slice()),
    probe: (k) => {
      if (!probe.probed[k]) throw new Error("the probe did not run at frame " + k + " (the nearest it ran at is " + nearestProbed(k) + ")");
      const r = probeAt(k);
      return { data: Array.from(r.data), grad: Array.from(r.grad) };
    },
    showGradients: (on) => { $(on ? "bpr-show-grads" : "bpr-show-data").click(); },
    openStepThrough: openStepThrough,
    closeStepThrough: closeStepThrough,
    stepThroughOpen: () => !overlay.hidden,
  };
  document.body.dataset.ready = "1";
  if (unpacking) {
    const done = (why) => {
      unpacking = false;
      unpackError = why;
      drawProbe();
      document.body.dataset.probeReady = "1";
    };
    if (typeof DecompressionStream === "undefined") done("this browser cannot unpack its graph (it has no DecompressionStream)");
    else {
      unpack().then((tape) => { probe.tape = tape; replayable = true; done(null); },
        (e) => done("its graph could not be unpacked (" + e + ")"));
    }
  } else document.body.dataset.probeReady = "1";
})();
