// Render TeX with KaTeX and MathJax 3 as strictly as each allows; one process for every formula.
// stdin: JSON [{"id": ..., "tex": ..., "display": true}]; stdout: JSON [{"id", "katex", "mathjax"}]
// with each renderer's error message, or null when it rendered the formula.
"use strict";
const katex = require("katex");
const { mathjax } = require("mathjax-full/js/mathjax.js");
const { TeX } = require("mathjax-full/js/input/tex.js");
const { liteAdaptor } = require("mathjax-full/js/adaptors/liteAdaptor.js");
const { RegisterHTMLHandler } = require("mathjax-full/js/handlers/html.js");
const { STATE } = require("mathjax-full/js/core/MathItem.js");
require("mathjax-full/js/input/tex/base/BaseConfiguration.js");
require("mathjax-full/js/input/tex/ams/AmsConfiguration.js");
require("mathjax-full/js/input/tex/boldsymbol/BoldsymbolConfiguration.js");

RegisterHTMLHandler(liteAdaptor());
// no "noundefined" package: an unknown macro is an error, not red text
const tex = new TeX({
  packages: ["base", "ams", "boldsymbol"],
  formatError: (jax, err) => {
    throw err;
  },
});
const page = mathjax.document("", { InputJax: tex });

function katexError(formula, display) {
  try {
    katex.renderToString(formula, { displayMode: display, throwOnError: true, strict: "error", trust: false });
    return null;
  } catch (err) {
    return String(err.message || err);
  }
}

function mathjaxError(formula, display) {
  try {
    // compiled to MathML is where TeX errors arise; the output stage adds nothing to check
    page.convert(formula, { display, end: STATE.COMPILED });
    return null;
  } catch (err) {
    return String(err.message || err);
  }
}

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const out = JSON.parse(input).map(({ id, tex: formula, display }) => ({
    id,
    katex: katexError(formula, display !== false),
    mathjax: mathjaxError(formula, display !== false),
  }));
  process.stdout.write(JSON.stringify(out));
});
