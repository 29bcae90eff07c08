// explore(history)'s page: scrub through a training run, epoch by epoch, and see the decision
// boundary, every neuron's activation and the weights and gradients on every edge. Everything
// is computed here, in float64, from each snapshot's parameters (the page data's contract is
// the docstring of backprop/viz/explorer.py). window.bpx is a small hook for tests.
//
// This file starts the page and holds what ties the panels together: the epoch (time), the
// selection, the step-through overlay and the keys. Each panel is a file of its own, inlined
// before this one (no build step): explore_model.js (the numbers, no drawing), explore_draw.js
// (colours and small drawing helpers), explore_plane.js (data and decision boundary),
// explore_network.js, explore_curves.js and explore_details.js. Each is a function of `app`,
// the object below: the page data D, the model M, the shared state and the other panels.
(function () {
  "use strict";
  const started = performance.now();
  const { $ } = window.bpCommon;
  const D = JSON.parse($("bpx-data").textContent);
  const bpx = window.bpExplore;
  // what the panels share: which frame is shown, what is selected, the plane's two features,
  // whether dots are sized by their gradient and whether edges show gradients
  const ui = { cur: 0, selected: null, fx: 0, fy: 0, sizeByShare: false, showGrads: false };
  const app = { D: D, state: ui };
  app.M = bpx.model(app);
  app.draw = bpx.draw(app);
  const { F, P, N, K, atFrame, outputOf, shares, pointGradient, paramsAt } = app.M;
  const { classColour } = app.draw;
  const { el, fmt } = window.bpCommon;

  // ---- the step-through overlay -----------------------------------------------------------------
  let stepHandle = null, replayed = null;
  // the exact replay of points' loss graphs (replay.js), decoded on first use
  const replay = () => replayed || (replayed = window.bpReplay.forPage(D));
  const overlay = $("bpx-overlay");
  function openStepThrough(i) {
    closeStepThrough();
    stop();
    const title = "Point #" + i + " at epoch " + D.frames[ui.cur].epoch + ": the backward pass of its loss";
    $("bpx-overlay-title").textContent = title;
    overlay.hidden = false;
    document.body.classList.add("bpx-stepping");
    stepHandle = window.bpStepThrough.mount(replay().explanation(ui.cur, i));
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

  // ---- time -------------------------------------------------------------------------------------
  let timer = null;
  const slider = $("bpx-slider"), playBtn = $("bpx-play");
  slider.max = F - 1;
  function go(k) {
    k = Math.max(0, Math.min(F - 1, Math.round(k)));
    if (k === ui.cur && document.body.dataset.ready === "1") return;
    ui.cur = k;
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
    if (app.images) app.images.draw();
  }
  function setPlaying(on) {
    if (on && ui.cur === F - 1) go(0);
    clearInterval(timer);
    timer = null;
    if (on) timer = setInterval(() => { if (ui.cur >= F - 1) setPlaying(false); else go(ui.cur + 1); }, +$("bpx-speed").value);
    playBtn.textContent = on ? "\u275A\u275A Pause" : "\u25B6 Play";
    playBtn.setAttribute("aria-label", on ? "pause" : "play");
    playBtn.setAttribute("aria-pressed", on ? "true" : "false");
  }
  const stop = () => setPlaying(false);
  playBtn.onclick = () => setPlaying(timer === null);
  $("bpx-speed").onchange = () => { if (timer !== null) setPlaying(true); };
  $("bpx-first").onclick = () => { stop(); go(0); };
  $("bpx-prev").onclick = () => { stop(); go(ui.cur - 1); };
  $("bpx-next").onclick = () => { stop(); go(ui.cur + 1); };
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
      ArrowRight: () => { stop(); go(ui.cur + 1); }, ArrowLeft: () => { stop(); go(ui.cur - 1); },
      Home: () => { stop(); go(0); }, End: () => { stop(); go(F - 1); },
      " ": () => setPlaying(timer === null),
      Escape: () => { if (ui.selected) select(null); },
    };
    if (keys[e.key]) {
      e.preventDefault();
      if (t.tagName === "BUTTON") t.blur();
      keys[e.key]();
    }
  });

  function select(s) {
    ui.selected = s;
    drawNetwork();
    drawBoundary();
    showDetails();
    const side = $("bpx-side").getBoundingClientRect();
    if (s && side.top > window.innerHeight - 80) {  // a narrow window puts the details below
      $("bpx-side").scrollIntoView({ block: "start", behavior: "smooth" });
    }
  }
  // ---- the page's text and legends --------------------------------------------------------------
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

  // ---- start: the panels, then the first frame --------------------------------------------------
  app.plane = bpx.plane(app);
  app.network = bpx.network(app);
  app.curves = bpx.curves(app);
  app.details = bpx.details(app);
  app.images = D.imageShape ? bpx.images(app) : null;  // a run whose inputs are images
  Object.assign(app, { select: select, go: go, stop: stop, openStepThrough: openStepThrough });
  const drawBoundary = app.plane.draw, drawNetwork = app.network.draw;
  const showDetails = app.details.show, drawCursors = app.curves.cursors;
  app.plane.size();
  app.plane.labels();
  legends();
  app.network.build();
  app.curves.build();
  go(0);
  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      app.network.build(); app.curves.build(); drawNetwork(); drawCursors();
    }, 100);
  });
  window.bpx = {
    frames: F,
    frame: (k) => { if (k !== undefined) { stop(); go(k); } return ui.cur; },
    epoch: () => D.frames[ui.cur].epoch,
    predictions: (k) => { const r = atFrame(k === undefined ? ui.cur : k); return r.acts.map(outputOf); },
    forward: (k, i) => atFrame(k).acts[i].map((a) => Array.from(a)),
    shares: (k) => shares(k === undefined ? ui.cur : k).part.slice(),
    pointGradient: (k, i) => Array.from(pointGradient(paramsAt(k), atFrame(k).acts[i], D.y[i])),
    states: (k) => atFrame(k === undefined ? ui.cur : k).state.slice(1).map((row) => row.map((s) => s.state)),
    edgeWidths: () => app.network.edges().map((e) => +e.el.getAttribute("stroke-width")),
    showGradients: (on) => { $(on ? "bpx-show-grads" : "bpx-show-weights").click(); },
    selectPoint: (i) => select({ type: "point", i: i }),
    selectNeuron: (l, j) => select({ type: "neuron", l: l, j: j }),
    openStepThrough: openStepThrough,
    closeStepThrough: closeStepThrough,
    stepThroughOpen: () => !overlay.hidden,
    playing: () => timer !== null,
    plane: () => [ui.fx, ui.fy],
    pad: () => app.images.pad(),
    setPad: (x) => app.images.setPad(x),
    weightImage: (j) => app.images.weightImage(j),
  };
  document.body.dataset.ready = "1";
  window.bpx.loadMs = performance.now();  // since the navigation started
  window.bpx.scriptMs = window.bpx.loadMs - started;  // of which this script
})();
