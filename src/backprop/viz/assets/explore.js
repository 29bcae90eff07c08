// explore(history)'s page: scrub through a training run, epoch by epoch, and see the decision
// boundary, every neuron's activation and the weights and gradients on every edge. Everything
// is computed here, in float64, from each snapshot's parameters (the page data's contract is
// the docstring of backprop/viz/explorer.py). window.bpx is a small hook for tests.
(function () {
  "use strict";
  const started = performance.now();
  const D = JSON.parse(document.getElementById("bpx-data").textContent);
  const $ = (id) => document.getElementById(id);
  const SVGNS = "http://www.w3.org/2000/svg";
  const F = D.frames.length, P = D.P, N = D.X.length;
  const sizes = D.sizes, L = sizes.length - 1, nin = sizes[0];
  const K = D.binary ? 2 : sizes[L];  // classes
  const ORANGE = [232, 113, 10], BLUE = [26, 115, 232], WHITE = [252, 252, 252];
  const CLASS_COLOURS = ["#e8710a", "#1a73e8", "#188038", "#a142f4", "#d93025", "#12a4b8",
    "#c69000", "#5f6368", "#e52592", "#7cb342"];
  const classColour = (c) => CLASS_COLOURS[c % CLASS_COLOURS.length];

  // ---- the snapshots --------------------------------------------------------------------------
  function float64s(b64) {  // base64 of little-endian doubles
    const s = atob(b64 || ""), n = s.length >> 3, out = new Float64Array(n);
    const bytes = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) bytes[i] = s.charCodeAt(i);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < n; i++) out[i] = view.getFloat64(8 * i, true);
    return out;
  }
  const PARAMS = float64s(D.params), GRADS = float64s(D.grads);
  const paramsAt = (k) => PARAMS.subarray(k * P, (k + 1) * P);
  const gradsAt = (k) => GRADS.subarray(k * P, (k + 1) * P);
  // where neuron j of layer l (1..L) keeps its weights (then its bias) in parameters() order
  const offset = [null];
  {
    let o = 0;
    for (let l = 1; l <= L; l++) {
      const row = [];
      for (let j = 0; j < sizes[l]; j++) { row.push(o); o += sizes[l - 1] + 1; }
      offset.push(row);
    }
    if (o !== P) throw new Error("explore: " + o + " parameters in sizes, P is " + P);
  }
  const ACT = {
    tanh: Math.tanh,
    relu: (z) => (z > 0 ? z : 0),
    sigmoid: (z) => 1 / (1 + Math.exp(-z)),
    linear: (z) => z,
  };
  // d activation / dz from the activation's output, as backward() computes it
  const SLOPE = {
    tanh: (a) => 1 - a * a,
    relu: (a) => (a <= 0 ? 0 : 1),
    sigmoid: (a) => (1 - a) * a,
    linear: () => 1,
  };

  // The forward pass in Neuron's order: b + w0*x0 + w1*x1 + ..., one rounding per operation,
  // as Python's floats do it. Returns the activations of every layer, the inputs first.
  function forward(p, x) {
    const acts = [Float64Array.from(x)];
    let a = acts[0];
    for (let l = 1; l <= L; l++) {
      const n = sizes[l], m = sizes[l - 1], f = ACT[D.activations[l - 1]];
      const out = new Float64Array(n);
      for (let j = 0; j < n; j++) {
        const o = offset[l][j];
        let z = p[o + m];
        for (let i = 0; i < m; i++) z = z + p[o + i] * a[i];
        out[j] = f(z);
      }
      acts.push(out);
      a = out;
    }
    return acts;
  }
  const outputOf = (acts) => (sizes[L] === 1 ? acts[L][0] : Array.from(acts[L]));

  // ---- what an output means ---------------------------------------------------------------------
  function softmax(z) {
    let top = -Infinity;
    for (const v of z) top = Math.max(top, v);
    const e = Array.from(z, (v) => Math.exp(v - top));
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / s);
  }
  function predictedClass(out) {  // as Objective.predict: > 0, or the first largest score
    if (D.binary) return out[0] > 0 ? 1 : 0;
    let best = 0;
    for (let c = 1; c < out.length; c++) if (out[c] > out[best]) best = c;
    return best;
  }
  function confidence(out) {  // 0 (unsure) .. 1 (certain) of the predicted class
    if (D.binary) {
      if (D.loss === "bce") return Math.abs(2 / (1 + Math.exp(-out[0])) - 1);
      return Math.min(1, Math.abs(out[0]));
    }
    const p = softmax(out), k = out.length;
    return Math.max(0, (Math.max.apply(null, p) - 1 / k) / (1 - 1 / k));
  }
  const target = (c) => (D.loss === "bce" ? c : c === 1 ? 1 : -1);
  function pointLoss(out, c) {
    const s = out[0];
    if (D.loss === "hinge") return Math.max(0, 1 - target(c) * s);
    if (D.loss === "mse") return (s - target(c)) * (s - target(c));
    if (D.loss === "bce") return Math.max(s, 0) + Math.log1p(Math.exp(-Math.abs(s))) - s * c;
    return -Math.log(softmax(out)[c]);
  }
  function lossSlope(out, c) {  // d(point's loss) / d(each output)
    const s = out[0];
    if (D.loss === "hinge") return [1 - target(c) * s > 0 ? -target(c) : 0];
    if (D.loss === "mse") return [2 * (s - target(c))];
    if (D.loss === "bce") return [1 / (1 + Math.exp(-s)) - c];
    return softmax(out).map((p, j) => p - (j === c ? 1 : 0));
  }
  // one point's gradient of its own loss with respect to every parameter (plain backprop)
  function pointGradient(p, acts, c) {
    const g = new Float64Array(P);
    let delta = lossSlope(acts[L], c);
    for (let l = L; l >= 1; l--) {
      const m = sizes[l - 1], slope = SLOPE[D.activations[l - 1]], prev = acts[l - 1];
      const back = new Float64Array(m);
      for (let j = 0; j < sizes[l]; j++) {
        const d = delta[j] * slope(acts[l][j]), o = offset[l][j];
        for (let i = 0; i < m; i++) { g[o + i] = d * prev[i]; back[i] += d * p[o + i]; }
        g[o + m] = d;
      }
      delta = back;
    }
    return g;
  }

  // ---- per-frame results, computed when first needed --------------------------------------------
  const cache = new Map();
  function atFrame(k) {
    let r = cache.get(k);
    if (r) return r;
    const p = paramsAt(k);
    const acts = D.X.map((x) => forward(p, x));
    // dead and saturated neurons, judged over the training points
    const state = [null];
    for (let l = 1; l <= L; l++) {
      const act = D.activations[l - 1], row = [];
      for (let j = 0; j < sizes[l]; j++) {
        let zero = true, slope = 0;
        for (const a of acts) {
          const v = a[l][j];
          if (v !== 0) zero = false;
          slope += SLOPE[act](v);
        }
        slope /= N;
        let s = "ok";
        if (act === "relu" && zero) s = "dead";
        else if (act === "tanh" && slope < 0.05) s = "saturated";
        else if (act === "sigmoid" && slope < 0.0125) s = "saturated";
        row.push({ state: s, slope: slope });
      }
      state.push(row);
    }
    r = { acts: acts, state: state, shares: null };
    cache.set(k, r);
    if (cache.size > 64) cache.delete(cache.keys().next().value);
    return r;
  }
  function shares(k) {  // each point's part of the full-batch gradient at frame k's weights
    const r = atFrame(k);
    if (r.shares) return r.shares;
    const p = paramsAt(k);
    const gs = D.X.map((x, i) => pointGradient(p, r.acts[i], D.y[i]));
    const total = new Float64Array(P);
    for (const g of gs) for (let q = 0; q < P; q++) total[q] += g[q] / N;
    let tt = 0;
    for (let q = 0; q < P; q++) tt += total[q] * total[q];
    const norms = gs.map((g) => Math.sqrt(g.reduce((a, v) => a + v * v, 0)) / N);
    const part = gs.map((g) => {
      let d = 0;
      for (let q = 0; q < P; q++) d += g[q] * total[q];
      return tt > 0 ? d / N / tt : 0;
    });
    const order = norms.map((_, i) => i).sort((a, b) => norms[b] - norms[a]);
    const rank = new Array(N);
    order.forEach((i, r0) => { rank[i] = r0 + 1; });
    r.shares = { part: part, norm: norms, rank: rank, total: Math.sqrt(tt) };
    return r.shares;
  }

  // ---- the input plane ---------------------------------------------------------------------------
  // the plane's default axes: the first two features, or with more than two the two that vary
  // most over the training points (a near-constant pixel makes a blank plane)
  let fx = 0, fy = Math.min(1, nin - 1);
  if (nin > 2) {
    const spread = D.features.map((_, q) => {
      let s = 0, s2 = 0;
      for (const x of D.X) { s += x[q]; s2 += x[q] * x[q]; }
      return s2 / N - (s / N) * (s / N);
    });
    const order = spread.map((_, q) => q).sort((a, b) => spread[b] - spread[a] || a - b);
    fx = Math.min(order[0], order[1]);
    fy = Math.max(order[0], order[1]);
  }
  const defaultPlane = [fx, fy];
  const toU = (x) => (x[fx] - D.lo[fx]) / (D.hi[fx] - D.lo[fx] || 1);
  const toV = (x) => (nin > 1 ? (x[fy] - D.lo[fy]) / (D.hi[fy] - D.lo[fy] || 1) : 0.5);
  // forward passes over an R x R grid, layer by layer (the same sums in the same order as
  // forward(), without a new array per point): grid[l][j] holds neuron j of layer l, row by
  // row from the top
  const grids = new Map();
  let gridKey = "", gridNow = null;
  function frameGrid() {  // the grid at the current frame and plane, computed once
    const key = cur + " " + fx + " " + fy;
    if (key !== gridKey) { gridNow = gridValues(cur, RB); gridKey = key; }
    return gridNow;
  }
  function gridValues(k, R) {
    let grid = grids.get(R);
    if (!grid) {
      grid = sizes.map((n) => Array.from({ length: n }, () => new Float64Array(R * R)));
      grids.set(R, grid);
    }
    const p = paramsAt(k), G = R * R;
    for (let q = 0; q < nin; q++) {
      const col = grid[0][q];
      for (let gy = 0; gy < R; gy++) {
        for (let gx = 0; gx < R; gx++) {
          col[gy * R + gx] = q === fx ? D.lo[fx] + ((gx + 0.5) / R) * (D.hi[fx] - D.lo[fx])
            : q === fy ? D.lo[fy] + (1 - (gy + 0.5) / R) * (D.hi[fy] - D.lo[fy]) : D.mean[q];
        }
      }
    }
    for (let l = 1; l <= L; l++) {
      const m = sizes[l - 1], f = ACT[D.activations[l - 1]], prev = grid[l - 1];
      for (let j = 0; j < sizes[l]; j++) {
        const out = grid[l][j], o = offset[l][j], b = p[o + m];
        out.fill(b);
        for (let i = 0; i < m; i++) {
          const w = p[o + i], a = prev[i];
          for (let g = 0; g < G; g++) out[g] = out[g] + w * a[g];
        }
        const act = D.activations[l - 1];  // one loop per activation: no call per cell
        if (act === "tanh") for (let g = 0; g < G; g++) out[g] = Math.tanh(out[g]);
        else if (act === "relu") for (let g = 0; g < G; g++) out[g] = out[g] > 0 ? out[g] : 0;
        else if (act !== "linear") for (let g = 0; g < G; g++) out[g] = f(out[g]);
      }
    }
    return grid;
  }

  function mix(c, t) {  // white to colour c by t in [0, 1]
    return [WHITE[0] + (c[0] - WHITE[0]) * t, WHITE[1] + (c[1] - WHITE[1]) * t,
      WHITE[2] + (c[2] - WHITE[2]) * t];
  }
  const hex = (h) => [parseInt(h.slice(1, 3), 16), parseInt(h.slice(3, 5), 16), parseInt(h.slice(5, 7), 16)];

  // ---- the decision boundary -------------------------------------------------------------------
  const RB = 84;  // grid cells across the boundary plot: 3 per cell of a neuron's heatmap
  const boundary = $("bpx-boundary");
  const bctx = boundary.getContext("2d");
  const off = document.createElement("canvas");
  off.width = off.height = RB;
  const offctx = off.getContext("2d");
  let plotSize = 360;
  function sizeBoundary() {
    const dpr = window.devicePixelRatio || 1;
    plotSize = 360;
    boundary.style.width = boundary.style.height = plotSize + "px";
    boundary.width = boundary.height = Math.round(plotSize * dpr);
    bctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  }
  function niceTicks(lo, hi, n) {
    const span = hi - lo, raw = span / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => span / s <= n) || 10 * mag;
    const out = [];
    for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9 * span; t += step) out.push(+t.toFixed(10));
    return out;
  }
  const short = (x) => (Math.abs(x) >= 1000 || (Math.abs(x) < 0.01 && x !== 0) ? x.toExponential(1) : String(+x.toFixed(2)));
  function drawBoundary() {
    const out = frameGrid()[L];
    const img = offctx.createImageData(RB, RB);
    shade(out, img.data);
    offctx.putImageData(img, 0, 0);
    const S = plotSize;
    bctx.imageSmoothingEnabled = true;
    bctx.clearRect(0, 0, S, S);
    bctx.drawImage(off, 0, 0, S, S);
    if (D.binary) contour(out[0], S);
    bctx.drawImage(axes(), 0, 0, S, S);
    // the training points
    const r = atFrame(cur), sh = sizeByShare ? shares(cur) : null;
    let top = 0;
    if (sh) for (const v of sh.norm) top = Math.max(top, v);
    for (let i = 0; i < N; i++) {
      const x = toU(D.X[i]) * S, y = (1 - toV(D.X[i])) * S;
      const wrong = predictedClass(r.acts[i][L]) !== D.y[i];
      const rad = sh ? 2 + 7 * Math.sqrt(top > 0 ? sh.norm[i] / top : 0) : 4.2;
      bctx.beginPath();
      bctx.arc(x, y, rad, 0, 2 * Math.PI);
      bctx.fillStyle = classColour(D.y[i]);
      bctx.fill();
      bctx.lineWidth = wrong ? 2.2 : 1.2;
      bctx.strokeStyle = wrong ? "#111" : "white";
      bctx.stroke();
      if (selected && selected.type === "point" && selected.i === i) {
        bctx.beginPath();
        bctx.arc(x, y, rad + 4, 0, 2 * Math.PI);
        bctx.lineWidth = 2.5;
        bctx.strokeStyle = "#d81b60";
        bctx.stroke();
      }
    }
  }
  // The ticks along the edges, drawn once per pair of plotted features: text on a canvas
  // costs more than all the rest of a frame (a font lookup per draw).
  const axesCanvas = document.createElement("canvas");
  let axesKey = "";
  function axes() {
    const key = fx + " " + fy + " " + boundary.width;
    if (key === axesKey) return axesCanvas;
    axesKey = key;
    const S = plotSize, dpr = boundary.width / S;
    axesCanvas.width = axesCanvas.height = boundary.width;
    const ctx = axesCanvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.font = "10px system-ui, sans-serif";
    const label = (text, x, y) => {  // with a pale halo, readable on any shade
      ctx.lineWidth = 3;
      ctx.strokeStyle = "rgba(255,255,255,.8)";
      ctx.strokeText(text, x, y);
      ctx.fillStyle = "rgba(40,48,56,.75)";
      ctx.fillText(text, x, y);
    };
    const tick = (x0, y0, x1, y1) => {
      ctx.beginPath(); ctx.moveTo(x0, y0); ctx.lineTo(x1, y1);
      ctx.lineWidth = 1;
      ctx.strokeStyle = "rgba(40,48,56,.35)";
      ctx.stroke();
    };
    ctx.textBaseline = "bottom";
    ctx.textAlign = "center";
    for (const t of niceTicks(D.lo[fx], D.hi[fx], 5)) {
      const x = toU(Object.assign(D.mean.slice(), { [fx]: t })) * S;
      tick(x, S, x, S - 4);
      label(short(t), x, S - 5);
    }
    if (nin > 1) {
      ctx.textAlign = "left";
      ctx.textBaseline = "middle";
      for (const t of niceTicks(D.lo[fy], D.hi[fy], 5)) {
        const y = (1 - toV(Object.assign(D.mean.slice(), { [fy]: t }))) * S;
        tick(0, y, 4, y);
        label(short(t), 6, y);
      }
    }
    return axesCanvas;
  }
  // each grid cell in its predicted class's colour, paler where the network is less sure
  const SHADES = CLASS_COLOURS.slice(0, Math.max(K, 2)).map(hex);
  function shade(out, px) {
    const n = sizes[L], o = new Float64Array(n), G = RB * RB;
    for (let at = 0; at < G; at++) {
      for (let j = 0; j < n; j++) o[j] = out[j][at];
      const c = predictedClass(o), t = 0.12 + 0.6 * confidence(o), rgb = SHADES[c];
      px[4 * at] = WHITE[0] + (rgb[0] - WHITE[0]) * t;
      px[4 * at + 1] = WHITE[1] + (rgb[1] - WHITE[1]) * t;
      px[4 * at + 2] = WHITE[2] + (rgb[2] - WHITE[2]) * t;
      px[4 * at + 3] = 255;
    }
  }
  // the line where the single output is 0, by marching squares over the grid
  function contour(v, S) {
    const c = S / RB;
    bctx.beginPath();
    for (let gy = 0; gy < RB - 1; gy++) {
      for (let gx = 0; gx < RB - 1; gx++) {
        const a = v[gy * RB + gx], b = v[gy * RB + gx + 1];
        const d = v[(gy + 1) * RB + gx], e = v[(gy + 1) * RB + gx + 1];
        const pts = [];
        const X0 = (gx + 0.5) * c, Y0 = (gy + 0.5) * c;
        if ((a > 0) !== (b > 0)) pts.push([X0 + c * a / (a - b), Y0]);
        if ((b > 0) !== (e > 0)) pts.push([X0 + c, Y0 + c * b / (b - e)]);
        if ((d > 0) !== (e > 0)) pts.push([X0 + c * d / (d - e), Y0 + c]);
        if ((a > 0) !== (d > 0)) pts.push([X0, Y0 + c * a / (a - d)]);
        for (let q = 0; q + 1 < pts.length; q += 2) {
          bctx.moveTo(pts[q][0], pts[q][1]);
          bctx.lineTo(pts[q + 1][0], pts[q + 1][1]);
        }
      }
    }
    bctx.lineWidth = 1.6;
    bctx.strokeStyle = "rgba(30,30,30,.7)";
    bctx.stroke();
  }
  boundary.addEventListener("click", (e) => {
    const b = boundary.getBoundingClientRect();
    const mx = e.clientX - b.left, my = e.clientY - b.top;
    let best = -1, bestD = 12 * 12;
    for (let i = 0; i < N; i++) {
      const dx = toU(D.X[i]) * plotSize - mx, dy = (1 - toV(D.X[i])) * plotSize - my;
      if (dx * dx + dy * dy < bestD) { bestD = dx * dx + dy * dy; best = i; }
    }
    if (best >= 0) select({ type: "point", i: best });
  });
  boundary.addEventListener("mousemove", (e) => {
    const b = boundary.getBoundingClientRect();
    const mx = e.clientX - b.left, my = e.clientY - b.top;
    let near = false;
    for (let i = 0; i < N && !near; i++) {
      const dx = toU(D.X[i]) * plotSize - mx, dy = (1 - toV(D.X[i])) * plotSize - my;
      near = dx * dx + dy * dy < 144;
    }
    boundary.style.cursor = near ? "pointer" : "default";
  });

  // ---- the network diagram -------------------------------------------------------------------
  const net = $("bpx-net"), netSvg = $("bpx-net-svg");
  const RN = RB / 3;  // grid cells across a neuron's heatmap, read from the boundary's grid
  let nodes = [], edges = [], nodeSize = 24, roomForValues = true;
  const layerName = (l) => (l === 0 ? "input" : l === L ? "output" : "hidden " + l);
  const neuronName = (l, j) => (l === 0 ? D.features[j] : l === L ? (sizes[L] === 1 ? "the output" :
    "the output for class " + (D.classes[j] !== undefined ? D.classes[j] : j)) : "neuron " + (j + 1) + " of hidden layer " + l);
  function svgEl(tag, attrs, parent) {
    const e = document.createElementNS(SVGNS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function buildNetwork() {
    for (const n of nodes) n.el.remove();
    netSvg.replaceChildren();
    nodes = []; edges = [];
    const most = Math.max.apply(null, sizes), top = 30, bottom = 10;
    // at least 15 pixels a neuron, so that squares and names never overlap: a wide layer
    // (64 pixels of an image) makes the diagram taller
    const W = Math.max(net.clientWidth, 320), H = Math.max(450, top + bottom + 15 * most);
    const slot = (H - top - bottom) / most;
    nodeSize = Math.max(12, Math.min(40, Math.floor(slot * 0.86)));
    const gap = Math.min(slot, nodeSize * 2.2);
    roomForValues = gap - nodeSize >= 12;  // a number fits under each square
    // a crowded diagram (a wide input layer) spreads each narrower layer over the height, with
    // squares as big as its own spacing allows; otherwise every layer has the same spacing
    const crowded = slot < 20;
    const side = sizes.map((n) => (crowded ? Math.max(12, Math.min(40, Math.floor(Math.min((H - top - bottom) / n, 60) * 0.86))) : nodeSize));
    const step = sizes.map((n, l) => (crowded ? Math.min((H - top - bottom) / n, side[l] * 2.2) : gap));
    net.style.height = H + "px";
    netSvg.setAttribute("width", W);
    netSvg.setAttribute("height", H);
    const xs = sizes.map((_, l) => 38 + (l * (W - 76 - nodeSize)) / L);
    const gEdges = svgEl("g", { class: "bpx-edges" }, netSvg);
    const pos = sizes.map((n, l) => Array.from({ length: n }, (_, j) => ({
      x: xs[l] + (nodeSize - side[l]) / 2, y: top + (H - top - bottom) / 2 + (j - (n - 1) / 2) * step[l] - side[l] / 2,
    })));
    for (let l = 1; l <= L; l++) {
      for (let j = 0; j < sizes[l]; j++) {
        for (let i = 0; i < sizes[l - 1]; i++) {
          const a = pos[l - 1][i], b = pos[l][j];
          const x1 = a.x + side[l - 1], y1 = a.y + side[l - 1] / 2, x2 = b.x, y2 = b.y + side[l] / 2;
          const mid = (x1 + x2) / 2;
          const path = svgEl("path", {
            class: "bpx-edge", d: "M" + x1 + "," + y1 + " C" + mid + "," + y1 + " " + mid + "," +
              y2 + " " + x2 + "," + y2,
            "data-l": l, "data-j": j, "data-i": i,
          }, gEdges);
          edges.push({ el: path, l: l, j: j, i: i, q: offset[l][j] + i });
        }
      }
    }
    for (let l = 0; l <= L; l++) {
      const label = svgEl("text", { x: xs[l] + nodeSize / 2, y: 14, class: "bpx-layer-label" }, netSvg);
      label.textContent = layerName(l) + (l ? " \u00b7 " + D.activations[l - 1] : "");
      for (let j = 0; j < sizes[l]; j++) {
        const el = document.createElement("div");
        el.className = "bpx-node" + (l === 0 ? " bpx-input" : "");
        el.dataset.l = l;
        el.dataset.j = j;
        el.style.left = pos[l][j].x + "px";
        el.style.top = pos[l][j].y + "px";
        el.style.width = el.style.height = side[l] + "px";
        const canvas = document.createElement("canvas");
        canvas.width = canvas.height = RN;
        el.appendChild(canvas);
        if (l === 0 || l === L) {
          const tag = document.createElement("span");
          tag.className = "bpx-node-name" + (l === 0 ? " left" : sizes[L] === 1 ? " below" : " right");
          tag.textContent = l === 0 ? D.features[j] : sizes[L] === 1 ? "out" : D.classes[j] || String(j);
          if (slot < 20) tag.style.fontSize = "10px";  // crowded: one line of 10px text per 15px
          el.appendChild(tag);
        }
        if (l === L) el.classList.add("bpx-output");
        const badge = document.createElement("span");
        badge.className = "bpx-badge";
        el.appendChild(badge);
        const value = document.createElement("span");
        value.className = "bpx-value";
        el.appendChild(value);
        el.addEventListener("click", () => select({ type: "neuron", l: l, j: j }));
        net.appendChild(el);
        nodes.push({ el: el, l: l, j: j, canvas: canvas, ctx: canvas.getContext("2d"),
          badge: badge, value: value });
      }
    }
    gEdges.addEventListener("mouseover", (e) => {
      const t = e.target.closest("path.bpx-edge");
      if (!t) return;
      const ed = edges.find((x) => x.el === t);
      const w = paramsAt(cur)[ed.q], g = gradsAt(cur)[ed.q];
      let title = t.querySelector("title");
      if (!title) title = svgEl("title", {}, t);
      title.textContent = "weight from " + neuronName(ed.l - 1, ed.i) + " to " + neuronName(ed.l, ed.j) +
        ": " + fmt(w) + "\ngradient of the update that ended this epoch: " + fmt(g);
    });
  }
  function heat(v, act, scale) {  // an activation as a colour: orange < 0 < blue
    const t = act === "sigmoid" ? 2 * v - 1 : v / scale;
    const s = Math.max(-1, Math.min(1, t));
    return s >= 0 ? mix(BLUE, s) : mix(ORANGE, -s);
  }
  function drawNetwork() {
    const grid = frameGrid(), r = atFrame(cur);
    const point = selected && selected.type === "point" ? r.acts[selected.i] : null;
    for (const n of nodes) {
      const v = grid[n.l][n.j], act = n.l === 0 ? "linear" : D.activations[n.l - 1];
      let scale = 1;
      if (act === "relu" || act === "linear") {
        scale = 0;
        for (const x of v) scale = Math.max(scale, Math.abs(x));
        scale = scale || 1;
      }
      const img = n.ctx.createImageData(RN, RN);
      for (let at = 0; at < RN * RN; at++) {
        // the centre of a heatmap cell is the centre of the middle one of 3 x 3 grid cells
        const rgb = heat(v[(3 * Math.floor(at / RN) + 1) * RB + 3 * (at % RN) + 1], act, scale);
        img.data[4 * at] = rgb[0]; img.data[4 * at + 1] = rgb[1]; img.data[4 * at + 2] = rgb[2];
        img.data[4 * at + 3] = 255;
      }
      n.ctx.putImageData(img, 0, 0);
      if (point) {  // where the selected point sits on this neuron's map
        const u = toU(D.X[selected.i]) * RN, w = (1 - toV(D.X[selected.i])) * RN;
        n.ctx.fillStyle = "#d81b60";
        n.ctx.fillRect(Math.floor(u) - 1, Math.floor(w) - 1, 3, 3);
      }
      n.el.classList.toggle("bpx-held", n.l === 0 && n.j !== fx && n.j !== fy);
      const st = n.l === 0 ? "ok" : r.state[n.l][n.j].state;
      n.el.classList.toggle("dead", st === "dead");
      n.el.classList.toggle("saturated", st === "saturated");
      n.el.dataset.state = st;
      n.badge.textContent = st === "dead" ? "dead" : st === "saturated" ? "sat." : "";
      n.el.title = neuronTitle(n.l, n.j, st, r);
      n.value.textContent = point && roomForValues ? short2(point[n.l][n.j]) : "";
      n.el.classList.toggle("selected", !!selected && selected.type === "neuron" &&
        selected.l === n.l && selected.j === n.j);
    }
    drawEdges();
  }
  const short2 = (x) => (Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(2));
  function neuronTitle(l, j, st, r) {
    if (l === 0) {
      return D.features[j] + ": an input feature" + (j !== fx && j !== fy ? ", held at its mean " +
        fmt(D.mean[j]) + " across the plane" : "") + " (click for details)";
    }
    const why = st === "dead" ? "\nDEAD: ReLU outputs 0 on every training point, so no gradient from the data passes " +
      "through it and its weights stop learning from the data." : st === "saturated" ? "\nSATURATED: its output is " +
      "near \u00b11 on the points, so its slope (1 \u2212 tanh\u00b2) is about 0 and little gradient gets through." : "";
    return neuronName(l, j) + " (" + D.activations[l - 1] + "); mean slope over the points " +
      fmt(r.state[l][j].slope) + why + "\n(click for its weights and gradient over the epochs)";
  }
  let showGrads = false;
  let wmax = 0;
  for (let k = 0; k < F; k++) {
    const p = paramsAt(k);
    for (const e0 of weightIndices()) wmax = Math.max(wmax, Math.abs(p[e0]));
  }
  function weightIndices() {
    const out = [];
    for (let l = 1; l <= L; l++) for (let j = 0; j < sizes[l]; j++) for (let i = 0; i < sizes[l - 1]; i++) out.push(offset[l][j] + i);
    return out;
  }
  function drawEdges() {
    const p = paramsAt(cur), g = gradsAt(cur);
    let gmax = 0;
    for (const e of edges) gmax = Math.max(gmax, Math.abs(g[e.q]));
    // the biggest updates: the top 8% of edges by |grad| (at least 3)
    const cut = showGrads && gmax > 0 ? edges.map((e) => Math.abs(g[e.q])).sort((a, b) => b - a)[Math.min(edges.length - 1, Math.max(2, Math.round(edges.length * 0.08) - 1))] : Infinity;
    const focus = selected && selected.type === "neuron" ? selected : null;
    for (const e of edges) {
      let width, colour, opacity;
      if (showGrads) {
        const t = gmax > 0 ? Math.abs(g[e.q]) / gmax : 0;
        width = 0.25 + 6.5 * t;
        const topEdge = gmax > 0 && Math.abs(g[e.q]) >= cut;
        colour = topEdge ? "#9c27b0" : "#98a2ad";
        opacity = topEdge ? 0.95 : 0.2 + 0.6 * t;
        e.el.classList.toggle("bpx-top", topEdge);
      } else {
        const t = wmax > 0 ? Math.abs(p[e.q]) / wmax : 0;
        width = 0.25 + 5.5 * t;
        colour = p[e.q] >= 0 ? "#1a73e8" : "#e8710a";
        opacity = 0.25 + 0.7 * t;
        e.el.classList.remove("bpx-top");
      }
      if (focus) {
        const mine = e.l === focus.l && e.j === focus.j || e.l === focus.l + 1 && e.i === focus.j;
        opacity = mine ? Math.max(opacity, 0.85) : opacity * 0.2;
      }
      e.el.setAttribute("stroke-width", width.toFixed(3));
      e.el.setAttribute("stroke", colour);
      e.el.setAttribute("stroke-opacity", opacity.toFixed(3));
    }
    const teach = $("bpx-net-teach");
    if (showGrads) {
      teach.textContent = gmax > 0
        ? "Edge width is |gradient| of each weight in the update that ended this epoch, scaled to " +
          "this epoch's largest; the purple edges are the biggest updates. Gradient descent moves each " +
          "weight against its gradient."
        : "Epoch " + D.frames[cur].epoch + " is before the first update, so there is no gradient yet: " +
          "step forward to see which weights the first update changes most.";
    } else {
      teach.textContent = "Each square is one neuron's output over the input plane (as on the left). " +
        "Edge width is |weight|, colour its sign (blue +, orange \u2212). Click a neuron for its weights " +
        "and gradient over the epochs.";
    }
  }
  const edgeMode = () => { showGrads = $("bpx-show-grads").checked; drawEdges(); };
  $("bpx-show-weights").addEventListener("change", edgeMode);
  $("bpx-show-grads").addEventListener("change", edgeMode);

  // ---- loss and accuracy curves -----------------------------------------------------------
  const curves = [];
  function buildCurve(svg, values, opts) {
    svg.replaceChildren();
    const W = Math.max(svg.clientWidth || 300, 200), H = 150;
    const m = { l: 46, r: 14, t: 18, b: 28 };
    svg.setAttribute("width", W);
    svg.setAttribute("height", H);
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    const e0 = D.frames[0].epoch, e1 = D.frames[F - 1].epoch || 1;
    let lo = opts.lo, hi = opts.hi;
    if (hi === undefined) { hi = 0; for (const v of values) if (isFinite(v)) hi = Math.max(hi, v); hi = hi || 1; }
    const X = (e) => m.l + ((e - e0) / (e1 - e0 || 1)) * (W - m.l - m.r);
    const Y = (v) => m.t + (1 - (Math.min(hi, Math.max(lo, v)) - lo) / (hi - lo)) * (H - m.t - m.b);
    for (const t of niceTicks(lo, hi, 4)) {
      svgEl("line", { x1: m.l, x2: W - m.r, y1: Y(t), y2: Y(t), class: "bpx-gridline" }, svg);
      svgEl("text", { x: m.l - 6, y: Y(t) + 3, class: "bpx-tick", "text-anchor": "end" }, svg)
        .textContent = opts.pct ? Math.round(100 * t) + "%" : short(t);
    }
    for (const t of niceTicks(e0, e1, 6)) {
      if (t !== Math.round(t)) continue;
      svgEl("text", { x: X(t), y: H - m.b + 14, class: "bpx-tick", "text-anchor": "middle" }, svg)
        .textContent = t;
    }
    svgEl("text", { x: W - m.r, y: H - 3, class: "bpx-axis", "text-anchor": "end" }, svg).textContent = "epoch";
    svgEl("text", { x: m.l, y: 11, class: "bpx-axis" }, svg).textContent = opts.label;
    const d = values.map((v, k) => (k ? "L" : "M") + X(D.frames[k].epoch).toFixed(1) + "," + Y(v).toFixed(1)).join(" ");
    svgEl("path", { d: d, class: "bpx-line", stroke: opts.colour }, svg);
    const cursor = svgEl("line", { y1: m.t - 4, y2: H - m.b, class: "bpx-cursor" }, svg);
    const dot = svgEl("circle", { r: 4, fill: opts.colour, class: "bpx-dot" }, svg);
    const text = svgEl("text", { class: "bpx-readout" }, svg);
    const c = { svg: svg, X: X, Y: Y, values: values, cursor: cursor, dot: dot, text: text, opts: opts, W: W, m: m };
    svg.onclick = svg.onpointermove = (ev) => {
      if (ev.type === "pointermove" && !ev.buttons) return;
      const b = svg.getBoundingClientRect(), x = ev.clientX - b.left;
      let best = 0;
      for (let k = 0; k < F; k++) if (Math.abs(X(D.frames[k].epoch) - x) < Math.abs(X(D.frames[best].epoch) - x)) best = k;
      stop();
      go(best);
    };
    return c;
  }
  function buildCurves() {
    curves.length = 0;
    curves.push(buildCurve($("bpx-loss"), D.frames.map((f) => f.loss),
      { lo: 0, label: "loss (" + D.loss + ")", colour: "#c2185b" }));
    curves.push(buildCurve($("bpx-acc"), D.frames.map((f) => f.accuracy),
      { lo: 0, hi: 1, pct: true, label: "accuracy on the training points", colour: "#00897b" }));
  }
  function drawCursors() {
    for (const c of curves) {
      const x = c.X(D.frames[cur].epoch), v = c.values[cur], y = c.Y(v);
      c.cursor.setAttribute("x1", x.toFixed(2));
      c.cursor.setAttribute("x2", x.toFixed(2));
      c.dot.setAttribute("cx", x.toFixed(2));
      c.dot.setAttribute("cy", y.toFixed(2));
      const right = x > c.W - 120;
      c.text.setAttribute("x", (right ? x - 8 : x + 8).toFixed(1));
      c.text.setAttribute("y", Math.max(c.m.t + 10, y - 8).toFixed(1));
      c.text.setAttribute("text-anchor", right ? "end" : "start");
      c.text.textContent = c.opts.pct ? (100 * v).toFixed(1) + "%" : fmt(v);
      c.svg.dataset.cursor = x.toFixed(2);
    }
  }

  // ---- details: a neuron or a point ------------------------------------------------------------
  let selected = null;
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  // numbers as explain() writes them (4 decimals from 1 up, else 4 significant digits):
  // replay.js's fmt is Python's fmt() to the character; this fallback only approximates it
  const fmt = window.bpReplay ? window.bpReplay.fmt : (x) => (x === 0 ? "0.0" : String(+x.toPrecision(4)));
  function select(s) {
    selected = s;
    drawNetwork();
    drawBoundary();
    showDetails();
    const side = $("bpx-side").getBoundingClientRect();
    if (s && side.top > window.innerHeight - 80) {  // a narrow window puts the details below
      $("bpx-side").scrollIntoView({ block: "start", behavior: "smooth" });
    }
  }
  function miniChart(series, opts) {  // small line chart over the epochs, with this epoch marked
    const W = 300, H = 120, m = { l: 42, r: 8, t: 8, b: 20 };
    const svg = svgEl("svg", { width: W, height: H, class: "bpx-mini", viewBox: "0 0 " + W + " " + H });
    let lo = Infinity, hi = -Infinity;
    for (const s of series) for (const v of s.values) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    if (opts.zero) { lo = Math.min(lo, 0); hi = Math.max(hi, 0); }
    if (!(hi > lo)) { lo -= 1; hi += 1; }
    const e0 = D.frames[0].epoch, e1 = D.frames[F - 1].epoch || 1;
    const X = (e) => m.l + ((e - e0) / (e1 - e0 || 1)) * (W - m.l - m.r);
    const Y = (v) => m.t + (1 - (v - lo) / (hi - lo)) * (H - m.t - m.b);
    for (const t of niceTicks(lo, hi, 4)) {
      svgEl("line", { x1: m.l, x2: W - m.r, y1: Y(t), y2: Y(t), class: t === 0 ? "bpx-zero" : "bpx-gridline" }, svg);
      svgEl("text", { x: m.l - 4, y: Y(t) + 3, class: "bpx-tick", "text-anchor": "end" }, svg).textContent = short(t);
    }
    svgEl("text", { x: X(e0), y: H - 6, class: "bpx-tick", "text-anchor": "start" }, svg).textContent = e0;
    svgEl("text", { x: X(e1), y: H - 6, class: "bpx-tick", "text-anchor": "end" }, svg).textContent = e1;
    svgEl("text", { x: (m.l + W - m.r) / 2, y: H - 6, class: "bpx-tick", "text-anchor": "middle" }, svg)
      .textContent = "epoch";
    for (const s of series) {
      const d = s.values.map((v, k) => (k ? "L" : "M") + X(D.frames[k].epoch).toFixed(1) + "," + Y(v).toFixed(1)).join(" ");
      svgEl("path", { d: d, class: "bpx-line thin", stroke: s.colour, "stroke-dasharray": s.dash || "" }, svg);
    }
    const x = X(D.frames[cur].epoch);
    svgEl("line", { x1: x, x2: x, y1: m.t, y2: H - m.b, class: "bpx-cursor" }, svg);
    return svg;
  }
  const series = (q, arr) => Array.from({ length: F }, (_, k) => arr[k * P + q]);
  function showDetails() {
    const box = $("bpx-details");
    box.replaceChildren();
    if (!selected) return showHelp(box);
    const back = box.appendChild(el("button", "bpx-link", "\u2190 how to read this page"));
    back.onclick = () => select(null);
    if (selected.type === "neuron") showNeuron(box, selected.l, selected.j);
    else showPoint(box, selected.i);
  }
  function showHelp(box) {
    box.appendChild(el("h2", "", "How to read this page"));
    const items = [
      ["Time", "Drag the slider or press \u2190 \u2192 to move through the epochs; Play runs the training as a movie."],
      ["The data", "Each dot is a training point, coloured by its class; the background is the class the network predicts there, paler where it is unsure. A dark ring marks a point it gets wrong."],
      ["The network", "Every neuron computes activation(w \u00b7 x + b). Its square shows that output for every spot of the input plane, so you can see each layer build more complex shapes out of the ones before it."],
      ["Gradients", "Switch the edges to gradients to see where backprop sends the biggest changes at each epoch."],
      ["Click", "Click a neuron for its weights and the gradient reaching it over the epochs, or a dot for its forward values and its own backward pass."],
    ];
    const dl = box.appendChild(el("dl", "bpx-help"));
    for (const [t, d] of items) { dl.appendChild(el("dt", "", t)); dl.appendChild(el("dd", "", d)); }
    const st = atFrame(cur).state;
    const dead = [], sat = [];
    for (let l = 1; l <= L; l++) st[l].forEach((s, j) => { if (s.state === "dead") dead.push(neuronName(l, j)); else if (s.state === "saturated") sat.push(neuronName(l, j)); });
    if (dead.length || sat.length) {
      const w = box.appendChild(el("div", "bpx-warn"));
      if (dead.length) w.appendChild(el("p", "", dead.length + " dead ReLU neuron" + (dead.length > 1 ? "s" : "") + " at this epoch (red): zero on every training point, so no gradient from the data reaches their weights through them. They stay dead unless something else moves them: an earlier layer changing their inputs, momentum left from earlier updates, or weight decay."));
      if (sat.length) w.appendChild(el("p", "", sat.length + " saturated neuron" + (sat.length > 1 ? "s" : "") + " (amber): the output sits near its limit on the points, where the activation's slope is about 0, so almost no gradient gets through and they learn slowly."));
    }
  }
  function showNeuron(box, l, j) {
    if (l === 0) {
      box.appendChild(el("h2", "", "Input " + D.features[j]));
      box.appendChild(el("p", "", l === 0 && j !== fx && j !== fy
        ? "This feature is not on the plot's axes, so across the plane it is held at its mean, " + fmt(D.mean[j]) + "."
        : "The raw feature itself. It has no weights: every first-layer neuron reads it, each with its own weight."));
      return;
    }
    const r = atFrame(cur), s = r.state[l][j], act = D.activations[l - 1], m = sizes[l - 1], o = offset[l][j];
    box.appendChild(el("h2", "", neuronName(l, j).replace(/^./, (c) => c.toUpperCase())));
    box.appendChild(el("p", "bpx-muted", act + "(w \u00b7 x + b) with " + m + " incoming weights; epoch " + D.frames[cur].epoch + "."));
    if (s.state !== "ok") {
      box.appendChild(el("p", "bpx-warn", s.state === "dead"
        ? "Dead: this ReLU outputs 0 on every training point at this epoch. Its slope is 0 there, so no gradient from the data reaches its weights, or anything before it, through it. It stays dead unless something else moves it: an earlier layer changing its inputs, momentum left from earlier updates, or weight decay."
        : "Saturated: on average its slope (" + (act === "tanh" ? "1 \u2212 tanh\u00b2" : "\u03c3(1 \u2212 \u03c3)") + ") over the training points is only " + fmt(s.slope) + ", so the gradient that reaches it is multiplied by almost 0: it learns very slowly."));
    } else {
      if (act !== "linear") {
        box.appendChild(el("p", "bpx-muted", "Its activation's slope, averaged over the training points: " + fmt(s.slope) +
          " (" + (act === "sigmoid" ? "0.25" : "1") + " lets the gradient through at full strength, 0 blocks it)."));
      }
    }
    box.appendChild(el("h3", "", "Its incoming weights over the epochs"));
    const palette = ["#1a73e8", "#e8710a", "#188038", "#a142f4", "#d93025", "#12a4b8", "#c69000", "#5f6368"];
    const ws = [];
    for (let i = 0; i < m; i++) ws.push({ values: series(o + i, PARAMS), colour: palette[i % palette.length] });
    ws.push({ values: series(o + m, PARAMS), colour: "#222", dash: "4 3" });
    box.appendChild(miniChart(ws, { zero: true }));
    box.appendChild(el("p", "bpx-note", "One line per incoming weight, coloured as its value below (at this epoch); dashed: the bias b."));
    const p = paramsAt(cur), g = gradsAt(cur);
    const list = box.appendChild(el("div", "bpx-weights"));
    for (let i = 0; i < m; i++) {
      const from = l === 1 ? D.features[i] : "n" + (i + 1);
      const c = list.appendChild(el("span", "bpx-w", (m <= 8 ? from + " " : "") + fmt(p[o + i])));
      c.style.borderColor = palette[i % palette.length];
      c.title = "weight from " + neuronName(l - 1, i) + "; its gradient " + fmt(g[o + i]);
    }
    list.appendChild(el("span", "bpx-w bias", "b " + fmt(p[o + m])));
    box.appendChild(el("h3", "", "The gradient reaching it"));
    const norm = Array.from({ length: F }, (_, k) => {
      let t = 0;
      for (let i = 0; i < m; i++) t += GRADS[k * P + o + i] * GRADS[k * P + o + i];
      return Math.sqrt(t);
    });
    box.appendChild(miniChart([{ values: series(o + m, GRADS), colour: "#9c27b0" },
      { values: norm, colour: "#00897b", dash: "4 3" }], { zero: true }));
    box.appendChild(el("p", "bpx-note", "Purple: \u2202loss/\u2202b, the gradient arriving at this neuron's sum w \u00b7 x + b (the bias's gradient is exactly that). Dashed green: the size |\u2207w| of its weights' gradient. Both come from the update that ended each epoch; a neuron whose gradient stays at 0 has stopped learning."));
    box.appendChild(el("p", "", "At this epoch: \u2202loss/\u2202b = " + fmt(g[o + m]) + ", |\u2207w| = " + fmt(norm[cur]) + "."));
  }
  function showPoint(box, i) {
    const r = atFrame(cur), acts = r.acts[i], out = acts[L], c = D.y[i], pc = predictedClass(out);
    const name = (k) => D.classes[k] !== undefined ? String(D.classes[k]) : String(k);
    box.appendChild(el("h2", "", "Point #" + i + " (class " + name(c) + ")"));
    const values = D.features.map((f, q) => f + " = " + fmt(D.X[i][q])).join(", ");
    if (nin <= 12) box.appendChild(el("p", "bpx-muted", values + "; epoch " + D.frames[cur].epoch + "."));
    else {  // many features: folded, so the verdict and the gradient stay in view
      const more = box.appendChild(el("details", "bpx-muted"));
      more.appendChild(el("summary", "", "its " + nin + " feature values; epoch " + D.frames[cur].epoch));
      more.appendChild(el("p", "", values + "."));
    }
    const verdict = box.appendChild(el("p", pc === c ? "bpx-good" : "bpx-bad"));
    verdict.textContent = (pc === c ? "\u2714 Classified right" : "\u2718 Classified wrong") + ": the network says " + name(pc) +
      " (output " + (sizes[L] === 1 ? fmt(out[0]) : "[" + Array.from(out, fmt).join(", ") + "]") + "); its loss is " + fmt(pointLoss(out, c)) + ".";
    const sh = shares(cur);
    box.appendChild(el("h3", "", "Its share of the epoch's gradient"));
    const pct = 100 * sh.part[i];
    box.appendChild(shareStrip(sh.part, i));
    box.appendChild(el("p", "bpx-note", "Every point's part of the gradient, largest first; this " +
      "point's bar is pink. Bars below the line pull against the total."));
    const top = Math.max.apply(null, sh.part);
    box.appendChild(el("p", "", "The full-batch gradient is the mean of every point's gradient. This point's part of it (along the total) is " +
      pct.toFixed(1) + "%" + (Math.abs(pct) < 0.05 ? ", next to nothing" : pct < 0 ? ": it pulls against the rest" : "") +
      (sh.part[i] === top ? ", more than any other point. " : "; the point that pulls hardest has " + (100 * top).toFixed(1) + "%. ") +
      (sh.norm[i] === 0 ? "It adds nothing: the loss is already flat for it (" + (D.loss === "hinge" ? "its margin is past 1" : "its loss slope is 0") + ")."
        : "Points the network already gets right with confidence ask for little; the misclassified ones for the most.")));
    const lbl = box.appendChild(el("label", "bpx-check"));
    const cb = lbl.appendChild(el("input"));
    cb.type = "checkbox";
    cb.checked = sizeByShare;
    cb.onchange = () => { sizeByShare = cb.checked; drawBoundary(); };
    lbl.appendChild(document.createTextNode(" size every dot by its gradient"));
    const tape = D.tapes[D.tapeOfClass[c]];
    if (!tape.view) {
      const t = D.thinned.stepThrough;
      box.appendChild(el("p", "bpx-note", "The step-through of this point's backward pass is left out of this page: its graph has " +
        t.nodes + " nodes, and the drawings of the page's " + D.tapes.length + " graph" + (D.tapes.length > 1 ? "s" : "") +
        " would take " + (t.bytes / 1e6).toFixed(1) + " MB, more than half of the page's " +
        (D.thinned.maxBytes / 1e6).toFixed(1) + " MB budget (explore(..., max_bytes=...)). In Python, explain() draws one point's loss graph."));
    } else {
      const btn = box.appendChild(el("button", "bpx-primary", "\u25B6 Step through this point's backward pass"));
      btn.id = "bpx-step-point";
      btn.onclick = () => openStepThrough(i);
    }
    if (sh.norm[i] === 0) {  // a backward pass of zeros: offer one that teaches something
      const better = teachingPoint(sh, r);
      const note = box.appendChild(el("p", "bpx-warn", "At this epoch every gradient in this point's backward pass is 0: " +
        (D.loss === "hinge" ? "its margin is past 1, so the hinge loss is flat for it" : "its loss is flat here") +
        ", and stepping through it shows zeros all the way down."));
      note.id = "bpx-zero-note";
      if (better >= 0) {
        note.appendChild(document.createTextNode(" A point the network gets wrong teaches more: "));
        const go2 = note.appendChild(el("button", "bpx-link", "point #" + better +
          (predictedClass(r.acts[better][L]) !== D.y[better] ? " (misclassified)" : " (the largest gradient)")));
        go2.id = "bpx-better-point";
        go2.onclick = () => select({ type: "point", i: better });
      }
    }
    box.appendChild(el("h3", "", "Its forward values at every neuron"));
    box.appendChild(el("p", "bpx-note", "The pink dot on each neuron's square in the diagram is this point; these are the neurons' outputs for it."));
    for (let l = 0; l <= L; l++) {
      box.appendChild(el("div", "bpx-row-label", layerName(l) + (l ? " (" + D.activations[l - 1] + ")" : "")));
      const row = box.appendChild(el("div", "bpx-values"));
      for (let j = 0; j < sizes[l]; j++) {
        const v = acts[l][j];
        const cell = row.appendChild(el("span", "bpx-cell", short2(v)));
        const act = l === 0 ? "linear" : D.activations[l - 1];
        const rgb = heat(v, act, act === "tanh" || act === "sigmoid" ? 1 : Math.max(1e-12, Math.max.apply(null, Array.from(acts[l], Math.abs))));
        cell.style.background = "rgb(" + rgb.map(Math.round).join(",") + ")";
        cell.title = neuronName(l, j) + ": " + v;
        cell.dataset.value = String(v);
      }
    }
  }
  let sizeByShare = false;
  // the point whose backward pass teaches most at this frame: a misclassified one with the
  // largest gradient, else the largest gradient; -1 when every point's gradient is 0
  function teachingPoint(sh, r) {
    let best = -1, bestWrong = false;
    for (let q = 0; q < N; q++) {
      if (sh.norm[q] === 0) continue;
      const wrong = predictedClass(r.acts[q][L]) !== D.y[q];
      if (best < 0 || (wrong && !bestWrong) || (wrong === bestWrong && sh.norm[q] > sh.norm[best])) {
        best = q;
        bestWrong = wrong;
      }
    }
    return best;
  }
  function shareStrip(part, i) {  // all points' shares as bars, sorted, point i in pink
    const W = 300, H = 54, mid = 38;
    const svg = svgEl("svg", { width: W, height: H, class: "bpx-mini bpx-strip", viewBox: "0 0 " + W + " " + H });
    const order = part.map((_, q) => q).sort((a, b) => part[b] - part[a]);
    let top = 0;
    for (const v of part) top = Math.max(top, Math.abs(v));
    const bw = W / N;
    order.forEach((q, r0) => {
      const h = top > 0 ? (part[q] / top) * (mid - 2) : 0;
      const x = r0 * bw;
      svgEl("rect", { x: x.toFixed(2), width: Math.max(bw - (bw > 3 ? 0.6 : 0), 0.8).toFixed(2),
        y: (h >= 0 ? mid - h : mid).toFixed(2), height: Math.max(Math.abs(h), q === i ? 2 : 0.5).toFixed(2),
        fill: q === i ? "#d81b60" : "#b39ddb" }, svg);
      if (q === i) svgEl("path", { d: "M" + (x + bw / 2) + "," + (H - 1) + " l-4,-6 h8 z", fill: "#d81b60" }, svg);
    });
    svgEl("line", { x1: 0, x2: W, y1: mid, y2: mid, class: "bpx-zero" }, svg);
    return svg;
  }

  // ---- the step-through overlay ----------------------------------------------------------------
  let stepHandle = null, replayed = null;
  // the exact replay of points' loss graphs (replay.js), decoded on first use
  const replay = () => replayed || (replayed = window.bpReplay.forPage(D));
  const overlay = $("bpx-overlay");
  function openStepThrough(i) {
    closeStepThrough();
    stop();
    const title = "Point #" + i + " at epoch " + D.frames[cur].epoch + ": the backward pass of its loss";
    $("bpx-overlay-title").textContent = title;
    overlay.hidden = false;
    document.body.classList.add("bpx-stepping");
    stepHandle = window.bpStepThrough.mount(replay().explanation(cur, i));
    $("bpx-back").focus();
  }
  function closeStepThrough() {
    if (stepHandle) { stepHandle.destroy(); stepHandle = null; }
    if (overlay.hidden) return;
    overlay.hidden = true;
    document.body.classList.remove("bpx-stepping");
    const b = $("bpx-step-point");
    if (b) b.focus();
  }
  $("bpx-back").onclick = closeStepThrough;

  // ---- time ------------------------------------------------------------------------------------
  let cur = 0, timer = null;
  const slider = $("bpx-slider"), playBtn = $("bpx-play");
  slider.max = F - 1;
  function go(k) {
    k = Math.max(0, Math.min(F - 1, Math.round(k)));
    if (k === cur && document.body.dataset.ready === "1") return;
    cur = k;
    slider.value = k;
    const f = D.frames[k];
    $("bpx-epoch").textContent = "epoch " + f.epoch + " / " + D.frames[F - 1].epoch;
    $("bpx-stats").textContent = "loss " + fmt(f.loss) + " \u00b7 accuracy " + (100 * f.accuracy).toFixed(1) + "%";
    $("bpx-first").disabled = $("bpx-prev").disabled = k === 0;
    $("bpx-last").disabled = $("bpx-next").disabled = k === F - 1;
    document.body.dataset.frame = k;
    document.body.dataset.epoch = f.epoch;
    drawBoundary();
    drawNetwork();
    drawCursors();
    showDetails();  // the help's dead and saturated counts are this epoch's too
  }
  function setPlaying(on) {
    if (on && cur === F - 1) go(0);
    clearInterval(timer);
    timer = null;
    if (on) timer = setInterval(() => { if (cur >= F - 1) setPlaying(false); else go(cur + 1); }, +$("bpx-speed").value);
    playBtn.textContent = on ? "\u275A\u275A Pause" : "\u25B6 Play";
    playBtn.setAttribute("aria-label", on ? "pause" : "play");
    playBtn.setAttribute("aria-pressed", on ? "true" : "false");
  }
  const stop = () => setPlaying(false);
  playBtn.onclick = () => setPlaying(timer === null);
  $("bpx-speed").onchange = () => { if (timer !== null) setPlaying(true); };
  $("bpx-first").onclick = () => { stop(); go(0); };
  $("bpx-prev").onclick = () => { stop(); go(cur - 1); };
  $("bpx-next").onclick = () => { stop(); go(cur + 1); };
  $("bpx-last").onclick = () => { stop(); go(F - 1); };
  slider.addEventListener("input", () => { stop(); go(+slider.value); });
  document.addEventListener("keydown", (e) => {
    if (!overlay.hidden) {  // the step-through has the keys while it is open
      if (e.key === "Escape") { e.preventDefault(); closeStepThrough(); }
      return;
    }
    const t = e.target;
    if (t === slider || (t.tagName === "INPUT" && t.type !== "checkbox" && t.type !== "radio") ||
        t.tagName === "SELECT" || e.altKey || e.ctrlKey || e.metaKey) return;
    if (e.key === " " && (t.type === "checkbox" || t.type === "radio")) return;
    const keys = {
      ArrowRight: () => { stop(); go(cur + 1); }, ArrowLeft: () => { stop(); go(cur - 1); },
      Home: () => { stop(); go(0); }, End: () => { stop(); go(F - 1); },
      " ": () => setPlaying(timer === null),
      Escape: () => { if (selected) select(null); },
    };
    if (keys[e.key]) {
      e.preventDefault();
      if (t.tagName === "BUTTON") t.blur();
      keys[e.key]();
    }
  });

  // ---- features on the axes --------------------------------------------------------------------
  function axisLabels() {
    $("bpx-xlabel").textContent = D.features[fx] + " \u2192";
    $("bpx-ylabel").textContent = nin > 1 ? D.features[fy] + " \u2192" : "";
    if (nin > 2) {
      const others = D.features.filter((_, q) => q !== fx && q !== fy);
      const held = others.length <= 3 ? others.join(", ") : "the other " + others.length + " features";
      $("bpx-held").textContent = "The network reads " + nin + " features; the plane shows " + D.features[fx] + " and " +
        D.features[fy] + " with " + held + " held at " + (others.length > 1 ? "their means" : "its mean") +
        ". The dots are the training points seen from these two features" +
        (fx === defaultPlane[0] && fy === defaultPlane[1] ? " (the two that vary most over them)." : ".");
    }
  }
  if (nin > 2) {
    $("bpx-axes").hidden = false;
    for (const [id, which] of [["bpx-fx", 0], ["bpx-fy", 1]]) {
      const s = $(id);
      D.features.forEach((f, q) => { const o = el("option", "", f); o.value = q; s.appendChild(o); });
      s.value = which === 0 ? fx : fy;
      s.onchange = () => {
        const v = +s.value;
        if (which === 0) { if (v === fy) fy = fx; fx = v; } else { if (v === fx) fx = fy; fy = v; }
        $("bpx-fx").value = fx; $("bpx-fy").value = fy;
        axisLabels();
        drawBoundary(); drawNetwork();
        if (selected) showDetails();
      };
    }
  }

  // ---- the page's text and legends -------------------------------------------------------------
  function thinnedNote() {  // what was left out to keep the page under max_bytes, and why
    const t = D.thinned;
    if (!t) return "";
    const mb = (b) => (b / 1e6).toFixed(1) + " MB", said = [];
    if (t.frames) said.push("it keeps " + t.frames[0] + " of the " + t.frames[1] + " recorded snapshots, evenly spaced");
    if (t.stepThrough) said.push("it leaves out the step-through's drawing of a point's backward pass (" + mb(t.stepThrough.bytes) + ")");
    let text = said.length ? " To stay under its " + mb(t.maxBytes) + " budget (explore(..., max_bytes=...)), " + said.join(", and ") + "." : "";
    if (t.pointsBytes) text += " The training points alone take " + mb(t.pointsBytes) + ", so the page is over its " + mb(t.maxBytes) + " budget.";
    return text;
  }
  function legends() {
    const acts = Array.from(new Set(D.activations)).join(" / ");
    $("bpx-sub").textContent = P + " parameters (" + acts + "), " + N + " training points, " +
      K + " classes; " + F + " snapshots from epoch " + D.frames[0].epoch + " to " +
      D.frames[F - 1].epoch + ". Everything below is computed in your browser from each " +
      "snapshot's weights." + thinnedNote();
    const cl = $("bpx-class-legend");
    cl.replaceChildren();
    for (let c = 0; c < K; c++) {
      const item = cl.appendChild(el("span", "bpx-key"));
      const dot = item.appendChild(el("span", "bpx-dot"));
      dot.style.background = classColour(c);
      item.appendChild(document.createTextNode("class " + (D.classes[c] !== undefined ? D.classes[c] : c)));
    }
    cl.appendChild(el("span", "bpx-key", "")).innerHTML = '<span class="bpx-dot wrong"></span>misclassified';
    if (D.binary) cl.appendChild(el("span", "bpx-key", "")).innerHTML = '<span class="bpx-line-key"></span>boundary (output 0)';
    cl.appendChild(el("span", "bpx-key bpx-muted", "paler = less sure"));
    const nl = $("bpx-net-legend");
    nl.innerHTML = '<span class="bpx-key"><span class="bpx-ramp"></span>neuron output: ' +
      "\u22121 \u2026 0 \u2026 +1</span>" +
      '<span class="bpx-key"><span class="bpx-sw dead"></span>dead ReLU</span>' +
      '<span class="bpx-key"><span class="bpx-sw saturated"></span>saturated</span>' +
      '<span class="bpx-key bpx-muted">ReLU and linear squares are scaled to their own largest value</span>';
  }

  // ---- start -----------------------------------------------------------------------------------
  sizeBoundary();
  axisLabels();
  legends();
  buildNetwork();
  buildCurves();
  go(0);
  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => { buildNetwork(); buildCurves(); drawNetwork(); drawCursors(); }, 100);
  });
  window.bpx = {
    frames: F,
    frame: (k) => { if (k !== undefined) { stop(); go(k); } return cur; },
    epoch: () => D.frames[cur].epoch,
    predictions: (k) => { const r = atFrame(k === undefined ? cur : k); return r.acts.map(outputOf); },
    forward: (k, i) => atFrame(k).acts[i].map((a) => Array.from(a)),
    shares: (k) => shares(k === undefined ? cur : k).part.slice(),
    pointGradient: (k, i) => Array.from(pointGradient(paramsAt(k), atFrame(k).acts[i], D.y[i])),
    states: (k) => atFrame(k === undefined ? cur : k).state.slice(1).map((row) => row.map((s) => s.state)),
    edgeWidths: () => edges.map((e) => +e.el.getAttribute("stroke-width")),
    showGradients: (on) => { $(on ? "bpx-show-grads" : "bpx-show-weights").click(); },
    selectPoint: (i) => select({ type: "point", i: i }),
    selectNeuron: (l, j) => select({ type: "neuron", l: l, j: j }),
    openStepThrough: openStepThrough,
    closeStepThrough: closeStepThrough,
    stepThroughOpen: () => !overlay.hidden,
    playing: () => timer !== null,
    plane: () => [fx, fy],
  };
  document.body.dataset.ready = "1";
  window.bpx.loadMs = performance.now();  // since the navigation started
  window.bpx.scriptMs = window.bpx.loadMs - started;  // of which this script
})();
