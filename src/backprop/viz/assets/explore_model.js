// The explorer's model of a recorded run, with no drawing: the snapshots decoded, the forward
// pass in Neuron's order (one rounding per operation, as Python's floats), what an output means
// (loss, class, confidence), one point's gradient, and per-frame results (every point's
// activations, dead and saturated neurons, each point's share of the gradient), cached.
// The activation rules are replay.js's op-table rows (bpReplay.activations).
(function () {
  "use strict";
  const bpx = (window.bpExplore = window.bpExplore || {});
  bpx.model = function (app) {
    const D = app.D;

    const F = D.frames.length, P = D.P, N = D.X.length;
    const sizes = D.sizes, L = sizes.length - 1, nin = sizes[0];
    const K = D.binary ? 2 : sizes[L];  // classes
    const ACT = window.bpReplay.activations;  // the op table's rows: f, backward, slope
    const series = (q, arr) => Array.from({ length: F }, (_, k) => arr[k * P + q]);

    // ---- the snapshots --------------------------------------------------------------------------
    const PARAMS = window.bpReplay.decodeF64(D.params || "");
    const GRADS = window.bpReplay.decodeF64(D.grads || "");
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
    // The forward pass in Neuron's order: b + w0*x0 + w1*x1 + ..., one rounding per operation,
    // as Python's floats do it. Returns the activations of every layer, the inputs first.
    function forward(p, x) {
      const acts = [Float64Array.from(x)];
      let a = acts[0];
      for (let l = 1; l <= L; l++) {
        const n = sizes[l], m = sizes[l - 1], f = ACT[D.activations[l - 1]].f;
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

    // ---- what an output means -------------------------------------------------------------------
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
        if (D.loss === "bce") return Math.abs(2 * ACT.sigmoid.f(out[0]) - 1);
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
      if (D.loss === "bce") return [ACT.sigmoid.f(s) - c];
      return softmax(out).map((p, j) => p - (j === c ? 1 : 0));
    }
    // one point's gradient of its own loss with respect to every parameter (plain backprop)
    function pointGradient(p, acts, c) {
      const g = new Float64Array(P);
      let delta = lossSlope(acts[L], c);
      for (let l = L; l >= 1; l--) {
        const m = sizes[l - 1], through = ACT[D.activations[l - 1]].backward, prev = acts[l - 1];
        const back = new Float64Array(m);
        for (let j = 0; j < sizes[l]; j++) {
          const d = through(delta[j], acts[l][j]), o = offset[l][j];
          for (let i = 0; i < m; i++) { g[o + i] = d * prev[i]; back[i] += d * p[o + i]; }
          g[o + m] = d;
        }
        delta = back;
      }
      return g;
    }

    // ---- per-frame results, computed when first needed ------------------------------------------
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
            slope += ACT[act].slope(v);
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

    return {
      F: F, P: P, N: N, sizes: sizes, L: L, nin: nin, K: K, PARAMS: PARAMS, GRADS: GRADS,
      paramsAt: paramsAt, gradsAt: gradsAt, offset: offset, ACT: ACT, forward: forward,
      outputOf: outputOf, softmax: softmax, predictedClass: predictedClass,
      confidence: confidence, pointLoss: pointLoss, pointGradient: pointGradient,
      atFrame: atFrame, shares: shares, series: series,
    };
  };
})();
