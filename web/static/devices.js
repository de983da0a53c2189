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
    return tr;
  }));
  $("nosinks").textContent = d.sinks.length ? "" : t("no_sinks");
}
every(1000, async () => renderDevices(await getJSON("api/v1/devices")));
