// The central list (web/fleet.py): every campaign of this InfluxDB with its state, newest data,
// validity, worst closure and how far behind its edge box is; each row opens the campaign's own
// pages under c/<site>/<campaign>/. Every figure from api/v1/campaigns, refreshed every 5 s.
"use strict";
for (const lang of Object.keys(FLEET_I18N)) Object.assign(I18N[lang], FLEET_I18N[lang]);
applyLang();

let rows = [];
const ZONED = {};
// a time in its campaign's zone (the list may hold campaigns of several zones)
function whenIn(ns, tz) {
  if (ns === null || ns === undefined) return t("fleet_never");
  const z = tz || "UTC";
  ZONED[z] = ZONED[z] || new Intl.DateTimeFormat("en-CA", { timeZone: z, year: "numeric",
    month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  const p = Object.fromEntries(ZONED[z].formatToParts(new Date(ns / 1e6)).map((x) => [x.type, x.value]));
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}${z === TZ ? "" : ` (${z})`}`;
}
function dur(s) {
  if (s === null || s === undefined) return "–";
  const [v, u] = s < 120 ? [s, "fleet_s"] : s < 7200 ? [s / 60, "fleet_min"] :
    s < 172800 ? [s / 3600, "fleet_h"] : [s / 86400, "fleet_d"];
  return `${fmt(v, 0)} ${t(u)}`;
}
const age = (s) => s === null || s === undefined ? "" : LANG === "zh" ? `${dur(s)}${t("fleet_ago")}` : `${dur(s)} ${t("fleet_ago")}`;
function twoLines(td, first, second, cls) {
  td.textContent = "";
  const a = document.createElement("div");
  a.textContent = first;
  if (cls) a.className = cls;
  td.appendChild(a);
  if (second) {
    const b = document.createElement("div");
    b.className = "small";
    b.textContent = second;
    td.appendChild(b);
  }
}

function validityCell(td, r) {
  const f = r.figures;
  if (r.config_error) {
    const [head, ...rest] = r.config_error.split(": ");
    const key = /no campaign configuration/.test(head) ? "fleet_no_config"
      : /did not answer/.test(head) ? "fleet_no_answer" : "fleet_bad_config";
    twoLines(td, t(key), "", "bad");
    if (key !== "fleet_no_config") {
      const code = document.createElement("code");
      code.className = "small proper";
      code.textContent = rest.join(": ") || head;
      td.appendChild(code);
    }
    td.dataset.verdict = "config";
    return;
  }
  if (!f) { twoLines(td, t("fleet_computing"), "", "unknown"); td.dataset.verdict = "pending"; return; }
  if (f.error && !f.verdict) { twoLines(td, t("fleet_failed"), "", "bad"); td.dataset.verdict = "error"; return; }
  const word = f.verdict === "valid" ? t("fleet_valid") : f.verdict === "no-data" ? t("fleet_no-data_v") : t("fleet_invalid");
  twoLines(td, word, say(f.message) + (r.pending ? ` · ${t("fleet_updating")}` : "") +
    (f.error ? ` · ${t("fleet_failed")}` : ""),
    f.verdict === "valid" ? "ok" : f.verdict === "no-data" ? "unknown" : "bad");
  td.dataset.verdict = f.verdict;
}

function worstCell(td, r) {
  const w = r.figures && r.figures.worst;
  td.dataset.layer = w ? w.layer : "";
  if (!w) { twoLines(td, r.figures && !r.figures.error ? t("fleet_not_judged") : "–", "", "unknown"); return; }
  const ok = w.limit_pct === null || Math.abs(w.closure_pct) <= w.limit_pct;
  twoLines(td, `${fmt(w.closure_pct, 2)} %`, `${t(w.layer)} · ${t("limit")} ${fmt(w.limit_pct, 1)} %`, ok ? "ok" : "bad");
  td.dataset.closure = String(w.closure_pct);
}

function render() {
  const body = document.querySelector("#fleet tbody");
  body.textContent = "";
  $("empty").hidden = rows.length > 0;
  for (const r of rows) {
    const tr = document.createElement("tr");
    tr.dataset.site = r.site;
    tr.dataset.campaign = r.campaign;
    tr.dataset.state = r.state;
    cell(tr, r.site || "–", "proper");
    const name = cell(tr, "", "proper");
    if (r.config_error) name.textContent = r.name;
    else {
      const a = document.createElement("a");
      a.href = r.href;
      a.textContent = r.name;
      name.appendChild(a);
    }
    cell(tr, t(`fleet_${r.state}`), r.state === "running" ? "ok" : "unknown");
    twoLines(cell(tr, ""), whenIn(r.last_data_ns, r.timezone), age(r.last_data_age_s));
    validityCell(cell(tr, "", "verdict"), r);
    worstCell(cell(tr, "", "worst"), r);
    const bl = cell(tr, r.edge.backlog === null ? "–" : fmt(r.edge.backlog, 0), "backlog");
    bl.dataset.backlog = r.edge.backlog === null ? "" : String(r.edge.backlog);
    twoLines(cell(tr, ""), whenIn(r.edge.at_ns, r.timezone), age(r.edge.age_s));
    cell(tr, dur(r.edge.behind_s), "behind");
    tr.addEventListener("click", (e) => {
      if (!r.config_error && e.target.tagName !== "A") location.href = r.href;
    });
    body.appendChild(tr);
  }
  document.body.dataset.rows = String(rows.length);
  document.body.dataset.pending = String(rows.filter((r) => r.pending || (!r.figures && !r.config_error)).length);
}

every(5000, async () => { rows = (await getJSON("api/v1/campaigns")).campaigns; render(); });
document.addEventListener("langchange", render);
