// The data-and-boundary panel: the input plane (two features on the axes, the rest held at
// their means), a grid of forward passes over it (which the network panel's squares read
// too), the decision boundary with its contour and the training points, and the choice of
// features on the axes.
(function () {
  "use strict";
  const bpx = (window.bpExplore = window.bpExplore || {});
  bpx.plane = function (app) {
    const { N, sizes, L, nin, K, paramsAt, offset, ACT, forward, predictedClass, confidence,
       atFrame, shares } = app.M;
    const { WHITE, CLASS_COLOURS, classColour, hex, niceTicks, short } = app.draw;
    const { $, el } = window.bpCommon;
    const D = app.D, ui = app.state;
    const select = (s) => app.select(s);
    const drawNetwork = () => app.network.draw();
    const showDetails = () => app.details.show();

    // ---- the input plane ------------------------------------------------------------------------
    // the plane's default axes: the first two features, or with more than two the two that vary
    // most over the training points (a near-constant pixel makes a blank plane)
    ui.fx = 0;
    ui.fy = Math.min(1, nin - 1);
    if (nin > 2) {
      const spread = D.features.map((_, q) => {
        let s = 0, s2 = 0;
        for (const x of D.X) { s += x[q]; s2 += x[q] * x[q]; }
        return s2 / N - (s / N) * (s / N);
      });
      const order = spread.map((_, q) => q).sort((a, b) => spread[b] - spread[a] || a - b);
      ui.fx = Math.min(order[0], order[1]);
      ui.fy = Math.max(order[0], order[1]);
    }
    const defaultPlane = [ui.fx, ui.fy];
    const toU = (x) => (x[ui.fx] - D.lo[ui.fx]) / (D.hi[ui.fx] - D.lo[ui.fx] || 1);
    const toV = (x) => (nin > 1 ? (x[ui.fy] - D.lo[ui.fy]) / (D.hi[ui.fy] - D.lo[ui.fy] || 1) : 0.5);
    // forward passes over an R x R grid, layer by layer (the same sums in the same order as
    // forward(), without a new array per point): grid[l][j] holds neuron j of layer l, row by
    // row from the top
    const grids = new Map();
    let gridKey = "", gridNow = null;
    function frameGrid() {  // the grid at the current frame and plane, computed once
      const key = ui.cur + " " + ui.fx + " " + ui.fy;
      if (key !== gridKey) { gridNow = gridValues(ui.cur, RB); gridKey = key; }
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
            col[gy * R + gx] = q === ui.fx ? D.lo[ui.fx] + ((gx + 0.5) / R) * (D.hi[ui.fx] - D.lo[ui.fx])
              : q === ui.fy ? D.lo[ui.fy] + (1 - (gy + 0.5) / R) * (D.hi[ui.fy] - D.lo[ui.fy]) : D.mean[q];
          }
        }
      }
      for (let l = 1; l <= L; l++) {
        const m = sizes[l - 1], f = ACT[D.activations[l - 1]].f, prev = grid[l - 1];
        for (let j = 0; j < sizes[l]; j++) {
          const out = grid[l][j], o = offset[l][j], b = p[o + m];
          out.fill(b);
          for (let i = 0; i < m; i++) {
            const w = p[o + i], a = prev[i];
            for (let g = 0; g < G; g++) out[g] = out[g] + w * a[g];
          }
          // the activation, one call per cell (the op table's rule, as forward() uses)
          for (let g = 0; g < G; g++) out[g] = f(out[g]);
        }
      }
      return grid;
    }

    // ---- the decision boundary ------------------------------------------------------------------
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
      const r = atFrame(ui.cur), sh = ui.sizeByShare ? shares(ui.cur) : null;
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
        if (ui.selected && ui.selected.type === "point" && ui.selected.i === i) {
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
      const key = ui.fx + " " + ui.fy + " " + boundary.width;
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
      for (const t of niceTicks(D.lo[ui.fx], D.hi[ui.fx], 5)) {
        const x = toU(Object.assign(D.mean.slice(), { [ui.fx]: t })) * S;
        tick(x, S, x, S - 4);
        label(short(t), x, S - 5);
      }
      if (nin > 1) {
        ctx.textAlign = "left";
        ctx.textBaseline = "middle";
        for (const t of niceTicks(D.lo[ui.fy], D.hi[ui.fy], 5)) {
          const y = (1 - toV(Object.assign(D.mean.slice(), { [ui.fy]: t }))) * S;
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

    // ---- features on the axes -------------------------------------------------------------------
    function axisLabels() {
      $("bpx-xlabel").textContent = D.features[ui.fx] + " \u2192";
      $("bpx-ylabel").textContent = nin > 1 ? D.features[ui.fy] + " \u2192" : "";
      if (nin > 2) {
        const others = D.features.filter((_, q) => q !== ui.fx && q !== ui.fy);
        const held = others.length <= 3 ? others.join(", ") : "the other " + others.length + " features";
        $("bpx-held").textContent = "The network reads " + nin + " features; the plane shows " + D.features[ui.fx] + " and " +
          D.features[ui.fy] + " with " + held + " held at " + (others.length > 1 ? "their means" : "its mean") +
          ". The dots are the training points seen from these two features" +
          (ui.fx === defaultPlane[0] && ui.fy === defaultPlane[1] ? " (the two that vary most over them)." : ".");
      }
    }
    if (nin > 2) {
      $("bpx-axes").hidden = false;
      for (const [id, which] of [["bpx-fx", 0], ["bpx-fy", 1]]) {
        const s = $(id);
        D.features.forEach((f, q) => { const o = el("option", "", f); o.value = q; s.appendChild(o); });
        s.value = which === 0 ? ui.fx : ui.fy;
        s.onchange = () => {
          const v = +s.value;
          if (which === 0) { if (v === ui.fy) ui.fy = ui.fx; ui.fx = v; } else { if (v === ui.fx) ui.fx = ui.fy; ui.fy = v; }
          $("bpx-fx").value = ui.fx; $("bpx-fy").value = ui.fy;
          axisLabels();
          drawBoundary(); drawNetwork();
          if (ui.selected) showDetails();
        };
      }
    }

    return {
          RB: RB, toU: toU, toV: toV, grid: frameGrid, draw: drawBoundary, size: sizeBoundary,
          labels: axisLabels,
        };
  };
})();
