// Campaign page: progress, validity checks, load against the declared average, closure per node,
// devices. Every figure comes from /api/v1; refreshed every 2 s without reloading.
"use strict";
let lastCampaign = null, lastLoadDraw = 0;

function hms(s) {
  s = Math.max(0, Math.floor(s));
  const h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60), r = s % 60;
  return `${h}:${String(m).padStart(2, "0")}:${String(r).padStart(2, "0")}`;
}

function renderCampaign(c) {
  lastCampaign = c;
  $("elapsed").textContent = hms(c.elapsed_s);
  $("elapsed").dataset.seconds = c.elapsed_s;
  if (c.mode !== "batch") {
    $("required").textContent = c.required_hours;
    $("progress").style.width = Math.min(100, 100 * c.elapsed_s / 3600 / c.required_hours) + "%";
  }
  $("devices").textContent = `${c.devices_online} / ${c.devices_total}`;
  $("samples").textContent = c.samples.toLocaleString("en-US");
}

function renderBalance(b) {
  $("limit").textContent = b.limit_pct;
  const v = $("verdict");
  v.textContent = { ok: t("closes"), exceeded: t("exceeds"), incomplete: t("incomplete"), "no-data": t("waiting") }[b.verdict] || b.verdict;
  v.className = "big " + (b.verdict === "ok" ? "ok" : b.verdict === "exceeded" ? "bad" : "unknown");
  v.dataset.verdict = b.verdict;
  $("window").textContent = b.start ? `${b.start} → ${b.end} (${fmt(b.hours * 3600, 0)} s)` : t("no_window");
  $("window").dataset.startNs = b.start_ns ?? "";
  $("window").dataset.endNs = b.end_ns ?? "";
  $("message").textContent = b.message;
  const rows = (b.nodes || []).concat(b.overall ? [b.overall] : []);
  $("nodes").querySelector("tbody").replaceChildren(...rows.map((n) => {
    const tr = document.createElement("tr");
    tr.dataset.node = n.node;
    const cls = n.ok === null ? "unknown" : n.ok ? "ok" : "bad";
    const label = n.node === "overall" ? t("overall") : nameOf(n);
    tr.innerHTML = `<td></td><td>${fmt(n.total_in)}</td><td>${fmt(n.total_out)}</td>` +
      `<td>${fmt(n.deviation)}</td><td class="closure ${cls}">${fmt(n.closure_pct, 2)}</td>` +
      `<td class="${cls}">${n.ok === null ? "?" : n.ok ? t("within") : t("beyond")}</td>`;
    tr.firstChild.textContent = label;
    return tr;
  }));
}

function renderValidity(v) {
  const el = $("validity");
  el.textContent = { valid: t("valid"), invalid: t("not_valid"), "no-data": t("waiting") }[v.verdict] || v.verdict;
  el.className = "big " + (v.verdict === "valid" ? "ok" : v.verdict === "invalid" ? "bad" : "unknown");
  el.dataset.verdict = v.verdict;
  const p = v.progress || {};
  const when = p.earliest_valid_ns ? new Date(p.earliest_valid_ns / 1e6).toISOString().slice(0, 16).replace("T", " ") + " UTC" : "–";
  if (p.unit && p.unit !== "h") {    // batch: progress in production cycles
    $("required").textContent = `${p.required} ${p.unit}`;
    $("progress").style.width = Math.min(100, 100 * p.done / p.required) + "%";
  }
  $("vprogress").textContent = p.unit ? `${fmt(p.done, p.unit === "h" ? 1 : 0)} ${t("of")} ${p.required} ${p.unit}; ${t("duration_met")} ${when}` : v.message;
  $("vmessage").textContent = v.message;
  const order = new Map((v.fixes || []).map((f, i) => [f.check, i]));
  const rows = (v.checks || []).filter((c) => c.status !== "pass")
    .sort((a, b) => (order.get(a.id) ?? 1e3) - (order.get(b.id) ?? 1e3));
  $("checks").querySelector("tbody").replaceChildren(...rows.map((c) => {
    const tr = document.createElement("tr");
    tr.dataset.check = c.id;
    [c.id, c.clause, c.status, c.reason, c.fix].forEach((x, i) =>
      cell(tr, x || "", i === 2 ? (c.status === "fail" ? "bad" : "unknown") : ""));
    return tr;
  }));
  $("hints").replaceChildren(...(v.hints || []).map((h) => {
    const li = document.createElement("li"); li.textContent = h; return li;
  }));
  $("best").textContent = v.best_window ? `${t("best_window")}: ${v.best_window.reason}` : "";
}

function renderDevices(d) {
  $("devtable").querySelector("tbody").replaceChildren(...d.devices.map((x) => {
    const tr = document.createElement("tr");
    tr.dataset.device = x.name;
    cell(tr, x.name); cell(tr, x.model); cell(tr, x.state, x.online ? "ok" : "bad");
    cell(tr, fmt(x.latency_ms, 1));
    return tr;
  }));
}

// the load tag's hourly means against the declared audit-period average (7.3.3.3 f)
async function drawLoad() {
  const c = lastCampaign;
  if (!c || !c.load || typeof Plotly === "undefined") {
    $("loadnote").textContent = c && !c.load ? "requirements.load not declared" : "";
    return;
  }
  const hours = Math.max(10, Math.ceil(c.elapsed_s / 3600));
  const s = await getJSON(`api/v1/series?tag=${encodeURIComponent(c.load.tag)}&points=${Math.min(hours, 2000)}`);
  const x = s.t_ms.map((ms) => new Date(ms));
  let y = s.mean;
  if (c.load.kind === "total") {     // a totalizer: the amount counted per bucket, per hour
    y = s.max.map((v, i) => (i === 0 || v === null || s.max[i - 1] === null || v < s.max[i - 1]) ? null
      : (v - s.max[i - 1]) / (s.bucket_s / 3600));
  }
  Plotly.react("loadchart", [
    { x, y, name: `${t("load")} (${c.load.tag}, ${t("hourly_mean")})`, mode: "lines", line: { shape: "hv" }, connectgaps: false },
    { x: [x[0], x[x.length - 1]], y: [c.load.average, c.load.average], name: t("average"),
      mode: "lines", line: { dash: "dash", color: "#c0392b" } },
  ], { margin: { t: 10, r: 10, b: 40, l: 60 }, height: 260, yaxis: { title: c.load.unit, rangemode: "tozero" },
       legend: { orientation: "h" } }, { displaylogo: false, responsive: true });
  $("loadnote").textContent = `${c.load.source}`;
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
document.addEventListener("langchange", () => { lastLoadDraw = 0; renderAll(); });
