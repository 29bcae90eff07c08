// The images panel, for a run whose inputs are images (D.imageShape = [rows, columns]): every
// first-layer neuron's incoming weights drawn as an image at this epoch, the confusion matrix
// and the misclassified training images at this epoch, and a drawing pad whose forward pass
// runs here, lighting up every neuron and the output probabilities. A clicked point's image is
// drawn by the details panel through pointImage().
(function () {
  "use strict";
  const bpx = (window.bpExplore = window.bpExplore || {});
  bpx.images = function (app) {
    const { N, sizes, L, K, paramsAt, offset, forward, softmax, predictedClass, atFrame } = app.M;
    const { ORANGE, BLUE, mix, classColour } = app.draw;
    const { el, fmt } = window.bpCommon;
    const D = app.D, ui = app.state;
    const [ROWS, COLS] = D.imageShape;
    const nin = sizes[0];
    // the ink scale: the smallest and largest value of any pixel in the training images
    let inkLo = Infinity, inkHi = -Infinity;
    for (const x of D.X) for (const v of x) { inkLo = Math.min(inkLo, v); inkHi = Math.max(inkHi, v); }
    if (!(inkHi > inkLo)) inkHi = inkLo + 1;
    const className = (c) => (D.classes[c] !== undefined ? String(D.classes[c]) : String(c));

    // an image: values scaled dark (largest) to white (smallest), or signed (weights)
    function paint(canvas, values, scale, signed) {
      canvas.width = COLS;
      canvas.height = ROWS;
      const ctx = canvas.getContext("2d"), img = ctx.createImageData(COLS, ROWS);
      for (let i = 0; i < ROWS * COLS; i++) {
        let rgb;
        if (signed) {
          const t = Math.max(-1, Math.min(1, values[i] / scale));
          rgb = t >= 0 ? mix(BLUE, t) : mix(ORANGE, -t);
        } else {
          const t = Math.max(0, Math.min(1, (values[i] - inkLo) / (inkHi - inkLo)));
          rgb = [255 - 235 * t, 255 - 235 * t, 255 - 225 * t];
        }
        img.data[4 * i] = rgb[0]; img.data[4 * i + 1] = rgb[1]; img.data[4 * i + 2] = rgb[2];
        img.data[4 * i + 3] = 255;
      }
      ctx.putImageData(img, 0, 0);
      return canvas;
    }
    const picture = (cls, px) => {
      const c = el("canvas", "bpx-image " + (cls || ""));
      c.style.width = px + "px";
      c.style.height = Math.round((px * ROWS) / COLS) + "px";
      return c;
    };
    const pointImage = (i, px) => paint(picture("", px || 96), D.X[i], 1, false);

    // ---- the card ---------------------------------------------------------------------------
    const style = document.head.appendChild(el("style"));  // only image runs need these
    style.textContent = [
      ".bpx-gallery { display: flex; flex-wrap: wrap; gap: 6px; align-items: flex-start; }",
      ".bpx-image { image-rendering: pixelated; border: 1px solid #cbd2d9; display: block; }",
      ".bpx-weights-image { cursor: pointer; }",
      ".bpx-figure { margin: 0; cursor: pointer; text-align: center; font-size: 10px; color: #52606d; }",
      ".bpx-image-split { display: grid; grid-template-columns: minmax(260px, 380px) 1fr; gap: 18px; }",
      ".bpx-confusion { border-collapse: collapse; font-size: 11px; font-variant-numeric: tabular-nums; }",
      ".bpx-confusion th { font-weight: 600; padding: 2px 4px; color: #3e4c59; }",
      ".bpx-confusion td { width: 22px; height: 20px; text-align: center; border: 1px solid #eef1f4; }",
      ".bpx-pad-row { display: flex; gap: 18px; align-items: flex-start; }",
      ".bpx-pad { border: 1px solid #9aa5b1; cursor: crosshair; touch-action: none; }",
      ".bpx-probs { min-width: 260px; font-size: 12px; }",
      ".bpx-prob { display: grid; grid-template-columns: 28px 160px 50px; gap: 6px; align-items: center; }",
      ".bpx-prob-bar { height: 10px; border-radius: 2px; }",
      ".bpx-prob-value { text-align: right; font-variant-numeric: tabular-nums; }",
    ].join("\n");
    const card = el("section", "bpx-card");
    card.id = "bpx-images-card";
    card.style.gridColumn = "1 / 3";
    card.setAttribute("aria-label", "the inputs as images");
    card.appendChild(el("h2", "", "The inputs are images (" + ROWS + " \u00d7 " + COLS + ")"));
    const h3 = (t) => card.appendChild(el("h3", "", t));
    const note = (t) => card.appendChild(el("p", "bpx-note", t));
    h3("What each first-layer neuron looks for");
    note("Each image is one neuron's " + nin + " incoming weights, laid out as the pixels they " +
      "multiply: blue where ink raises the neuron's sum, orange where it lowers it, scaled to that " +
      "neuron's largest |weight| over the run. Scrub the epochs to watch them form; click one for " +
      "its details.");
    const weightsRow = card.appendChild(el("div", "bpx-gallery"));
    weightsRow.id = "bpx-weight-images";
    const weightMaps = [];
    for (let j = 0; j < sizes[1]; j++) {
      const c = weightsRow.appendChild(picture("bpx-weights-image", 56));
      c.dataset.j = j;
      c.title = "neuron " + (j + 1) + " of hidden layer 1";
      c.onclick = () => app.select({ type: "neuron", l: 1, j: j });
      let top = 0;  // its largest |weight| over every frame
      for (let k = 0; k < D.frames.length; k++) {
        const p = paramsAt(k), o = offset[1][j];
        for (let i = 0; i < nin; i++) top = Math.max(top, Math.abs(p[o + i]));
      }
      weightMaps.push({ canvas: c, scale: top || 1 });
    }
    const split = card.appendChild(el("div", "bpx-image-split"));
    const left = split.appendChild(el("div"));
    left.appendChild(el("h3", "", "Confusion matrix at this epoch"));
    left.appendChild(el("p", "bpx-note", "Rows: the true class; columns: the class the network " +
      "says. The diagonal is right; every other cell counts training images taken for another class."));
    const confusion = left.appendChild(el("table", "bpx-confusion"));
    confusion.id = "bpx-confusion";
    const right = split.appendChild(el("div"));
    right.appendChild(el("h3", "", "Misclassified training images at this epoch"));
    const galleryNote = right.appendChild(el("p", "bpx-note", ""));
    const gallery = right.appendChild(el("div", "bpx-gallery"));
    gallery.id = "bpx-misclassified";

    // ---- the drawing pad --------------------------------------------------------------------
    h3("Draw an input");
    note("Draw with the mouse (hold Shift to erase). The page runs the network's forward pass on " +
      "your drawing at this epoch's weights, in your browser: every neuron's output and the " +
      "class probabilities below.");
    const padRow = card.appendChild(el("div", "bpx-pad-row"));
    const pad = padRow.appendChild(el("canvas", "bpx-pad"));
    pad.id = "bpx-pad";
    const CELL = Math.max(8, Math.floor(200 / Math.max(ROWS, COLS)));
    pad.width = COLS * CELL;
    pad.height = ROWS * CELL;
    const padSide = padRow.appendChild(el("div"));
    const clear = padSide.appendChild(el("button", "", "Clear"));
    clear.id = "bpx-pad-clear";
    const useBtn = padSide.appendChild(el("button", "", "Copy the selected image"));
    useBtn.id = "bpx-pad-copy";
    const probs = padSide.appendChild(el("div", "bpx-probs"));
    probs.id = "bpx-pad-probs";
    const layers = card.appendChild(el("div"));
    layers.id = "bpx-pad-layers";
    const ink = new Float64Array(nin).fill(inkLo);
    function drawPad() {
      const ctx = pad.getContext("2d");
      for (let r = 0; r < ROWS; r++) {
        for (let c = 0; c < COLS; c++) {
          const t = (ink[r * COLS + c] - inkLo) / (inkHi - inkLo), g = Math.round(255 - 235 * t);
          ctx.fillStyle = "rgb(" + g + "," + g + "," + Math.round(255 - 225 * t) + ")";
          ctx.fillRect(c * CELL, r * CELL, CELL, CELL);
        }
      }
      ctx.strokeStyle = "rgba(0,0,0,.08)";
      for (let r = 1; r < ROWS; r++) { ctx.beginPath(); ctx.moveTo(0, r * CELL); ctx.lineTo(pad.width, r * CELL); ctx.stroke(); }
      for (let c = 1; c < COLS; c++) { ctx.beginPath(); ctx.moveTo(c * CELL, 0); ctx.lineTo(c * CELL, pad.height); ctx.stroke(); }
    }
    // a pen: the cell under the pointer goes to full ink, its four neighbours get a quarter; a
    // cell is inked once as the pointer enters it, so holding still does not spread the ink
    let last = -1;
    function brush(e) {
      const b = pad.getBoundingClientRect();
      const c = Math.floor(((e.clientX - b.left) / b.width) * COLS), r = Math.floor(((e.clientY - b.top) / b.height) * ROWS);
      if (r < 0 || r >= ROWS || c < 0 || c >= COLS || r * COLS + c === last) return;
      last = r * COLS + c;
      const erase = e.shiftKey;
      for (const [dr, dc, w] of [[0, 0, 1], [-1, 0, 0.25], [1, 0, 0.25], [0, -1, 0.25], [0, 1, 0.25]]) {
        const rr = r + dr, cc = c + dc;
        if (rr < 0 || rr >= ROWS || cc < 0 || cc >= COLS) continue;
        const q = rr * COLS + cc;
        if (erase) { if (w === 1) ink[q] = inkLo; }
        else ink[q] = Math.min(inkHi, ink[q] + w * (inkHi - inkLo));
      }
      drawPad();
      runPad();
    }
    let drawing = false;
    pad.addEventListener("pointerdown", (e) => { drawing = true; last = -1; pad.setPointerCapture(e.pointerId); brush(e); });
    pad.addEventListener("pointermove", (e) => { if (drawing) brush(e); });
    pad.addEventListener("pointerup", () => { drawing = false; });
    clear.onclick = () => { ink.fill(inkLo); drawPad(); runPad(); };
    useBtn.onclick = () => {
      const i = ui.selected && ui.selected.type === "point" ? ui.selected.i : 0;
      ink.set(D.X[i]);
      drawPad();
      runPad();
    };
    let padActs = null;
    function runPad() {  // the forward pass of the drawing, at this frame's weights
      padActs = forward(paramsAt(ui.cur), ink);
      const out = padActs[L];
      // probabilities where the loss has them (bce's sigmoid, cross-entropy's softmax)
      const sig = D.loss === "bce" ? window.bpReplay.activations.sigmoid.f(out[0]) : 0;
      const p = D.loss === "bce" ? [1 - sig, sig] : D.loss === "cross-entropy" ? softmax(out) : null;
      probs.replaceChildren();
      const pc = predictedClass(out);
      probs.appendChild(el("p", "", "The network says " + className(pc) + "."));
      if (p) {
        for (let c = 0; c < K; c++) {
          const row = probs.appendChild(el("div", "bpx-prob"));
          row.appendChild(el("span", "bpx-prob-name", className(c)));
          const bar = row.appendChild(el("span", "bpx-prob-bar"));
          bar.style.width = (100 * p[c]).toFixed(1) + "%";
          bar.style.background = classColour(c);
          row.appendChild(el("span", "bpx-prob-value", (100 * p[c]).toFixed(1) + "%"));
        }
      } else {
        probs.appendChild(el("p", "bpx-note", D.binary ? "Its output is " + fmt(out[0]) + ": above 0 means " +
          className(1) + ", else " + className(0) + " (this loss gives no probabilities)." :
          "Its outputs: " + Array.from(out, fmt).join(", ") + " (this loss gives no probabilities)."));
      }
      layers.replaceChildren();
      for (let l = 1; l <= L; l++) {
        layers.appendChild(el("div", "bpx-row-label", (l === L ? "output" : "hidden " + l) + " (" + D.activations[l - 1] + ")"));
        const row = layers.appendChild(el("div", "bpx-values"));
        let top = 0;
        for (const v of padActs[l]) top = Math.max(top, Math.abs(v));
        padActs[l].forEach((v, j) => {
          const cell = row.appendChild(el("span", "bpx-cell", Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2)));
          const t = Math.max(-1, Math.min(1, v / (top || 1))), rgb = t >= 0 ? mix(BLUE, t) : mix(ORANGE, -t);
          cell.style.background = "rgb(" + rgb.map(Math.round).join(",") + ")";
          cell.title = (l === L ? "output " + className(j) : "neuron " + (j + 1)) + ": " + v;
        });
      }
    }

    // ---- each frame -------------------------------------------------------------------------
    function draw() {
      const p = paramsAt(ui.cur);
      weightMaps.forEach((m, j) => paint(m.canvas, p.subarray(offset[1][j], offset[1][j] + nin), m.scale, true));
      const acts = atFrame(ui.cur).acts, counts = Array.from({ length: K }, () => new Array(K).fill(0));
      const wrong = [];
      for (let i = 0; i < N; i++) {
        const pc = predictedClass(acts[i][L]);
        counts[D.y[i]][pc] += 1;
        if (pc !== D.y[i]) wrong.push([i, pc]);
      }
      confusion.replaceChildren();
      const head = confusion.appendChild(el("tr"));
      head.appendChild(el("th", "", "true \u2193 says \u2192"));
      for (let c = 0; c < K; c++) head.appendChild(el("th", "", className(c)));
      let most = 1;
      for (const row of counts) for (const v of row) most = Math.max(most, v);
      counts.forEach((row, t) => {
        const tr = confusion.appendChild(el("tr"));
        tr.appendChild(el("th", "", className(t)));
        row.forEach((v, c) => {
          const td = tr.appendChild(el("td", t === c ? "diag" : v ? "off" : "", v ? String(v) : ""));
          const rgb = mix(t === c ? [24, 128, 56] : [217, 48, 37], Math.sqrt(v / most));
          td.style.background = "rgb(" + rgb.map(Math.round).join(",") + ")";
          td.style.color = v / most > 0.5 ? "white" : "";
        });
      });
      gallery.replaceChildren();
      galleryNote.textContent = wrong.length ? wrong.length + " of " + N + " wrong; each shows what " +
        "the network says. Click one to follow it." : "None: every training image is classified right.";
      for (const [i, pc] of wrong.slice(0, 40)) {
        const fig = gallery.appendChild(el("figure", "bpx-figure"));
        fig.appendChild(pointImage(i, 44));
        fig.appendChild(el("figcaption", "", className(D.y[i]) + "\u2192" + className(pc)));
        fig.title = "point #" + i + ": class " + className(D.y[i]) + ", the network says " + className(pc);
        fig.onclick = () => app.select({ type: "point", i: i });
      }
      if (wrong.length > 40) gallery.appendChild(el("span", "bpx-note", "\u2026 and " + (wrong.length - 40) + " more"));
      runPad();
    }
    $grid().appendChild(card);
    drawPad();
    function $grid() { return document.querySelector(".bpx-grid"); }

    return {
      draw: draw, pointImage: pointImage,
      pad: () => ({ x: Array.from(ink), acts: padActs.map((a) => Array.from(a)) }),
      setPad: (x) => { ink.set(x); drawPad(); runPad(); },
      weightImage: (j) => weightMaps[j].canvas.toDataURL(),
    };
  };
})();
