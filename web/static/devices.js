// Devices page: state, success rate, latency, lateness, last value; InfluxDB backlog. 1 s refresh,
// so a device going bad shows within one poll interval.
"use strict";
function renderDevices(d) {
  $("devfull").querySelector("tbody").replaceChildren(...d.devices.map((x) => {
    const tr = document.createElement("tr");
    tr.dataset.device = x.name;
    cell(tr, x.name, "proper"); cell(tr, x.model, "model proper").title = x.model;
    cell(tr, t(x.state), x.online ? "ok" : "bad").dataset.state = x.state;
    cell(tr, x.success_rate === null ? "–" : fmt(100 * x.success_rate, 1));
    cell(tr, fmt(x.latency_ms, 1)); cell(tr, fmt(x.lateness_ms, 1));
    cell(tr, x.value === null ? "–" : `${fmt(x.value, 2)} ${x.value_unit || ""} (${x.value_tag})`, x.value_good === false ? "bad" : "");
    cell(tr, x.last_ts ? zoned(x.last_ts / 1e6) : "–");   // the campaign's zone, as on every page
    return tr;
  }));
  $("sinks").querySelector("tbody").replaceChildren(...d.sinks.map((s) => {
    const tr = document.createElement("tr");
    tr.dataset.sink = s.name;
    cell(tr, `${s.name} (${s.kind})`, "proper"); cell(tr, fmt(s.backlog, 0), s.backlog > 0 ? "bad" : "ok");
    cell(tr, fmt(s.forwarded, 0)); cell(tr, fmt(s.errors, 0)); cell(tr, fmt(s.since_last_forward_s, 1));
    cell(tr, s.undeliverable === null ? "–" : fmt(s.undeliverable, 0), s.undeliverable > 0 ? "bad" : "");
    return tr;
  }));
  $("nosinks").textContent = d.sinks.length ? "" : t("no_sinks");
  // the collector's own store: a full disk shows here, not only in the log
  const st = d.store || {};
  const el = $("store");
  el.className = st.ok === 0 ? "bad" : "ok";
  el.textContent = st.ok === null || st.ok === undefined ? "–" :
    `${st.ok === 0 ? t("store_failing") : t("store_ok")} · ${t("store_pending")} ${fmt(st.pending_rows || 0, 0)}` +
    ` · ${t("store_errors")} ${fmt(st.write_errors || 0, 0)}` +
    (st.lost_rows ? ` · ${t("store_lost")} ${fmt(st.lost_rows, 0)}` : "");
}
every(1000, async () => renderDevices(await getJSON("api/v1/devices")));
