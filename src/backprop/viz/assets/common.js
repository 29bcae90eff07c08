// The small helpers every page's scripts share, defined once: window.bpCommon holds
// $ (an element by id), el (a new element), ref (a node name as a formula writes it),
// fmt (a number as explain() writes it, Python's fmt() to the character) and pyRepr (Python's
// repr() of a float). page.py's scripts() inlines this file before the scripts that use it.
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // a node name as a formula writes it: bracketed unless a plain identifier (stepthrough's _ref)
  const ref = (name) => (/^[A-Za-z_][A-Za-z0-9_#]*$/.test(name) ? name : "(" + name + ")");

  // Python's repr() of a float: the shortest digits that round-trip, as JavaScript's String(),
  // written the way Python writes them (1.0, 1e-05, 1e+16, nan, inf)
  function pyRepr(x) {
    x = Number(x);
    if (x !== x) return "nan";
    if (!isFinite(x)) return x > 0 ? "inf" : "-inf";
    if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
    const [mant, ex] = Math.abs(x).toExponential().split("e");
    const e = Number(ex), digits = mant.replace(".", "");
    let text;
    if (e < -4 || e >= 16) {
      text = digits[0] + (digits.length > 1 ? "." + digits.slice(1) : "") + "e" +
        (e < 0 ? "-" : "+") + String(Math.abs(e)).padStart(2, "0");
    } else if (e < 0) {
      text = "0." + "0".repeat(-e - 1) + digits;
    } else if (digits.length <= e + 1) {
      text = digits + "0".repeat(e + 1 - digits.length) + ".0";
    } else {
      text = digits.slice(0, e + 1) + "." + digits.slice(e + 1);
    }
    return (x < 0 ? "-" : "") + text;
  }

  // ---- fmt: numbers as explain() writes them (stepthrough's fmt), exactly ------------------
  const scratch = new DataView(new ArrayBuffer(8));

  function parts(x) {  // |x| = M * 2**E exactly
    scratch.setFloat64(0, Math.abs(x), true);
    const bits = scratch.getBigUint64(0, true);
    const exponent = Number(bits >> 52n);
    const M = bits & 0xfffffffffffffn;
    return exponent === 0 ? [M, -1074] : [M | 0x10000000000000n, exponent - 1075];
  }

  // |x| * 10**p rounded to an integer, half to even, exactly (as Python's formatting rounds)
  function scaled(x, p) {
    const [M, E] = parts(x);
    let num = M, den = 1n;
    if (E >= 0) num <<= BigInt(E); else den <<= BigInt(-E);
    if (p >= 0) num *= 10n ** BigInt(p); else den *= 10n ** BigInt(-p);
    const q = num / den, twice = 2n * (num % den);
    return twice > den || (twice === den && (q & 1n) === 1n) ? q + 1n : q;
  }

  const minus = (x) => (x < 0 || Object.is(x, -0) ? "-" : "");
  const trimmed = (text) => text.replace(/\.?0+$/, "");  // '1.2300' -> '1.23', '1.000' -> '1'

  function fixed4(x) {  // Python's f"{x:.4f}", finite x
    const digits = scaled(x, 4).toString().padStart(5, "0");
    return minus(x) + digits.slice(0, -4) + "." + digits.slice(-4);
  }

  function general4(x) {  // Python's f"{x:.4g}", finite nonzero x
    let e = Math.floor(Math.log10(Math.abs(x))), q;
    for (;;) {  // the decimal exponent, exactly: 1000 <= |x| * 10**(3 - e) rounded <= 10000
      q = scaled(x, 3 - e);
      if (q < 1000n) e -= 1;
      else if (q > 10000n) e += 1;
      else break;
    }
    if (q === 10000n) { q = 1000n; e += 1; }
    const d = q.toString();
    let text;
    if (e >= -4 && e < 4) {
      const decimals = 3 - e;
      if (decimals === 0) text = d;
      else if (decimals <= 3) {
        text = trimmed(d.slice(0, 4 - decimals) + "." + d.slice(4 - decimals));
      }
      else text = trimmed("0." + "0".repeat(decimals - 4) + d);
    } else {
      text = trimmed(d[0] + "." + d.slice(1)) + "e" + (e < 0 ? "-" : "+") +
        String(Math.abs(e)).padStart(2, "0");
    }
    return minus(x) + text;
  }

  function fmt(x) {
    x = Number(x);
    if (x !== x) return "nan";
    if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
    if (x === 0) return "0.0";
    const ax = Math.abs(x);
    let text = ax >= 1.0 && ax < 1e7 ? fixed4(x).replace(/0+$/, "") : general4(x);
    if (!text.includes("e") && !text.includes(".")) text += ".0";
    return text.endsWith(".") ? text + "0" : text;
  }

  window.bpCommon = { $: $, el: el, ref: ref, fmt: fmt, pyRepr: pyRepr };
})();
