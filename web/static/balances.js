// Balances page: per layer the Sankey (units coloured by closure against the limit), closure over
// time, the node table, the reconciliation in words; the pollutant factors as tables.
"use strict";
let layer = "material", doc = null;
const OK = "#2e7d32", BAD = "#c62828", GREY = "#757575", EDGE = "#546e7a";

function verdictText(v) {
  return { ok: t("closes"), exceeded: t("exceeds"), incomplete: t("incomplete"), "no-data": t("waiting"),
    "supply-only": t("waiting") }[v] || v;
}

function drawSankey(d) {
  const idx = new Map(d.nodes.map((n, i) => [n.id, i]));
  const label = (n) => {
    const name = LANG === "zh" && n.label_zh ? n.label_zh : n.label;
    return n.closure_pct === null ? name : `${name} (${n.closure_pct > 0 ? "+" : ""}${n.closure_pct.toFixed(2)} %)`;
  };
  const links = d.links.filter((l) => l.value);
  Plotly.react("sankey", [{
    type: "sankey", arrangement: "snap", valueformat: ",.1f", valuesuffix: " " + d.unit,
    node: { label: d.nodes.map(label), pad: 18, thickness: 16,
      color: d.nodes.map((n) => n.kind !== "unit" ? EDGE : n.ok === null ? GREY : n.ok ? OK : BAD),
      customdata: d.nodes.map((n) => n.id) },
    link: { source: links.map((l) => idx.get(l.source)), target: links.map((l) => idx.get(l.target)),
      value: links.map((l) => l.value), label: links.map((l) => LANG === "zh" && l.label_zh ? l.label_zh : l.label),
      color: "rgba(120,144,156,0.35)" },
  }], { margin: { t: 10, r: 10, b: 10, l: 10 }, height: 520, font: { size: 11 } },
  { displaylogo: false, responsive: true });
  $("sankey").dataset.nodes = String(d.nodes.length);
  $("sankey").dataset.links = String(links.length);
}

async function drawHistory() {
  const h = await getJSON(`api/v1/closure-history?layer=${layer}`);
  const x = h.t_ms.map((ms) => new Date(ms));
  const traces = [];
  for (const [id, n] of Object.entries(h.nodes)) {
    if (!n.cumulative.some((v) => v !== null)) continue;
    const name = id === "overall" ? t("overall") : nameOf(n);
    traces.push({ x, y: n.cumulative, name: `${name} — ${t("cumulative")}`, mode: "lines",
      visible: id === "overall" ? true : "legendonly" });
    traces.push({ x, y: n.trailing, name: `${name} — ${t("trailing")} ${h.trailing_h} h`, mode: "lines",
      line: { dash: "dot" }, visible: id === "overall" ? true : "legendonly" });
  }
  const lim = h.limit_pct;
  Plotly.react("history", traces, {
    margin: { t: 10, r: 10, b: 40, l: 50 }, height: 320, yaxis: { title: "%" },
    shapes: [lim, -lim].map((y) => ({ type: "line", xref: "paper", x0: 0, x1: 1, y0: y, y1: y,
      line: { color: BAD, dash: "dash", width: 1 } })), legend: { font: { size: 10 } },
  }, { displaylogo: false, responsive: true });
  $("historynote").textContent = h.note;
}

function nodeTable(b) {
  const u = b.unit;
  const head = [t("node"), `${t("inputs_kg").split(" ")[0]} [${u}]`, `${t("outputs_kg").split(" ")[0]} [${u}]`,
    `${t("deviation_kg").split(" ")[0]} [${u}]`, t("closure_pct"), ""];
  $("bnodes").querySelector("thead").replaceChildren((() => {
    const tr = document.createElement("tr");
    head.forEach((h) => { const th = document.createElement("th"); th.textContent = h; tr.appendChild(th); });
    return tr;
  })());
  const rows = (b.nodes || []).concat(b.overall ? [b.overall] : []);
  $("bnodes").querySelector("tbody").replaceChildren(...rows.map((n) => {
    const tr = document.createElement("tr");
    tr.dataset.node = n.node;
    const cls = n.ok === null ? "unknown" : n.ok ? "ok" : "bad";
    cell(tr, n.node === "overall" ? t("overall") : nameOf(n));
    cell(tr, fmt(n.total_in)); cell(tr, fmt(n.total_out)); cell(tr, fmt(n.deviation));
    cell(tr, fmt(n.closure_pct, 2), "closure " + cls);
    cell(tr, n.ok === null ? "?" : n.ok ? t("within") : t("beyond"), cls);
    return tr;
  }));
  $("bmessage").textContent = b.message;
}

// the reconciliation as an auditor can say it to a panel
function reconWords(r) {
  if (!r) return "–";
  const g = r.global_test;
  const p = (x) => x.toFixed(x < 0.001 ? 5 : 3);
  let s = `${t("global_test")}: χ² = ${g.statistic.toFixed(2)}, ${t("dof")} ${g.dof}, p = ${p(g.p_value)} — ` +
    (g.rejected ? t("rejected") : t("accepted")) + ". ";
  if (!r.suspects.length) s += t("no_suspect") + ". ";
  for (const x of r.suspects) {
    s += `${t("suspects")}: ${x.kind === "leak" ? t("leak_at") : t("bias_on")} ${x.where} ` +
      `(${fmt(Math.abs(x.estimate), 1)} ${r.unit})`;
    if (x.equivalent.length) s += `; ${t("cannot_tell")}: ${x.equivalent.join(", ")}`;
    s += ". ";
  }
  return s + t("detect_note");
}

function pollutantTables(p) {
  const sec = $("extra");
  sec.replaceChildren();
  const h = document.createElement("h2"); h.textContent = t("pollutant"); sec.appendChild(h);
  const tab = document.createElement("table"); tab.id = "factors";
  const head = document.createElement("tr");
  [t("factor"), `${t("collected")} [kg]`, `${t("fugitive")} [kg]`, `${t("removal")} [%]`,
    `${t("emitted")} [kg]`, t("destination")].forEach((x) => { const th = document.createElement("th"); th.textContent = x; head.appendChild(th); });
  tab.appendChild(head);
  for (const f of p.factors || []) {
    const tr = document.createElement("tr"); tr.dataset.factor = f.factor;
    cell(tr, LANG === "zh" && f.name_zh ? `${f.factor} ${f.name_zh}` : f.factor);
    cell(tr, fmt(f.collected_kg, 3)); cell(tr, fmt(f.fugitive_kg, 3));
    cell(tr, fmt(f.removal_overall_pct, 1)); cell(tr, fmt(f.emitted_kg, 3)); cell(tr, f.destination);
    tab.appendChild(tr);
  }
  sec.appendChild(tab);
  const note = document.createElement("p"); note.className = "small"; note.textContent = p.validity_rule;
  sec.appendChild(note);
}

function layerExtras(b) {
  const sec = $("extra");
  sec.replaceChildren();
  const rows = [];
  if (layer === "material") (b.losses || []).slice(0, 8).forEach((x) => rows.push([`${t("losses")}: ${x.node}`, `${x.what}: ${fmt(x.amount)} ${x.unit} (${fmt(x.share_of_input_pct, 2)} %)`]));
  if (layer === "water" && b.indicators) for (const [k, v] of Object.entries(b.indicators)) if (typeof v === "number") rows.push([k, fmt(v, 2)]);
  if (layer === "energy" && b.summary && b.summary.carriers) {
    for (const [k, v] of Object.entries(b.summary.carriers)) rows.push([k, `${fmt(v.amount)} ${v.unit} = ${fmt(v.kgce)} kgce`]);
    for (const u of b.summary.units || []) rows.push([u.node, `${fmt(u.effective_kgce)} / ${fmt(u.supplied_kgce)} kgce = ${fmt(u.efficiency_pct)} %`]);
  }
  if (!rows.length) return;
  const tab = document.createElement("table"); tab.id = "extras";
  rows.forEach(([a, v]) => { const tr = document.createElement("tr"); cell(tr, a); cell(tr, v); tab.appendChild(tr); });
  sec.appendChild(tab);
}

function render() {
  if (!doc) return;
  document.querySelectorAll("#layers button").forEach((b) => b.classList.toggle("here", b.dataset.layer === layer));
  const b = doc.balances[layer];
  const v = $("bverdict");
  v.textContent = verdictText(b.verdict);
  v.dataset.verdict = b.verdict;
  v.className = "big " + (b.verdict === "ok" ? "ok" : b.verdict === "exceeded" ? "bad" : "unknown");
  $("bwindow").textContent = b.start ? `${b.start} → ${b.end}` : b.message;
  const pol = layer === "pollutant";
  $("sankeysec").hidden = pol; $("historysec").hidden = pol;
  $("bnodes").hidden = pol;
  $("recon").textContent = pol ? "–" : reconWords(doc.reconciliation[layer]);
  if (pol) { pollutantTables(b); $("bmessage").textContent = b.message; return; }
  nodeTable(b);
  layerExtras(b);
  if (typeof Plotly !== "undefined" && doc.sankey[layer]) drawSankey(doc.sankey[layer]);
  drawHistory().catch(() => {});
}

document.querySelectorAll("#layers button").forEach((btn) => btn.addEventListener("click", () => {
  layer = btn.dataset.layer; render();
}));
document.addEventListener("langchange", render);
every(15000, async () => { doc = await getJSON("api/v1/report?validity=0"); render(); });
