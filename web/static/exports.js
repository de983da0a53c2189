// Exports page: downloads come straight from /api/v1; PNG is drawn from the SVG in the browser;
// a manual reading needs the access token.
"use strict";
document.querySelectorAll("a.png").forEach((a) => a.addEventListener("click", async (e) => {
  e.preventDefault();
  const layer = a.dataset.layer;
  const svg = await (await fetch(`api/v1/sankey.svg?layer=${layer}&lang=${LANG}`)).text();
  const img = new Image();
  const url = URL.createObjectURL(new Blob([svg], { type: "image/svg+xml" }));
  img.onload = () => {
    const c = document.createElement("canvas");
    c.width = img.width * 2; c.height = img.height * 2;
    const g = c.getContext("2d");
    g.fillStyle = "#fff"; g.fillRect(0, 0, c.width, c.height); g.scale(2, 2); g.drawImage(img, 0, 0);
    const out = document.createElement("a");
    out.href = c.toDataURL("image/png"); out.download = `sankey-${layer}-${LANG}.png`; out.click();
    URL.revokeObjectURL(url);
  };
  img.src = url;
}));

async function loadTags() {
  const d = await getJSON("api/v1/tags");
  $("mtag").replaceChildren(...d.tags.map((x) => {
    const o = document.createElement("option"); o.value = x.tag; o.textContent = `${x.tag} [${x.unit}]`; return o;
  }));
}

$("manual").addEventListener("submit", async (e) => {
  e.preventDefault();
  const r = await fetch("api/v1/manual", { method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${$("mtoken").value}` },
    body: JSON.stringify({ tag: $("mtag").value, value: Number($("mvalue").value) }) });
  const body = await r.json();
  // centrally (202) the reading is on its way to the edge box: the list below says when it lands
  $("mresult").textContent = r.status === 202 ? `${t("queued")}: ${body.queued.body.tag} = ${body.queued.body.value}`
    : r.ok ? `${t("stored")}: ${body.stored.tag} = ${body.stored.value}` : say(body.error);
  $("mresult").className = "small " + (r.ok ? "ok" : "bad");
  if (r.status === 202) loadChanges();
});
document.querySelectorAll("button.ctl").forEach((b) => b.addEventListener("click", async () => {
  const r = await fetch(`api/v1/${b.dataset.action}`, { method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${$("mtoken").value}` },
    body: "{}" });
  const body = await r.json();
  $("ctlresult").textContent = r.status === 202 ? `${t(b.dataset.i18n)}: ${t("queued")}`
    : r.ok ? `${t(b.dataset.i18n)}: ✓ ${body.end ? isoShown(body.end) : body.start ? isoShown(body.start) : ""}` : say(body.error);
  $("ctlresult").className = "small " + (r.ok ? "ok" : "bad");
  if (r.status === 202) loadChanges();
}));
// the changes asked for in the office, and what the edge box made of them
async function loadChanges() {
  const d = await getJSON("api/v1/changes");
  $("changes").hidden = !d.changes.length && !d.may_ask;
  $("changelist").replaceChildren(...d.changes.map((x) => {
    const tr = document.createElement("tr");
    const b = x.body || {};
    const when = (ns) => Number.isFinite(Number(ns)) && Number(ns) > 0 ? zonedMin(Number(ns) / 1e6) : "–";
    // a reading: tag = value; a retraction: the tag and the time of the reading it retracts
    const what = b.tag ? (b.value !== undefined ? `${b.tag} = ${b.value}` : `${b.tag} @ ${when(b.ts)}`) : when(b.ts);
    for (const [text, cls] of [[when(x.asked_at ?? x.at), ""],
      [t("change_" + x.kind), ""], [what, "proper"], [t("state_" + x.state), x.state === "refused" ? "bad" : x.state === "applied" ? "ok" : ""],
      [x.why ? say(x.why) : "", "small"]]) {
      const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; tr.appendChild(td);
    }
    return tr;
  }));
}
async function loadTables() {
  const d = await getJSON("api/v1/tables");
  $("csvlist").replaceChildren(...d.tables.map((name) => {
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = `api/v1/export.csv?table=${encodeURIComponent(name)}`;
    a.textContent = `${name}.csv`;
    a.dataset.table = name;
    a.className = "proper";          // a file's name, the same in either language
    li.appendChild(a);
    return li;
  }));
}
every(60000, async () => {
  if (!$("mtag").options.length) await loadTags();
  if (!$("csvlist").children.length) await loadTables();
});
every(10000, loadChanges);
document.addEventListener("langchange", loadChanges);      // its words are the language's
