// The loss and accuracy curves over the epochs, with this epoch's cursor (click to jump),
// and the small charts of the details panel.
(function () {
  "use strict";
  const bpx = (window.bpExplore = window.bpExplore || {});
  bpx.curves = function (app) {
    const { F, L, series } = app.M;
    const { niceTicks, short, svgEl } = app.draw;
    const { $, fmt } = window.bpCommon;
    const D = app.D, ui = app.state;
    const go = (k) => app.go(k);
    const stop = () => app.stop();

    // ---- loss and accuracy curves ---------------------------------------------------------------
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
        const x = c.X(D.frames[ui.cur].epoch), v = c.values[ui.cur], y = c.Y(v);
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
      const x = X(D.frames[ui.cur].epoch);
      svgEl("line", { x1: x, x2: x, y1: m.t, y2: H - m.b, class: "bpx-cursor" }, svg);
      return svg;
    }

    return { build: buildCurves, cursors: drawCursors, miniChart: miniChart };
  };
})();
