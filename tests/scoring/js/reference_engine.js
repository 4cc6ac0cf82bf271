// An independent, literal JavaScript reading of scoring.md sections 1-6, run under
// Node by test_js_reference.py to cross-check the Python engine's JavaScript numerics
// (Number(), String(), toFixed, Math.exp/log2, Array.prototype.sort) on real V8.
// Reads a JSON array of golden-shaped inputs on stdin, writes a JSON array of outputs.
"use strict";
const FUNCS = ["Ti", "Te", "Fi", "Fe", "Ni", "Ne", "Si", "Se"];
const TYPES = ["LIE", "ILI", "ESE", "SEI", "LII", "ILE", "ESI", "SEE",
               "LSE", "SLI", "EIE", "IEI", "LSI", "SLE", "EII", "IEE"];
const ROWS = {
  LIE: "mob base vuln demo creat sugg ign role", ILI: "sugg creat role ign base mob demo vuln",
  ESE: "vuln ign mob base sugg role creat demo", SEI: "role demo sugg creat mob vuln base ign",
  LII: "base mob ign vuln role creat sugg demo", ILE: "creat sugg demo role vuln base mob ign",
  ESI: "ign vuln base mob role sugg demo creat", SEE: "demo role creat sugg vuln mob ign base",
  LSE: "mob base vuln demo ign sugg creat role", SLI: "sugg creat role ign mob demo base vuln",
  EIE: "vuln ign mob base creat role sugg demo", IEI: "role demo sugg creat base vuln mob ign",
  LSI: "base mob ign vuln role sugg demo creat", SLE: "creat sugg demo role vuln mob ign base",
  EII: "demo vuln base mob role creat sugg ign", IEE: "demo role creat sugg vuln base mob ign",
};
const fx = (x, d) => Number(x.toFixed(d));
const num = (v, def) => { if (!v) return def; const x = Number(v); return Number.isNaN(x) ? def : x; };

function score(input) {
  const key = input.scoringKey || {};
  const cfg = input.config || {};
  const fcIn = input.fcFunctionScores;
  const fcScores = fcIn && typeof fcIn === "object" && !Array.isArray(fcIn) ? fcIn : undefined;
  const temp = num(cfg.softmax_temp, 1);
  const p = cfg.conf_raw_params || {};
  const a = num(p.a, 0.25), b = num(p.b, 0.35), c = num(p.c, 0.2);
  const th = cfg.fit_band_thresholds || {};
  const hi = num(th.high_fit, 10), mid = num(th.moderate_fit, 5);
  const fcMin = num(cfg.fc_expected_min, 0);

  const latest = new Map();
  for (const r of input.responses || []) latest.set(String(r.question_id), r.answer_value);
  const sum = {}, cnt = {}, derived = {};
  let answered = 0;
  for (const [qid, ans] of latest) {
    const k = key[qid];
    if (!k) continue;
    if (fcScores === undefined && k.fc_map && typeof k.fc_map === "object") {
      const f = k.fc_map[String(ans)];
      if (typeof f === "string" && FUNCS.includes(f)) { derived[f] = (derived[f] || 0) + 1; answered++; }
    }
    if (ans === null || ans === undefined) continue;
    let v = Number(ans);
    if (!Number.isFinite(v)) continue;
    if (k.reverse_scored) v = 6 - v;
    if (k.tag && String(k.scale_type || "").startsWith("LIKERT")) {
      const f = k.tag.slice(0, 2);
      if (FUNCS.includes(f)) { sum[f] = (sum[f] || 0) + v; cnt[f] = (cnt[f] || 0) + 1; }
    }
  }
  let fcNorm = null, fcCt;
  if (fcScores !== undefined) {
    fcNorm = {};
    for (const f of FUNCS) {
      const s = fcScores[f];
      let x = typeof s === "number" ? s : typeof s === "string" ? Number(s) : 0;
      if (!Number.isFinite(x)) x = 0;
      fcNorm[f] = x / 100 * 5;
    }
    fcCt = Object.keys(fcScores).length;
  } else if (answered > 0) {
    let tot = 0;
    for (const f in derived) tot += derived[f];
    fcNorm = {};
    for (const f of FUNCS) fcNorm[f] = (derived[f] || 0) / tot * 5;
    fcCt = answered;
  } else {
    fcCt = answered;
  }
  const st = {};
  let items = 0;
  for (const f of FUNCS) {
    const lik = cnt[f] ? sum[f] / cnt[f] : 0;
    items += cnt[f] || 0;
    st[f] = fcNorm ? 0.5 * lik + 0.5 * fcNorm[f] : lik;
  }
  // Nothing to score is no error (section 6): every strength 0, the rules below apply.
  const W = (blk) => (blk === "base" ? 1.0 : blk === "creat" ? 0.7 : 0.2);
  const fits = TYPES.map((t) => {
    const blocks = ROWS[t].split(" ");
    let fit = 0;
    FUNCS.forEach((f, i) => { fit += W(blocks[i]) * st[f]; });
    return fx(fit, 4);
  });
  const mx = Math.max(...fits);
  const ex = fits.map((f) => Math.exp((f - mx) / temp));
  let z = 0;
  for (const e of ex) z += e;
  const shares = ex.map((e) => e / z);
  const idx = TYPES.map((_, i) => i);
  idx.sort((i, j) => {
    const d = shares[j] - shares[i];
    if (!(Math.abs(d) < 1e-9)) return d;
    if (fits[j] !== fits[i]) return fits[j] - fits[i];
    return i - j;
  });
  let h = 0;
  for (const s of shares) if (s > 0) h -= s * Math.log2(s);
  const [i1, i2, i3] = idx;
  const fitGap = fits[i1] - fits[i2], shareGap = shares[i1] - shares[i2];
  const confRaw = fx(1 / (1 + Math.exp(-(a * fitGap + b * shareGap - c * h))), 4);
  const blocks1 = ROWS[TYPES[i1]].split(" ");
  const strengths = {};
  for (const f of FUNCS) strengths[f] = fx(st[f], 3);
  return {
    type_code: TYPES[i1],
    base_func: FUNCS[blocks1.indexOf("base")],
    creative_func: FUNCS[blocks1.indexOf("creat")],
    top_3_fits: [i1, i2, i3].map((i) => ({ code: TYPES[i], fit: fits[i], share: shares[i] })),
    fit_band: fits[i1] >= hi ? "high_fit" : fits[i1] >= mid ? "moderate_fit" : "low_fit",
    top_gap: fx(shareGap, 3),
    close_call: shareGap < 0.05,
    strengths,
    confidence: confRaw >= 0.75 ? "High" : confRaw >= 0.55 ? "Moderate" : "Low",
    conf_raw: confRaw,
    fc_answered_ct: fcCt,
    fc_coverage_bucket: fcCt >= fcMin ? "full" : "low",
  };
}

const inputs = JSON.parse(require("fs").readFileSync(0, "utf8"));
process.stdout.write(JSON.stringify(inputs.map(score)));
