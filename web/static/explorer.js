// Tag explorer: any tag over any range, downsampled on the server (min/mean/max per bucket).
// Zooming asks the server again for the zoomed range (finer buckets, down to the raw readings);
// the default range fits the data (the campaign's first to its newest reading).
"use strict";
let tagsLoaded = false, busy = false, pending = null, span = null, units = {};

async function loadTags() {
  const d = await getJSON("api/v1/tags");
  const sel = $("tag");
  sel.replaceChildren(...d.tags.map((x) => {
    units[x.tag] = x.unit;
    const o = document.createElement("option"); o.value = x.tag; o.textContent = `${x.tag} [${x.unit}]`; return o;
  }));
  const saved = localStorage.getItem("cpaudit.tag");
  if (saved && d.tags.some((x) => x.tag === saved)) sel.value = saved;
  tagsLoaded = true;
}

// [from, to] in epoch ms: the zoomed range, else the last ``hours`` of the data, else all of it
function defaultRange() {
  const hours = Number($("range").value);
  if (!span) return [undefined, undefined];
  const lo = hours > 0 ? Math.max(span[0], span[1] - hours * 3600e3) : span[0];
  return [lo, span[1]];
}

async function draw(fromMs, toMs) {
  if (busy) { pending = [fromMs, toMs]; return; }     // the newest request wins, none is lost
  busy = true;
  try {
    if (fromMs === undefined) [fromMs, toMs] = defaultRange();
    const tag = $("tag").value;
    let q = `api/v1/series?tag=${encodeURIComponent(tag)}&points=1000`;
    if (fromMs !== undefined) q += `&from=${Math.floor(fromMs) * 1e6}&to=${Math.ceil(toMs) * 1e6}`;
    const t0 = performance.now();
    const s = await getJSON(q);
    const x = s.t_ms.map((ms) => zoned(ms));
    const unit = s.unit || units[tag] || "";
    const el = $("series");
    await Plotly.react(el, [
      { x, y: s.max, name: "max", mode: "lines", line: { width: 0 }, showlegend: false, connectgaps: false, hoverinfo: "skip" },
      { x, y: s.min, name: t("minmax"), mode: "lines", line: { width: 0 }, fill: "tonexty", fillcolor: "rgba(47,125,209,0.2)", connectgaps: false },
      { x, y: s.mean, name: t("mean"), mode: "lines", line: { color: "#2f7dd1" }, connectgaps: false },
    ], { margin: { t: 10, r: 10, b: 50, l: 70 }, height: 460, xaxis: timeAxis({ range: [zoned(s.start_ns / 1e6), zoned(s.end_ns / 1e6)] }),
      yaxis: valueAxis(tag, unit), legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom" } }, PLOT_CFG);
    el.dataset.points = String(s.t_ms.length);
    el.dataset.bucketS = String(s.bucket_s);
    el.dataset.fromNs = String(s.start_ns);
    el.dataset.toNs = String(s.end_ns);
    el.dataset.requests = String(Number(el.dataset.requests || 0) + 1);
    $("seriesinfo").textContent = `${s.t_ms.length} × ${fmt(s.bucket_s, s.bucket_s < 10 ? 2 : 0)} s (${s.source === "raw" ? t("raw") : t("rollup")}), ${fmt(performance.now() - t0, 0)} ms`;
  } finally {
    busy = false;
    if (pending) { const p = pending; pending = null; draw(p[0], p[1]).catch(() => setLink("lost")); }
  }
}

async function start() {
  await loadTags();
  await draw();
  // zoom or pan: the server again for the new range; a double click (autorange) back to the default
  $("series").on("plotly_relayout", (e) => {
    if (e["xaxis.range[0]"] !== undefined) {
      draw(fromZoned(e["xaxis.range[0]"]), fromZoned(e["xaxis.range[1]"])).catch(() => setLink("lost"));
    } else if (e["xaxis.autorange"]) {
      draw().catch(() => setLink("lost"));
    }
  });
}

$("tag").addEventListener("change", () => { localStorage.setItem("cpaudit.tag", $("tag").value); draw().catch(() => setLink("lost")); });
$("range").addEventListener("change", () => draw().catch(() => setLink("lost")));
document.addEventListener("langchange", () => { if (tagsLoaded) draw().catch(() => {}); });
every(30000, async () => {
  const c = await getJSON("api/v1/campaign");
  const last = c.last_ts ? c.last_ts / 1e6 : Date.now();
  span = [c.start_ns ? c.start_ns / 1e6 : last - 3600e3, last + 1];
  if (!tagsLoaded) await start();
});
