// The explorer's small drawing helpers, shared by its panels: the class colours, the
// orange-white-blue scale of an activation, axis ticks, short numbers, SVG elements and the
// names of layers and neurons (which read the explorer's model, app.M, when called; the
// recorder's page uses the rest without one).
(function () {
  "use strict";
  const bpx = (window.bpExplore = window.bpExplore || {});
  bpx.draw = function (app) {
    const D = app.D;

    const SVGNS = "http://www.w3.org/2000/svg";
    const ORANGE = [232, 113, 10], BLUE = [26, 115, 232], WHITE = [252, 252, 252];
    const CLASS_COLOURS = ["#e8710a", "#1a73e8", "#188038", "#a142f4", "#d93025", "#12a4b8",
      "#c69000", "#5f6368", "#e52592", "#7cb342"];
    const classColour = (c) => CLASS_COLOURS[c % CLASS_COLOURS.length];

    function mix(c, t) {  // white to colour c by t in [0, 1]
      return [WHITE[0] + (c[0] - WHITE[0]) * t, WHITE[1] + (c[1] - WHITE[1]) * t,
        WHITE[2] + (c[2] - WHITE[2]) * t];
    }
    const hex = (h) => [parseInt(h.slice(1, 3), 16), parseInt(h.slice(3, 5), 16), parseInt(h.slice(5, 7), 16)];

    function niceTicks(lo, hi, n) {
      const span = hi - lo, raw = span / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
      const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => span / s <= n) || 10 * mag;
      const out = [];
      for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9 * span; t += step) out.push(+t.toFixed(10));
      return out;
    }
    const short = (x) => (Math.abs(x) >= 1000 || (Math.abs(x) < 0.01 && x !== 0) ? x.toExponential(1) : String(+x.toFixed(2)));
    const layerName = (l) => (l === 0 ? "input" : l === app.M.L ? "output" : "hidden " + l);
    function neuronName(l, j) {
      const sizes = app.M.sizes, L = app.M.L;
      return l === 0 ? D.features[j] : l === L ? (sizes[L] === 1 ? "the output" :
        "the output for class " + (D.classes[j] !== undefined ? D.classes[j] : j)) :
        "neuron " + (j + 1) + " of hidden layer " + l;
    }
    function svgEl(tag, attrs, parent) {
      const e = document.createElementNS(SVGNS, tag);
      for (const k in attrs) e.setAttribute(k, attrs[k]);
      if (parent) parent.appendChild(e);
      return e;
    }
    function heat(v, act, scale) {  // an activation as a colour: orange < 0 < blue
      const t = act === "sigmoid" ? 2 * v - 1 : v / scale;
      const s = Math.max(-1, Math.min(1, t));
      return s >= 0 ? mix(BLUE, s) : mix(ORANGE, -s);
    }
    const short2 = (x) => (Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(2));

    return {
      ORANGE: ORANGE, BLUE: BLUE, WHITE: WHITE, CLASS_COLOURS: CLASS_COLOURS,
      classColour: classColour, mix: mix, hex: hex, niceTicks: niceTicks, short: short,
      short2: short2, svgEl: svgEl, heat: heat, layerName: layerName, neuronName: neuronName,
      SVGNS: SVGNS,
    };
  };
})();
