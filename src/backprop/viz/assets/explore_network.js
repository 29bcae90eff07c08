// The network panel: every neuron as a square showing its output over the input plane (from
// the plane's grid), edges as weights or gradients, dead and saturated neurons marked.
(function () {
  "use strict";
  const bpx = (window.bpExplore = window.bpExplore || {});
  bpx.network = function (app) {
    const { F, sizes, L, paramsAt, gradsAt, offset, forward, atFrame } = app.M;
    const { short2, svgEl, heat, layerName, neuronName } = app.draw;
    const { $, fmt } = window.bpCommon;
    const D = app.D, ui = app.state;
    const select = (s) => app.select(s);
    const stop = () => app.stop();
    const frameGrid = () => app.plane.grid();
    const toU = (x) => app.plane.toU(x);
    const toV = (x) => app.plane.toV(x);
    const RB = app.plane.RB;

    // ---- the network diagram --------------------------------------------------------------------
    const net = $("bpx-net"), netSvg = $("bpx-net-svg");
    const RN = RB / 3;  // grid cells across a neuron's heatmap, read from the boundary's grid
    let nodes = [], edges = [], nodeSize = 24, roomForValues = true;
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
      // room on the left for the longest input name (10px text when crowded, else 12px)
      const longest = Math.max(0, ...D.features.map((f) => f.length));
      const left = Math.max(38, Math.min(W * 0.3, 12 + longest * (slot < 20 ? 6 : 7.2)));
      const xs = sizes.map((_, l) => left + (l * (W - left - 38 - nodeSize)) / L);
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
        const half = label.getComputedTextLength() / 2;  // centred on its layer, inside the svg
        const x = Math.min(Math.max(xs[l] + nodeSize / 2, half + 2), W - half - 2);
        if (x !== xs[l] + nodeSize / 2) label.setAttribute("x", x);
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
        const w = paramsAt(ui.cur)[ed.q], g = gradsAt(ui.cur)[ed.q];
        let title = t.querySelector("title");
        if (!title) title = svgEl("title", {}, t);
        title.textContent = "weight from " + neuronName(ed.l - 1, ed.i) + " to " + neuronName(ed.l, ed.j) +
          ": " + fmt(w) + "\ngradient of the update that ended this epoch: " + fmt(g);
      });
    }
    function drawNetwork() {
      const grid = frameGrid(), r = atFrame(ui.cur);
      const point = ui.selected && ui.selected.type === "point" ? r.acts[ui.selected.i] : null;
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
        if (point) {  // where the ui.selected point sits on this neuron's map
          const u = toU(D.X[ui.selected.i]) * RN, w = (1 - toV(D.X[ui.selected.i])) * RN;
          n.ctx.fillStyle = "#d81b60";
          n.ctx.fillRect(Math.floor(u) - 1, Math.floor(w) - 1, 3, 3);
        }
        n.el.classList.toggle("bpx-held", n.l === 0 && n.j !== ui.fx && n.j !== ui.fy);
        const st = n.l === 0 ? "ok" : r.state[n.l][n.j].state;
        n.el.classList.toggle("dead", st === "dead");
        n.el.classList.toggle("saturated", st === "saturated");
        n.el.dataset.state = st;
        n.badge.textContent = st === "dead" ? "dead" : st === "saturated" ? "sat." : "";
        n.el.title = neuronTitle(n.l, n.j, st, r);
        n.value.textContent = point && roomForValues ? short2(point[n.l][n.j]) : "";
        n.el.classList.toggle("selected", !!ui.selected && ui.selected.type === "neuron" &&
          ui.selected.l === n.l && ui.selected.j === n.j);
      }
      drawEdges();
    }
    function neuronTitle(l, j, st, r) {
      if (l === 0) {
        return D.features[j] + ": an input feature" + (j !== ui.fx && j !== ui.fy ? ", held at its mean " +
          fmt(D.mean[j]) + " across the plane" : "") + " (click for details)";
      }
      const why = st === "dead" ? "\nDEAD: ReLU outputs 0 on every training point, so no gradient from the data passes " +
        "through it and its weights stop learning from the data." : st === "saturated" ? "\nSATURATED: its output is " +
        "near \u00b11 on the points, so its slope (1 \u2212 tanh\u00b2) is about 0 and little gradient gets through." : "";
      return neuronName(l, j) + " (" + D.activations[l - 1] + "); mean slope over the points " +
        fmt(r.state[l][j].slope) + why + "\n(click for its weights and gradient over the epochs)";
    }
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
      const p = paramsAt(ui.cur), g = gradsAt(ui.cur);
      let gmax = 0;
      for (const e of edges) gmax = Math.max(gmax, Math.abs(g[e.q]));
      // the biggest updates: the top 8% of edges by |grad| (at least 3)
      const cut = ui.showGrads && gmax > 0 ? edges.map((e) => Math.abs(g[e.q])).sort((a, b) => b - a)[Math.min(edges.length - 1, Math.max(2, Math.round(edges.length * 0.08) - 1))] : Infinity;
      const focus = ui.selected && ui.selected.type === "neuron" ? ui.selected : null;
      for (const e of edges) {
        let width, colour, opacity;
        if (ui.showGrads) {
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
      if (ui.showGrads) {
        teach.textContent = gmax > 0
          ? "Edge width is |gradient| of each weight in the update that ended this epoch, scaled to " +
            "this epoch's largest; the purple edges are the biggest updates. Gradient descent moves each " +
            "weight against its gradient."
          : "Epoch " + D.frames[ui.cur].epoch + " is before the first update, so there is no gradient yet: " +
            "step forward to see which weights the first update changes most.";
      } else {
        teach.textContent = "Each square is one neuron's output over the input plane (as on the left). " +
          "Edge width is |weight|, colour its sign (blue +, orange \u2212). Click a neuron for its weights " +
          "and gradient over the epochs.";
      }
    }
    const edgeMode = () => { ui.showGrads = $("bpx-show-grads").checked; drawEdges(); };
    $("bpx-show-weights").addEventListener("change", edgeMode);
    $("bpx-show-grads").addEventListener("change", edgeMode);

    return { build: buildNetwork, draw: drawNetwork, edges: () => edges };
  };
})();
