"""What a Chinese page may show in Latin letters: units, proper names (DB11/T, InfluxDB, COD …),
identifiers (tags, devices, file names) and elements marked ``.proper``. ``FIND_ENGLISH`` runs in
the page and returns every other English word with the text around it."""
from __future__ import annotations

# units and symbols of the layers (SI and the standards' own: kgce, Nm3), names of standards,
# products, substances and formats; two-letter-or-longer words only are looked at
ALLOWED = sorted({
    "kg", "kgce", "kWh", "MWh", "Nm", "Nm3", "m3", "MPa", "kPa", "kJ", "GJ", "ms", "min", "mg", "L",
    "UTC", "GB", "DB", "HJ", "JJG", "IAPWS", "IF", "CIP", "UASB", "COD", "BOD", "NH", "SO", "NOx",
    "TN", "TP", "SS", "InfluxDB", "SQLite", "SVG", "PNG", "XLSX", "JSON", "CSV", "English", "cpaudit",
    "Asia", "Shanghai", "Europe", "Berlin", "Modbus", "MQTT", "RTU", "TCP", "PLC", "CEMS", "IoT",
    "DN", "RS", "Authorization", "Bearer", "CPAUDIT", "TOKEN",
    "collect", "export", "serve", "demo",   # cpaudit's commands
    "KROHNE", "IFC", "TUF", "Bell", "VFM", "CHINT", "DTSU", "Xuedilong", "SCS", "UV", "kcal",
})

FIND_ENGLISH = r"""(allowed) => {
  const ok = new Set(allowed);
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!el || el.closest("script, style, .proper, [hidden], .modebar, title")) continue;
    const r = el.getBoundingClientRect();
    if (!r.width && !r.height) continue;               // not shown
    for (const word of n.textContent.split(/[\s,;:()（）、，；：\[\]=·→/]+/)) {
      if (/[_.@]|\d/.test(word.replace(/[.。]$/, ""))) continue;   // an identifier: tag, device, file, figure
      for (const w of word.match(/[A-Za-z]{2,}/g) || []) {
        if (!ok.has(w)) out.push(`${w} — ${n.textContent.trim().slice(0, 120)}`);
      }
    }
  }
  return out;
}"""
