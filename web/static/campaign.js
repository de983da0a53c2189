// Campaign page: progress, validity checks, load against the declared average, closure per node,
// devices. Every figure comes from /api/v1; refreshed every 2 s without reloading.
"use strict";
let lastCampaign = null, lastLoadDraw = 0;

function hms(s) {
  s = Math.max(0, Math.floor(s));
  const h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60), r = s % 60;
  return `${h}:${String(m).padStart(2, "0")}:${String(r).padStart(2, "0")}`;
}

// the campaign's progress in its own unit: hours (continuous, 7.3.3.3 e) or complete production
// cycles (batch); the elapsed time stops with the campaign
function renderCampaign(c) {
  lastCampaign = c;
  const stopped = c.end_ns ?? c.campaign_end ?? null;
  const upTo = stopped && c.start_ns ? Math.min(c.elapsed_s, (stopped - c.start_ns) / 1e9) : c.elapsed_s;
  $("elapsed").textContent = hms(upTo) + (stopped ? ` (${t("elapsed_stopped")})` : "");
  $("elapsed").dataset.seconds = upTo;
  if (c.mode !== "batch") {
    $("required").textContent = `${t("of")} ${c.required_hours} ${t("h_unit")} ${t("required_suffix")}`;
    $("progress").style.width = Math.min(100, 100 * c.elapsed_s / 3600 / c.required_hours) + "%";
  }
  $("devices").textContent = `${c.devices_online} / ${c.devices_total}`;
  $("samples").textContent = c.samples.toLocaleString("en-US");
  loadNote(c);
}

function verdictWord(v) {
  return { ok: t("closes"), exceeded: t("exceeds"), incomplete: t("incomplete"), "no-data": t("waiting"),
    "supply-only": t("supply_verdict") }[v] || v;
}

function renderBalance(b) {
  $("limit").textContent = b.limit_pct;
  const v = $("verdict");
  v.textContent = verdictWord(b.verdict);
  v.className = "big " + (b.verdict === "ok" ? "ok" : b.verdict === "exceeded" ? "bad" : "unknown");
  v.dataset.verdict = b.verdict;
  $("window").textContent = b.start ? `${isoShown(b.start)} → ${isoShown(b.end)} (${fmt(b.hours, 2)} ${t("h_unit")})` : t("no_window");
  $("window").dataset.startNs = b.start_ns ?? "";
  $("window").dataset.endNs = b.end_ns ?? "";
  $("message").textContent = say(b.message);
  const rows = (b.nodes || []).concat(b.overall ? [b.overall] : []);
  $("nodes").querySelector("tbody").replaceChildren(...rows.map((n) => {
    const tr = document.createElement("tr");
    tr.dataset.node = n.node;
    const cls = n.ok === null ? "unknown" : n.ok ? "ok" : "bad";
    cell(tr, nodeName(n.node));
    cell(tr, fmt(n.total_in)); cell(tr, fmt(n.total_out)); cell(tr, fmt(n.deviation));
    cell(tr, fmt(n.closure_pct, 2), `closure ${cls}`);
    cell(tr, n.ok === null ? "?" : n.ok ? t("within") : t("beyond"), cls);
    return tr;
  }));
}

function unitWord(u) { return u === "h" ? t("h_unit") : u === "cycles" ? t("cycles_unit") : u; }

function renderValidity(v) {
  const el = $("validity");
  el.textContent = { valid: t("valid"), invalid: t("not_valid"), "no-data": t("waiting") }[v.verdict] || v.verdict;
  el.className = "big " + (v.verdict === "valid" ? "ok" : v.verdict === "invalid" ? "bad" : "unknown");
  el.dataset.verdict = v.verdict;
  const p = v.progress || {};
  const when = p.earliest_valid_ns ? zonedMin(p.earliest_valid_ns / 1e6) : "–";
  if (p.unit) {   // "3 of 3 cycles required" / "12.5 of 72 h required"
    $("required").textContent = `${t("of")} ${p.required} ${unitWord(p.unit)} ${t("required_suffix")}`;
    $("progress").style.width = Math.min(100, 100 * p.done / p.required) + "%";
  }
  const done = fmt(p.done, p.unit === "h" ? 1 : 0);
  // "2.5 of 72 h" while short of it; "25 cycles (3 required)" once past it, never "25 of 3"
  const past = p.done >= p.required;
  $("vprogress").textContent = !p.unit ? say(v.message) : LANG === "zh"
    ? `已完成 ${done} ${unitWord(p.unit)}，共需 ${p.required} ${unitWord(p.unit)}；${t("duration_met")} ${when}`
    : past ? `${done} ${unitWord(p.unit)} (${p.required} required); ${t("duration_met")} ${when}`
      : `${done} ${t("of")} ${p.required} ${unitWord(p.unit)}; ${t("duration_met")} ${when}`;
  $("vprogress").dataset.done = String(p.done);
  $("vmessage").textContent = say(v.message);
  const order = new Map((v.fixes || []).map((f, i) => [f.check, i]));
  const rows = (v.checks || []).filter((c) => c.status !== "pass")
    .sort((a, b) => (order.get(a.id) ?? 1e3) - (order.get(b.id) ?? 1e3));
  $("checks").querySelector("tbody").replaceChildren(...rows.map((c) => {
    const tr = document.createElement("tr");
    tr.dataset.check = c.id;
    cell(tr, checkName(c.id), "proper");
    cell(tr, c.clause || "");
    cell(tr, t(c.status === "n/a" ? "na" : c.status), c.status === "fail" ? "bad" : "unknown").dataset.status = c.status;
    cell(tr, say(c.reason), "reason");
    cell(tr, say(c.fix || ""), "fixcell");
    return tr;
  }));
  $("hints").replaceChildren(...(v.hints || []).map((h) => {
    const li = document.createElement("li"); li.textContent = say(h); return li;
  }));
  $("best").textContent = v.best_window ? `${t("best_window")}: ${say(v.best_window.reason)}` : "";
}

function deviceState(x) { return t(x.state) || x.state; }

function renderDevices(d) {
  $("devtable").querySelector("tbody").replaceChildren(...d.devices.map((x) => {
    const tr = document.createElement("tr");
    tr.dataset.device = x.name;
    cell(tr, x.name, "proper"); const m = cell(tr, x.model, "model proper"); m.title = x.model;
    cell(tr, deviceState(x), x.online ? "ok" : "bad").dataset.state = x.state;
    cell(tr, fmt(x.latency_ms, 1));
    return tr;
  }));
}

// the load tag's hourly means against the declared audit-period average (7.3.3.3 f)
async function drawLoad() {
  const c = lastCampaign;
  if (!c || !c.load || typeof Plotly === "undefined") {
    $("loadnote").textContent = "";
    return;
  }
  const hours = Math.max(10, Math.ceil(c.elapsed_s / 3600));
  const s = await getJSON(`api/v1/series?tag=${encodeURIComponent(c.load.tag)}&points=${Math.min(hours, 2000)}`);
  const x = s.t_ms.map((ms) => zoned(ms));
  let y = s.mean;
  if (c.load.kind === "total") {     // a totalizer: the amount counted per bucket, per hour
    y = s.max.map((v, i) => (i === 0 || v === null || s.max[i - 1] === null || v < s.max[i - 1]) ? null
      : (v - s.max[i - 1]) / (s.bucket_s / 3600));
  }
  Plotly.react("loadchart", [
    { x, y, name: `${t("load")} (${c.load.tag}, ${t("hourly_mean")})`, mode: "lines", line: { shape: "hv" }, connectgaps: false },
    { x: [x[0], x[x.length - 1]], y: [c.load.average, c.load.average], name: `${t("average")} ${c.load.average} ${c.load.unit}`,
      mode: "lines", line: { dash: "dash", color: "#c0392b" } },
  ], { margin: { t: 10, r: 10, b: 60, l: 60 }, height: 320, xaxis: timeAxis(),
       yaxis: valueAxis(t("load_axis"), c.load.unit, { rangemode: "tozero" }),
       legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" } }, PLOT_CFG);
}

// the declared average's source is the campaign file's own words (English in the demo): shown as
// written in English, in Chinese named and kept in the tooltip
function loadNote(c) {
  if (!c || !c.load) { $("loadnote").textContent = ""; return; }
  $("loadnote").textContent = LANG === "zh" ? `平均负荷来源：见实测配置 requirements.load.source` : c.load.source;
  $("loadnote").title = c.load.source;
}

let last = null;
function renderAll() {
  if (!last) return;
  const [c, b, d, v] = last;
  renderCampaign(c); renderBalance(b); renderDevices(d); renderValidity(v);
}

async function refresh() {
  last = await Promise.all([getJSON("api/v1/campaign"), getJSON("api/v1/balance"),
    getJSON("api/v1/devices"), getJSON("api/v1/validity")]);
  renderAll();
  if (Date.now() - lastLoadDraw > 30000) { lastLoadDraw = Date.now(); drawLoad().catch(() => {}); }
}
every(2000, refresh);
document.addEventListener("langchange", () => { lastLoadDraw = 0; renderAll(); drawLoad().catch(() => {}); });
