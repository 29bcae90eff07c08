// The details panel: how to read the page (with this epoch's dead and saturated neurons), a
// clicked neuron's weights and gradient over the epochs, or a clicked point's verdict, share of
// the gradient, forward values and the way into its backward pass.
(function () {
  "use strict";
  const bpx = (window.bpExplore = window.bpExplore || {});
  bpx.details = function (app) {
    const { F, P, N, sizes, L, nin, PARAMS, GRADS, paramsAt, gradsAt, offset, forward,
       predictedClass, confidence, pointLoss, atFrame, shares, series } = app.M;
    const { short2, svgEl, heat, layerName, neuronName } = app.draw;
    const { $, el, fmt } = window.bpCommon;
    const D = app.D, ui = app.state;
    const select = (s) => app.select(s);
    const openStepThrough = (i) => app.openStepThrough(i);
    const drawBoundary = () => app.plane.draw();
    const miniChart = (lines, opts) => app.curves.miniChart(lines, opts);

    // ---- details: a neuron or a point -----------------------------------------------------------
    function showDetails() {
      const box = $("bpx-details");
      box.replaceChildren();
      if (!ui.selected) return showHelp(box);
      const back = box.appendChild(el("button", "bpx-link", "\u2190 how to read this page"));
      back.onclick = () => select(null);
      if (ui.selected.type === "neuron") showNeuron(box, ui.selected.l, ui.selected.j);
      else showPoint(box, ui.selected.i);
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
      const st = atFrame(ui.cur).state;
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
        box.appendChild(el("p", "", l === 0 && j !== ui.fx && j !== ui.fy
          ? "This feature is not on the plot's axes, so across the plane it is held at its mean, " + fmt(D.mean[j]) + "."
          : "The raw feature itself. It has no weights: every first-layer neuron reads it, each with its own weight."));
        return;
      }
      const r = atFrame(ui.cur), s = r.state[l][j], act = D.activations[l - 1], m = sizes[l - 1], o = offset[l][j];
      box.appendChild(el("h2", "", neuronName(l, j).replace(/^./, (c) => c.toUpperCase())));
      box.appendChild(el("p", "bpx-muted", act + "(w \u00b7 x + b) with " + m + " incoming weights; epoch " + D.frames[ui.cur].epoch + "."));
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
      const p = paramsAt(ui.cur), g = gradsAt(ui.cur);
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
      box.appendChild(el("p", "", "At this epoch: \u2202loss/\u2202b = " + fmt(g[o + m]) + ", |\u2207w| = " + fmt(norm[ui.cur]) + "."));
    }
    function showPoint(box, i) {
      const r = atFrame(ui.cur), acts = r.acts[i], out = acts[L], c = D.y[i], pc = predictedClass(out);
      const name = (k) => D.classes[k] !== undefined ? String(D.classes[k]) : String(k);
      box.appendChild(el("h2", "", "Point #" + i + " (class " + name(c) + ")"));
      if (app.images) box.appendChild(app.images.pointImage(i, 112));
      const values = D.features.map((f, q) => f + " = " + fmt(D.X[i][q])).join(", ");
      if (nin <= 12) box.appendChild(el("p", "bpx-muted", values + "; epoch " + D.frames[ui.cur].epoch + "."));
      else {  // many features: folded, so the verdict and the gradient stay in view
        const more = box.appendChild(el("details", "bpx-muted"));
        more.appendChild(el("summary", "", "its " + nin + " feature values; epoch " + D.frames[ui.cur].epoch));
        more.appendChild(el("p", "", values + "."));
      }
      const verdict = box.appendChild(el("p", pc === c ? "bpx-good" : "bpx-bad"));
      verdict.textContent = (pc === c ? "\u2714 Classified right" : "\u2718 Classified wrong") + ": the network says " + name(pc) +
        " (output " + (sizes[L] === 1 ? fmt(out[0]) : "[" + Array.from(out, fmt).join(", ") + "]") + "); its loss is " + fmt(pointLoss(out, c)) + ".";
      const sh = shares(ui.cur);
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
      cb.checked = ui.sizeByShare;
      cb.onchange = () => { ui.sizeByShare = cb.checked; drawBoundary(); };
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

    return { show: showDetails };
  };
})();
