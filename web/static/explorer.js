// Tag explorer: any tag over any range, downsampled on the server (min/mean/max per bucket);
// zooming asks the server again for the zoomed range.
"use strict";
let tagsLoaded = false, busy = false, lastMs = null;   // the newest reading (the campaign may be over)

async function loadTags() {
  const d = await getJSON("api/v1/tags");
  const sel = $("tag");
  sel.replaceChildren(...d.tags.map((x) => {
    const o = document.createElement("option"); o.value = x.tag; o.textContent = `${x.tag} [${x.unit}]`; return o;
  }));
  const saved = localStorage.getItem("cpaudit.tag");
  if (saved && d.tags.some((x) => x.tag === saved)) sel.value = saved;
  tagsLoaded = true;
}

async function draw(fromMs, toMs) {
  if (busy) return;
  busy = true;
  try {
    const tag = $("tag").value;
    let q = `api/v1/series?tag=${encodeURIComponent(tag)}&points=1000`;
    const hours = Number($("range").value);
    if (fromMs !== undefined) q += `&from=${Math.floor(fromMs * 1e6)}&to=${Math.ceil(toMs * 1e6)}`;
    else if (hours > 0 && lastMs) q += `&from=${(lastMs - hours * 3600e3) * 1e6}`;
    const t0 = performance.now();
    const s = await getJSON(q);
    const x = s.t_ms.map((ms) => new Date(ms));
    Plotly.react("series", [
      { x, y: s.max, name: "max", mode: "lines", line: { width: 0 }, showlegend: false, connectgaps: false },
      { x, y: s.min, name: "min–max", mode: "lines", line: { width: 0 }, fill: "tonexty", fillcolor: "rgba(47,125,209,0.2)", connectgaps: false },
      { x, y: s.mean, name: "mean", mode: "lines", line: { color: "#2f7dd1" }, connectgaps: false },
    ], { margin: { t: 10, r: 10, b: 40, l: 60 }, height: 460, yaxis: { title: s.unit }, uirevision: tag },
    { displaylogo: false, responsive: true });
    $("series").dataset.points = String(s.t_ms.length);
    $("seriesinfo").textContent = `${s.t_ms.length} × ${fmt(s.bucket_s, s.bucket_s < 10 ? 2 : 0)} s (${s.source}), ${fmt(performance.now() - t0, 0)} ms`;
  } finally { busy = false; }
}

$("tag").addEventListener("change", () => { localStorage.setItem("cpaudit.tag", $("tag").value); draw(); });
$("range").addEventListener("change", () => draw());
every(30000, async () => {
  const c = await getJSON("api/v1/campaign");
  lastMs = c.last_ts ? c.last_ts / 1e6 : Date.now();
  if (!tagsLoaded) {
    await loadTags();
    draw();
    $("series").on("plotly_relayout", (e) => {
      if (e["xaxis.range[0]"]) draw(new Date(e["xaxis.range[0]"]).getTime(), new Date(e["xaxis.range[1]"]).getTime());
    });
  }
});
