// Balances page: per layer the balance diagram (analyzer/sankey.py, amounts on every flow), closure
// over time per completed cycle or trailing window, the node table, the reconciliation in words;
// the pollutant factors as tables.
"use strict";
let layer = "material", doc = null;
const OK = "#2e7d32", BAD = "#c62828";     // as analyzer/sankey.py: within the limit, beyond it

function verdictText(v) {
  return { ok: t("closes"), exceeded: t("exceeds"), incomplete: t("incomplete"), "no-data": t("waiting"),
    "supply-only": t("supply_verdict") }[v] || v;
}

// the balance diagram: the very SVG the Exports page downloads (analyzer/sankey.py), drawn on the
// server in the page's language with the amount and unit on every flow; fetched again when the
// layer or the language changes and at most once a minute otherwise
let sankeyKey = "", sankeyAt = 0;
async function drawSankey(d) {
  const key = `${layer}/${LANG}/${doc.balances[layer].start_ns}/${doc.balances[layer].end_ns}`;
  if (key === sankeyKey && Date.now() - sankeyAt < 60000) return;
  const r = await fetch(`api/v1/diagram.svg?layer=${layer}&lang=${LANG}`, { cache: "no-store" });
  if (!r.ok) throw new Error(`sankey: HTTP ${r.status}`);
  const box = $("sankey");
  box.innerHTML = await r.text();          // our own server's SVG: names are escaped there
  sankeyKey = key; sankeyAt = Date.now();
  box.dataset.nodes = String(d.nodes.length);
  box.dataset.links = String(d.links.filter((l) => l.value).length);
  box.dataset.layer = layer;
}

// Closure over time as the analyzer signs it (/api/v1/closure-series): one whole balance per
// completed production cycle (batch) or per trailing window (continuous), never a closure taken
// mid-cycle. The limit band is shaded; a node that leaves it is drawn red and thick, the others
// thin; the table's own window is marked with its figures, so the chart and the table agree.
const PALETTE = ["#5c7c99", "#8e7cc3", "#6aa84f", "#c27ba0", "#b7950b", "#45818e", "#a0522d", "#7f8c8d"];
let history = null;
async function fetchHistory() {
  history = await getJSON(`api/v1/closure-series?layer=${layer}`);
}

function drawHistory(b) {
  const h = history;
  const el = $("history");
  if (!h || h.layer !== layer || typeof Plotly === "undefined") return;
  const lim = h.limit_pct;
  const x = h.t_ms.map((ms) => ms === null ? null : zoned(ms));
  const traces = [];
  const fails = [];
  let k = 0;
  const entries = Object.entries(h.nodes).filter(([id]) => id !== "overall");
  for (const [id, n] of entries) {
    const bad = n.fails > 0;
    if (bad) fails.push(id);
    traces.push({ x, y: n.closure_pct, name: nodeName(id), mode: "lines+markers", meta: id,
      line: { width: bad ? 3 : 1.2, color: bad ? BAD : PALETTE[k++ % PALETTE.length] },
      marker: { size: bad ? 8 : 5, symbol: n.ok.map((o) => o === false ? "x" : "circle"),
        color: n.ok.map((o) => o === false ? BAD : (bad ? BAD : PALETTE[(k - 1) % PALETTE.length])) },
      opacity: bad || !fails.length ? 1 : 0.75, connectgaps: false,
      hovertemplate: `${nodeName(id)}: %{y:.2f} %<extra></extra>` });
  }
  const ov = h.nodes.overall;
  if (ov) {
    traces.push({ x, y: ov.closure_pct, name: t("overall"), mode: "lines+markers", meta: "overall",
      line: { width: 3.5, color: ov.fails ? BAD : "#17324d" },
      marker: { size: 9, symbol: ov.ok.map((o) => o === false ? "x" : "diamond"), color: ov.fails ? BAD : "#17324d" },
      hovertemplate: `${t("overall")}: %{y:.2f} %<extra></extra>` });
  }
  // the table's window: the same balance as the table, its figures at its end
  const shapes = [{ type: "rect", xref: "paper", x0: 0, x1: 1, y0: -lim, y1: lim, layer: "below",
    fillcolor: "rgba(46,125,50,0.10)", line: { width: 0 } }];
  for (const y of [lim, -lim]) shapes.push({ type: "line", xref: "paper", x0: 0, x1: 1, y0: y, y1: y,
    line: { color: BAD, dash: "dash", width: 1 } });
  const tableRows = b && b.start_ns ? (b.nodes || []).concat(b.overall ? [b.overall] : []).filter((n) => n.closure_pct !== null) : [];
  if (tableRows.length) {
    shapes.push({ type: "rect", yref: "paper", y0: 0, y1: 1, x0: zoned(b.start_ns / 1e6), x1: zoned(b.end_ns / 1e6),
      layer: "below", fillcolor: "rgba(23,50,77,0.06)", line: { width: 1, color: "rgba(23,50,77,0.3)", dash: "dot" } });
    traces.push({ x: tableRows.map(() => zoned(b.end_ns / 1e6)), y: tableRows.map((n) => n.closure_pct),
      name: t("table_agrees"), mode: "markers", meta: "table",
      customdata: tableRows.map((n) => n.node), text: tableRows.map((n) => nodeName(n.node)),
      marker: { symbol: "square-open", size: 12, line: { width: 2 },
        color: tableRows.map((n) => n.ok === false ? BAD : OK) },
      hovertemplate: `${t("accepted_window")} · %{text}: %{y:.2f} %<extra></extra>` });
  }
  const all = traces.flatMap((tr) => tr.y).filter((v) => v !== null && v !== undefined);
  const top = Math.max(lim * 1.6, ...all.map((v) => Math.abs(v) * 1.15));
  const phone = el.clientWidth < 600;
  Plotly.react(el, traces, {
    margin: { t: 10, r: 10, b: phone ? 90 : 60, l: 60 }, height: phone ? 560 : 420,
    xaxis: timeAxis(), yaxis: valueAxis(t("closure_axis"), "%", { range: [-top, top], zeroline: true }),
    shapes, legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom", font: { size: 11 } }, showlegend: true,
  }, PLOT_CFG);
  el.dataset.basis = h.basis;
  el.dataset.points = String(h.t_ms.length);
  el.dataset.failing = fails.join(",");
  // the verdict the chart shows for the table's window, per node: the test compares it with the table
  el.dataset.verdicts = JSON.stringify(Object.fromEntries(tableRows.map((n) => [n.node, n.ok])));
  const basis = h.basis === "cycle" ? `${t("per_cycle")} (${h.t_ms.length})` :
    `${t("per_window")} ${h.trailing_h} ${t("h_unit")} (${h.t_ms.length})`;
  const parts = [basis, `${t("limit_band")}${lim} %`];
  if (!h.t_ms.length) parts.push(h.basis === "cycle" ? t("no_history") : t("no_history_cont"));
  for (const id of fails.concat(ov && ov.fails ? ["overall"] : [])) {
    parts.push(`${nodeName(id)}: ${t("fails_in")} ${h.nodes[id].fails} ${t("of_points")} ${h.t_ms.length}`);
  }
  $("historynote").replaceChildren(...parts.map((p, i) => {
    const s = document.createElement("span"); s.textContent = (i ? " · " : "") + p;
    if (i > 1 && p.includes(t("fails_in"))) s.className = "bad";
    return s;
  }));
}

function nodeTable(b) {
  const u = b.unit, supply = b.verdict === "supply-only";
  const head = supply ? [t("node"), `${t("supplied")} [${u}]`] :
    [t("node"), `${t("inputs_kg").split(" ")[0]} [${u}]`, `${t("outputs_kg").split(" ")[0]} [${u}]`,
      `${t("deviation_kg").split(" ")[0]} [${u}]`, t("closure_pct"), ""];
  $("bnodes").querySelector("thead").replaceChildren((() => {
    const tr = document.createElement("tr");
    head.forEach((h) => { const th = document.createElement("th"); th.textContent = h; tr.appendChild(th); });
    return tr;
  })());
  const rows = (b.nodes || []).concat(b.overall && !supply ? [b.overall] : []);
  $("bnodes").querySelector("tbody").replaceChildren(...rows.map((n) => {
    const tr = document.createElement("tr");
    tr.dataset.node = n.node;
    const cls = n.ok === null ? "unknown" : n.ok ? "ok" : "bad";
    tr.dataset.ok = String(n.ok);
    cell(tr, nodeName(n.node));
    cell(tr, fmt(n.total_in));
    if (supply) return tr;
    cell(tr, fmt(n.total_out)); cell(tr, fmt(n.deviation));
    cell(tr, fmt(n.closure_pct, 2), "closure " + cls);
    cell(tr, n.ok === null ? "?" : n.ok ? t("within") : t("beyond"), cls);
    return tr;
  }));
  $("bmessage").textContent = say(b.message);
}

// the reconciliation as an auditor can say it to a panel
function where(x) {
  return (NAMES.nodes || {})[x] ? nodeName(x) : (NAMES.streams || {})[x] ? streamName(x) : x;
}
function reconWords(r) {
  if (!r) return "–";
  const g = r.global_test;
  const p = (x) => x.toFixed(x < 0.001 ? 5 : 3);
  const stop = LANG === "zh" ? "。" : ". ";
  let s = `${t("global_test")}: χ² = ${g.statistic.toFixed(2)}, ${t("dof")} ${g.dof}, p = ${p(g.p_value)} — ` +
    (g.rejected ? t("rejected") : t("accepted")) + stop;
  if (!r.suspects.length) s += t("no_suspect") + stop;
  for (const x of r.suspects) {
    s += `${t("suspects")}: ${x.kind === "leak" ? t("leak_at") : t("bias_on")} ${where(x.where)} ` +
      `(${fmt(Math.abs(x.estimate), 1)} ${r.unit})`;
    if (x.equivalent.length) s += `; ${t("cannot_tell")}: ${x.equivalent.map(where).join(", ")}`;
    s += stop;
  }
  return s + t("detect_note");
}

function table(id, head, rows) {
  const tab = document.createElement("table"); tab.id = id;
  const tr0 = document.createElement("tr");
  head.forEach((x) => { const th = document.createElement("th"); th.textContent = x; tr0.appendChild(th); });
  tab.appendChild(tr0);
  rows.forEach((r) => { const tr = document.createElement("tr"); r.forEach((v) => cell(tr, v)); tab.appendChild(tr); });
  return scrollBox(tab);
}

function pollutantTables(p) {
  const sec = $("extra");
  sec.replaceChildren();
  const h = document.createElement("h2"); h.textContent = t("pollutant"); sec.appendChild(h);
  const rows = (p.factors || []).map((f) => [LANG === "zh" && f.name_zh ? (/^[A-Z0-9]/.test(f.factor) ? `${f.factor} ${f.name_zh}` : f.name_zh) : f.factor,
    fmt(f.collected_kg, 3), fmt(f.fugitive_kg, 3), fmt(f.removal_overall_pct, 1), fmt(f.emitted_kg, 3),
    say(f.destination)]);
  sec.appendChild(table("factors", [t("factor"), `${t("collected")} [kg]`, `${t("fugitive")} [kg]`,
    `${t("removal")} [%]`, `${t("emitted")} [kg]`, t("destination")], rows));
  const note = document.createElement("p"); note.className = "small"; note.textContent = say(p.validity_rule);
  sec.appendChild(note);
}

// the indicators' keys (analyzer/indicators.py) in words, with their unit from the key's suffix
const IND = {
  en: { charged_discharge_t: "Discharge charged to the focus", charged_fresh_t: "Fresh water charged to the focus",
    condensate_reuse_rate_pct: "Condensate reuse rate", consumed_t: "Water consumed", consumption_rate_pct: "Consumption rate",
    discharge_rate_pct: "Discharge rate", discharged_t: "Discharged", exported_t: "Supplied to others", fresh_t: "Fresh water",
    in_materials_t: "Water in raw materials", losses_t: "Losses", non_conventional_share_pct: "Non-conventional water share",
    received_t: "Received", repeated_use_rate_pct: "Repeated use rate", reused_t: "Reused", total_use_t: "Total water use",
    wastewater_reuse_rate_pct: "Wastewater reuse rate", leak_rate_pct: "Leak rate" },
  zh: { charged_discharge_t: "计入审核重点的排水量", charged_fresh_t: "计入审核重点的新水量",
    condensate_reuse_rate_pct: "冷凝水回用率", consumed_t: "耗水量", consumption_rate_pct: "耗水率",
    discharge_rate_pct: "排水率", discharged_t: "排水量", exported_t: "外供水量", fresh_t: "新水量",
    in_materials_t: "原料带入水量", losses_t: "损失水量", non_conventional_share_pct: "非常规水源占比",
    received_t: "外来水量", repeated_use_rate_pct: "重复利用率", reused_t: "回用水量", total_use_t: "总用水量",
    wastewater_reuse_rate_pct: "废水回用率", leak_rate_pct: "漏失率" },
};
const CARRIER = { en: { electricity: "Electricity", natural_gas: "Natural gas", steam: "Steam", coal: "Coal", diesel: "Diesel" },
  zh: { electricity: "电力", natural_gas: "天然气", steam: "蒸汽", coal: "煤", diesel: "柴油" } };
function indicator(k) {
  const unit = k.endsWith("_pct") ? "%" : k.endsWith("_t") ? "t" : k.endsWith("_kgce") ? "kgce" : "";
  const name = (IND[LANG] || {})[k] || IND.en[k] || k.replace(/_(pct|t|kgce)$/, "").replace(/_/g, " ");
  return [name, unit];
}

function layerExtras(b) {
  const sec = $("extra");
  sec.replaceChildren();
  if (layer === "material" && (b.losses || []).length) {
    const rows = b.losses.slice(0, 12).map((x) => [nodeName(x.node),
      x.stream ? (LANG === "zh" && x.what_zh ? x.what_zh : x.what) : t("unaccounted"),
      `${fmt(x.amount)} ${x.unit}`, x.share_of_input_pct === null || x.share_of_input_pct === undefined ? "–" : `${fmt(x.share_of_input_pct, 2)} %`]);
    const h = document.createElement("h2"); h.textContent = t("losses"); sec.appendChild(h);
    sec.appendChild(table("extras", [t("node"), t("loss_what"), t("amount"), t("share_input")], rows));
  }
  if (layer === "water" && b.indicators) {
    const rows = Object.entries(b.indicators).filter(([, v]) => typeof v === "number").map(([k, v]) => {
      const [name, unit] = indicator(k); return [name, `${fmt(v, 2)}${unit ? " " + unit : ""}`];
    });
    const h = document.createElement("h2"); h.textContent = t("indicators"); sec.appendChild(h);
    sec.appendChild(table("extras", [t("indicator"), t("value")], rows));
  }
  if (layer === "energy" && b.summary) {
    const cr = Object.entries(b.summary.carriers || {}).map(([k, v]) => [(CARRIER[LANG] || {})[k] || CARRIER.en[k] || k,
      `${fmt(v.amount)} ${v.unit}`, `${fmt(v.kgce)} kgce`]);
    const h = document.createElement("h2"); h.textContent = t("carriers"); sec.appendChild(h);
    sec.appendChild(table("carriers", [t("carrier"), t("amount"), `${t("supplied")} [kgce]`], cr));
    const un = (b.summary.units || []).map((u) => [nodeName(u.node), fmt(u.supplied_kgce ?? u.fuel_kgce),
      fmt(u.effective_kgce), fmt(u.efficiency_pct)]);
    if (un.length) {
      const h2 = document.createElement("h2"); h2.textContent = t("units_eff"); sec.appendChild(h2);
      sec.appendChild(table("extras", [t("node"), `${t("supplied")} [kgce]`, `${t("effective")} [kgce]`, `${t("efficiency")} [%]`], un));
    }
  }
}

function render() {
  if (!doc) return;
  document.querySelectorAll("#layers button").forEach((b) => b.classList.toggle("here", b.dataset.layer === layer));
  const b = doc.balances[layer];
  const v = $("bverdict");
  const supply = b.verdict === "supply-only";
  v.textContent = supply ? t("supply_verdict") : verdictText(b.verdict);
  v.dataset.verdict = b.verdict;
  v.className = "big " + (b.verdict === "ok" ? "ok" : b.verdict === "exceeded" ? "bad" : "unknown");
  $("bwindow").textContent = b.start ? `${isoShown(b.start)} → ${isoShown(b.end)}` : say(b.message);
  const pol = layer === "pollutant";
  $("sankeysec").hidden = pol; $("historysec").hidden = pol || supply;
  $("bnodes").hidden = pol;
  $("supplynote").hidden = !supply;
  $("supplynote").textContent = t("supply_only");
  $("recon").textContent = pol ? "–" : reconWords(doc.reconciliation[layer]);
  if (pol) { pollutantTables(b); $("bmessage").textContent = say(b.message); return; }
  nodeTable(b);
  layerExtras(b);
  if (doc.sankey[layer]) drawSankey(doc.sankey[layer]).catch(() => setLink("lost"));
  if (!supply) drawHistory(b);
}

async function refresh() {
  const [d] = await Promise.all([getJSON("api/v1/report?validity=0"),
    layer === "pollutant" ? null : fetchHistory()]);
  doc = d;
  render();
}
document.querySelectorAll("#layers button").forEach((btn) => btn.addEventListener("click", () => {
  layer = btn.dataset.layer; render();
  if (layer !== "pollutant") fetchHistory().then(render).catch(() => setLink("lost"));
}));
document.addEventListener("langchange", render);
every(15000, refresh);
