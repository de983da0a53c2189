// Live campaign page: every figure comes from /api/v1; refreshed every 2 s without reloading.
"use strict";
const $ = (id) => document.getElementById(id);
const fmt = (x, d = 1) => (x === null || x === undefined || Number.isNaN(x)) ? "–" :
  Number(x).toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });

function hms(s) {
  s = Math.max(0, Math.floor(s));
  const h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60), r = s % 60;
  return `${h}:${String(m).padStart(2, "0")}:${String(r).padStart(2, "0")}`;
}

async function getJSON(path) {
  const r = await fetch(path, { cache: "no-store" });
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}

function renderCampaign(c) {
  $("elapsed").textContent = hms(c.elapsed_s);
  $("elapsed").dataset.seconds = c.elapsed_s;
  $("required").textContent = c.required_hours;
  $("progress").style.width = Math.min(100, 100 * c.elapsed_s / 3600 / c.required_hours) + "%";
  $("devices").textContent = `${c.devices_online} / ${c.devices_total}`;
  $("samples").textContent = c.samples.toLocaleString("en-US");
}

function renderBalance(b) {
  $("limit").textContent = b.limit_pct;
  const v = $("verdict");
  v.textContent = { ok: "closes ✓", exceeded: "exceeds limit", incomplete: "incomplete", "no-data": "waiting" }[b.verdict] || b.verdict;
  v.className = "big " + (b.verdict === "ok" ? "ok" : b.verdict === "exceeded" ? "bad" : "unknown");
  v.dataset.verdict = b.verdict;
  $("window").textContent = b.start ? `${b.start} → ${b.end} (${fmt(b.hours * 3600, 0)} s)` : "no common window yet";
  $("window").dataset.startNs = b.start_ns ?? "";
  $("window").dataset.endNs = b.end_ns ?? "";
  $("message").textContent = b.message;
  const rows = (b.nodes || []).concat(b.overall ? [b.overall] : []);
  const tbody = $("nodes").querySelector("tbody");
  tbody.replaceChildren(...rows.map((n) => {
    const tr = document.createElement("tr");
    tr.dataset.node = n.node;
    const cls = n.ok === null ? "unknown" : n.ok ? "ok" : "bad";
    const label = n.node === "overall" ? "Overall 总体" : `${n.name || n.node} ${n.name_zh || ""}`;
    tr.innerHTML = `<td></td><td>${fmt(n.total_in)}</td><td>${fmt(n.total_out)}</td>` +
      `<td>${fmt(n.deviation)}</td><td class="closure ${cls}">${fmt(n.closure_pct, 2)}</td>` +
      `<td class="${cls}">${n.ok === null ? "?" : n.ok ? "✓ within limit" : "✗ beyond limit"}</td>`;
    tr.firstChild.textContent = label;
    return tr;
  }));
}

function renderValidity(v) {
  const el = $("validity");
  el.textContent = { valid: "valid ✓", invalid: "not valid yet", "no-data": "waiting" }[v.verdict] || v.verdict;
  el.className = "big " + (v.verdict === "valid" ? "ok" : v.verdict === "invalid" ? "bad" : "unknown");
  el.dataset.verdict = v.verdict;
  const p = v.progress || {};
  const when = p.earliest_valid_ns ? new Date(p.earliest_valid_ns / 1e6).toISOString().slice(0, 16).replace("T", " ") + " UTC" : "–";
  $("vprogress").textContent = p.unit ? `${fmt(p.done, p.unit === "h" ? 1 : 0)} of ${p.required} ${p.unit}; duration met from ${when}` : v.message;
  $("vmessage").textContent = v.message;
  // what is not a pass, the fix order first
  const order = new Map((v.fixes || []).map((f, i) => [f.check, i]));
  const rows = (v.checks || []).filter((c) => c.status !== "pass")
    .sort((a, b) => (order.get(a.id) ?? 1e3) - (order.get(b.id) ?? 1e3));
  $("checks").querySelector("tbody").replaceChildren(...rows.map((c) => {
    const tr = document.createElement("tr");
    tr.dataset.check = c.id;
    tr.innerHTML = `<td></td><td></td><td class="${c.status === "fail" ? "bad" : "unknown"}"></td><td></td><td></td>`;
    [c.id, c.clause, c.status, c.reason, c.fix].forEach((t, i) => { tr.children[i].textContent = t || ""; });
    return tr;
  }));
  $("hints").replaceChildren(...(v.hints || []).map((h) => {
    const li = document.createElement("li"); li.textContent = h; return li;
  }));
  $("best").textContent = v.best_window ? `Best window: ${v.best_window.reason}` : "";
}

function renderDevices(d) {
  const tbody = $("devtable").querySelector("tbody");
  tbody.replaceChildren(...d.devices.map((x) => {
    const tr = document.createElement("tr");
    tr.dataset.device = x.name;
    const cls = x.online ? "ok" : "bad";
    tr.innerHTML = `<td></td><td></td><td class="${cls}">${x.state}</td><td>${fmt(x.latency_ms, 1)}</td>`;
    tr.children[0].textContent = x.name;
    tr.children[1].textContent = x.model;
    return tr;
  }));
}

async function refresh() {
  try {
    const [c, b, d, v] = await Promise.all([getJSON("api/v1/campaign"), getJSON("api/v1/balance"),
      getJSON("api/v1/devices"), getJSON("api/v1/validity")]);
    renderCampaign(c); renderBalance(b); renderDevices(d); renderValidity(v);
    $("link").dataset.state = "live"; $("link").textContent = "live";
    document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || 0) + 1);
  } catch (e) {
    $("link").dataset.state = "lost"; $("link").textContent = "connection lost, retrying…";
  }
}
refresh();
setInterval(refresh, 2000);
