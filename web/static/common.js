// Shared by every page: language (English / 中文, terms as in DB11/T 1156), fetching from
// /api/v1, the live link indicator and the refresh loop (short polling of small documents; a lost
// connection is shown and the loop keeps trying, so it recovers by itself).
"use strict";
const I18N = {
  en: {
    audit_focus: "audit focus", nav_campaign: "Campaign", nav_balances: "Balances",
    nav_devices: "Devices", nav_explorer: "Tag explorer", nav_exports: "Exports",
    elapsed: "Elapsed", of: "of", h_required: "h required (7.3.3.3 e)",
    devices_online: "Devices online", samples_recorded: "samples recorded",
    validity_card: "Campaign validity (7.3.3.3)", material_card: "Material balance",
    what_to_fix: "What to fix", check: "Check", clause: "Clause", status: "Status",
    reason: "Reason", fix: "Fix", load_chart: "Production load against the audit period's average",
    closure_per_node: "Closure per node", limit: "limit", node: "Node", inputs_kg: "Inputs [kg]",
    outputs_kg: "Outputs [kg]", deviation_kg: "Deviation [kg]", closure_pct: "Closure [%]",
    device: "Device", model: "Model", state: "State", latency_ms: "Latency [ms]",
    lateness_ms: "Lateness [ms]", success_rate: "Success [%]", last_value: "Last value",
    last_seen: "Last seen", sinks: "Forwarding to InfluxDB", sink: "Sink",
    backlog: "Backlog [samples]", forwarded: "Forwarded", errors: "Errors",
    since_last: "Since last forward [s]", no_sinks: "No InfluxDB sink configured: the raw data stay in the embedded store.",
    undeliverable: "Refused [samples]", store: "Embedded store", store_ok: "writing",
    store_failing: "refusing writes (disk full?): readings wait in memory",
    store_pending: "waiting in memory", store_errors: "failed writes", store_lost: "not kept",
    material: "Material", water: "Water", energy: "Energy", pollutant: "Pollutants",
    verdict: "Verdict", reconciliation: "Reconciliation", diagram: "Balance diagram",
    diagram_note: "every flow with its amount and unit; unit border: closure within the limit green, beyond red, not judged grey",
    closure_over_time: "Closure over time", nodes_table: "Nodes", tag: "Tag", range: "Range",
    all: "all", explorer_note: "Zoom with the mouse: the server sends at most 1,000 buckets (min, mean, max) for any range; gaps stay gaps.",
    exports_title: "Report tables and diagrams (for the DB11/T 1040 report)",
    xlsx: "Campaign report, XLSX (one sheet per table, units in headers)",
    json: "Campaign report, JSON (validity, balances, reconciliation)",
    validity_json: "Validity report, JSON",
    csv_note: "All of them at once:",
    csv_title: "Each table as CSV (units in the header)",
    manual_title: "Enter a manual reading (stored as manual, never as measured)",
    value: "Value", token: "Access token", store: "Store",
    live: "live", lost: "connection lost, retrying…", connecting: "connecting…",
    closes: "closes ✓", exceeds: "exceeds limit", incomplete: "incomplete", waiting: "waiting",
    valid: "valid ✓", not_valid: "not valid yet", within: "✓ within limit", beyond: "✗ beyond limit",
    overall: "Overall", duration_met: "duration met from", no_window: "no common window yet",
    best_window: "Best window", cumulative: "cumulative since start", trailing: "trailing",
    average: "audit-period average", load: "load", hourly_mean: "hourly mean",
    global_test: "Global test", accepted: "consistent with the meters' accuracy",
    rejected: "not consistent with the meters' accuracy", suspects: "Most likely gross errors",
    leak_at: "an unmetered loss (leak) at", bias_on: "a biased meter on",
    cannot_tell: "the data cannot tell it apart from", no_suspect: "No gross error found",
    detect_note: "Meters with low detectability could hide an error; see the export.",
    collected: "collected", emitted: "emitted", removal: "removal", fugitive: "fugitive",
    factor: "Factor", destination: "destination", indicators: "Indicators", losses: "Losses",
    carriers: "Energy carriers", units_eff: "Units: supplied, effective, efficiency",
    stored: "stored as manual", dof: "degrees of freedom",
    queued: "sent to the edge box, applied there when it next reads its changes",
    changes_title: "Changes asked for in the office, and what the edge box made of them",
    asked_at: "Asked for", change_kind: "Change", change_what: "What", change_state: "State",
    change_why: "Why", change_start: "start", change_stop: "stop", change_cycle_mark: "cycle mark",
    change_manual: "manual reading", change_retract: "retraction", state_pending: "pending",
    state_applied: "applied ✓", state_refused: "refused ✗",
    control_title: "Campaign control (needs the access token)", start_campaign: "Start the campaign now",
    stop_campaign: "Stop the campaign now", mark_cycle: "Mark a cycle boundary now",
    times_in: "times in", time: "Time", closure_axis: "Closure", amount: "Amount",
    per_cycle: "per completed production cycle", per_window: "per trailing window of",
    cycle_end: "cycle ended", window_end: "window ended", limit_band: "limit band ±",
    accepted_window: "the table's window", table_agrees: "the table's window (same balance as the table)",
    fails_in: "beyond the limit in", of_points: "of", no_history: "no completed cycle yet: a closure taken mid-cycle is not judged",
    no_history_cont: "not enough data yet for a trailing window",
    supply_only: "Supply only: no node of this layer has a metered output, so no closure is judged (7.3.4); the figures below are what was supplied.",
    supplied: "Supplied", effective: "Effective", efficiency: "Efficiency", carrier: "Carrier",
    indicator: "Indicator", loss_what: "Loss or output", share_input: "share of input",
    unaccounted: "unaccounted (inputs − outputs − accumulation)", stale_note: "figures as of the last contact, not live",
    online: "online", offline: "offline", stale: "stale", unknown: "unknown",
    pass: "pass", fail: "fail", warning: "warning", na: "not applicable",
    mean: "mean", minmax: "min–max", cycles_unit: "cycles", h_unit: "h",
    required_of: "required", load_axis: "Load", value_axis: "Value", per_hour: "per hour",
    elapsed_stopped: "stopped", supply_verdict: "supply only", raw: "raw readings", rollup: "per-minute rollup", required_suffix: "required (7.3.3.3 e)", closure_formula: "(inputs − outputs) / inputs", cycles_done: "complete cycles",
  },
  zh: {
    audit_focus: "审核重点", nav_campaign: "实测", nav_balances: "平衡", nav_devices: "设备",
    nav_explorer: "数据浏览", nav_exports: "导出", elapsed: "实测时长", of: "共需",
    h_required: "小时（7.3.3.3 e）", devices_online: "在线设备", samples_recorded: "条数据已记录",
    validity_card: "实测有效性（7.3.3.3）", material_card: "物料平衡", what_to_fix: "待整改",
    check: "检查项", clause: "条款", status: "状态", reason: "原因", fix: "整改",
    load_chart: "生产负荷与审核期平均负荷", closure_per_node: "各单元平衡偏差", limit: "限值",
    node: "单元", inputs_kg: "输入 [kg]", outputs_kg: "输出 [kg]", deviation_kg: "偏差 [kg]",
    closure_pct: "偏差率 [%]", device: "设备", model: "型号", state: "状态",
    latency_ms: "响应 [ms]", lateness_ms: "滞后 [ms]", success_rate: "成功率 [%]",
    last_value: "最新值", last_seen: "最近通讯", sinks: "转发至 InfluxDB", sink: "目标",
    backlog: "积压 [条]", forwarded: "已转发", errors: "错误", since_last: "距上次转发 [s]",
    no_sinks: "未配置 InfluxDB：原始数据保存在本地数据库。",
    undeliverable: "被拒收 [条]", store: "本地数据库", store_ok: "写入正常",
    store_failing: "拒绝写入（磁盘已满？）：读数暂存于内存", store_pending: "内存中待写入",
    store_errors: "写入失败次数", store_lost: "未保存",
    material: "物料平衡", water: "水平衡", energy: "能量平衡", pollutant: "特征污染因子平衡",
    verdict: "结论", reconciliation: "数据协调", diagram: "平衡图",
    diagram_note: "每条物流标注数量与单位；单元边框：平衡偏差率在限值内为绿色，超限为红色，未判定为灰色",
    closure_over_time: "偏差率随时间变化", nodes_table: "各单元", tag: "测点", range: "时段",
    all: "全部", explorer_note: "可用鼠标缩放：服务器对任何时段最多返回 1000 个区间（最小、平均、最大）；缺测保持为空。",
    exports_title: "报告用表格与图（DB11/T 1040 审核报告）",
    xlsx: "实测报告 XLSX（每表一页，表头含单位）", json: "实测报告 JSON（有效性、平衡、数据协调）",
    validity_json: "实测有效性报告 JSON", csv_note: "一次导出全部：",
    csv_title: "各表 CSV（表头含单位）",
    manual_title: "录入人工读数（标记为人工录入，不作为实测）", value: "数值", token: "访问令牌",
    store: "保存", live: "实时", lost: "连接中断，正在重试…", connecting: "连接中…",
    closes: "平衡 ✓", exceeds: "超出限值", incomplete: "数据不全", waiting: "等待数据",
    valid: "有效 ✓", not_valid: "尚未有效", within: "✓ 在限值内", beyond: "✗ 超出限值",
    overall: "总体", duration_met: "满足时长最早于", no_window: "尚无共同时段",
    best_window: "最佳时段", cumulative: "自开始累计", trailing: "滑动窗口",
    average: "审核期平均", load: "负荷", hourly_mean: "小时均值",
    global_test: "整体检验", accepted: "与仪表精度相符", rejected: "与仪表精度不符",
    suspects: "最可能的粗大误差", leak_at: "未计量流失（泄漏）于", bias_on: "仪表偏差于",
    cannot_tell: "数据无法与下列情况区分", no_suspect: "未发现粗大误差",
    detect_note: "可检测性低的仪表可能隐藏误差，详见导出表。",
    collected: "收集", emitted: "排放", removal: "去除率", fugitive: "无组织",
    factor: "污染因子", destination: "去向", indicators: "指标", losses: "流失",
    carriers: "能源品种", units_eff: "用能单元：供入、有效、效率",
    stored: "已作为人工读数保存", dof: "自由度",
    queued: "已发往现场边缘设备，该设备下次读取时生效",
    changes_title: "在办公室提出的更改及现场边缘设备的处理结果",
    asked_at: "提出时间", change_kind: "更改", change_what: "内容", change_state: "状态",
    change_why: "原因", change_start: "开始实测", change_stop: "结束实测", change_cycle_mark: "周期标记",
    change_manual: "人工读数", change_retract: "撤销", state_pending: "待处理",
    state_applied: "已生效 ✓", state_refused: "已拒绝 ✗",
    control_title: "实测控制（需访问令牌）", start_campaign: "现在开始实测", stop_campaign: "现在结束实测",
    mark_cycle: "标记生产周期起点",
    times_in: "时间按", time: "时间", closure_axis: "平衡偏差率", amount: "数量",
    per_cycle: "按已完成的生产周期", per_window: "按滑动窗口",
    cycle_end: "周期结束于", window_end: "窗口结束于", limit_band: "限值带 ±",
    accepted_window: "下表的时段", table_agrees: "下表的时段（与下表同一平衡）",
    fails_in: "超限次数", of_points: "/", no_history: "尚无已完成的生产周期：周期中途的平衡偏差不作判定",
    no_history_cont: "数据尚不足一个滑动窗口",
    supply_only: "仅供入：该层无单元有计量的输出，故不判定平衡偏差（7.3.4）；下列为供入量。",
    supplied: "供入", effective: "有效", efficiency: "效率", carrier: "能源品种",
    indicator: "指标", loss_what: "流失或产出", share_input: "占输入比例",
    unaccounted: "未计量（输入 − 输出 − 累积）", stale_note: "数据停留在最后一次连接时，非实时",
    online: "在线", offline: "离线", stale: "数据陈旧", unknown: "未知",
    pass: "通过", fail: "不通过", warning: "警告", na: "不适用",
    mean: "平均值", minmax: "最小–最大", cycles_unit: "个周期", h_unit: "小时",
    required_of: "需", load_axis: "负荷", value_axis: "数值", per_hour: "每小时",
    elapsed_stopped: "已结束", supply_verdict: "仅供入", raw: "原始读数", rollup: "分钟汇总", required_suffix: "（7.3.3.3 e）", closure_formula: "平衡偏差率 =（输入 − 输出）/ 输入", cycles_done: "个完整周期",
  },
};
let LANG = localStorage.getItem("cpaudit.lang") === "zh" ? "zh" : "en";
const $ = (id) => document.getElementById(id);
const t = (key) => (I18N[LANG] && I18N[LANG][key]) || I18N.en[key] || key;
const NAMES = JSON.parse(($("names") || {}).textContent || "{}");
// a node's or a stream's name in the page's language (the campaign file's name / name_zh)
const nodeName = (id) => id === "overall" ? t("overall") :
  ((NAMES.nodes || {})[id] ? NAMES.nodes[id][LANG] || NAMES.nodes[id].en : id);
const streamName = (id) => (NAMES.streams || {})[id] ? NAMES.streams[id][LANG] || NAMES.streams[id].en : id;
const nameOf = (o) => (LANG === "zh" && o.name_zh) ? o.name_zh : (o.name || o.node || o.id);
// a sentence from the server in the page's language (web/static/messages.js)
const say = (s) => (LANG === "zh" && typeof zhMessage === "function") ? zhMessage(s) :
  (typeof enMessage === "function" ? enMessage(s) : (s || ""));
const fmt = (x, d = 1) => (x === null || x === undefined || Number.isNaN(x)) ? "–" :
  Number(x).toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });

// -- one time zone on every page: the campaign's (body data-tz), named in the header and on axes
const TZ = document.body.dataset.tz || "UTC";
const DTF = new Intl.DateTimeFormat("en-CA", { timeZone: TZ, year: "numeric", month: "2-digit",
  day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
function zparts(ms) {
  return Object.fromEntries(DTF.formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
}
function tzOffsetMin(ms) {
  const p = zparts(ms);
  return Math.round((Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second) -
    Math.floor(ms / 1000) * 1000) / 60000);
}
// "2026-12-01 21:56:00": the wall-clock time in the campaign's zone; charts get these strings,
// so plotly draws the campaign's hours whatever the browser's zone
function zoned(ms) {
  const p = zparts(ms);
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
}
const zonedMin = (ms) => zoned(ms).slice(0, 16);
// back from a wall-clock string of the campaign's zone (a chart's range) to epoch ms
function fromZoned(s) {
  const naive = Date.parse(String(s).replace(" ", "T").slice(0, 23) + "Z");
  return naive - tzOffsetMin(naive - tzOffsetMin(naive) * 60000) * 60000;
}
const isoShown = (iso) => iso ? zonedMin(Date.parse(iso)) : "–";   // a server ISO time, shown
function tzLabel() {
  const off = tzOffsetMin(Date.now()), a = Math.abs(off);
  return `${TZ}, UTC${off < 0 ? "−" : "+"}${String(Math.floor(a / 60)).padStart(2, "0")}:${String(a % 60).padStart(2, "0")}`;
}
// axes: every one carries its quantity and unit (plotly.js 3 wants title: {text})
const timeAxis = (extra = {}) => ({ title: { text: `${t("time")} (${tzLabel()})` }, type: "date",
  tickformat: "%m-%d %H:%M", hoverformat: "%Y-%m-%d %H:%M:%S", ...extra });
const valueAxis = (quantity, unit, extra = {}) => ({ title: { text: `${quantity} [${unit}]` }, ...extra });
const PLOT_CFG = { displaylogo: false, responsive: true };

function applyLang() {
  document.documentElement.lang = LANG === "zh" ? "zh-CN" : "en";
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  const focus = $("focus");
  if (focus) focus.textContent = focus.dataset[LANG] || focus.dataset.en;
  $("lang").textContent = LANG === "zh" ? "English" : "中文";
  $("lang").dataset.lang = LANG;
  $("tzname").textContent = tzLabel();
  const link = $("link");
  link.textContent = t(link.dataset.state);
  document.dispatchEvent(new Event("langchange"));
}
$("lang").addEventListener("click", () => {
  LANG = LANG === "zh" ? "en" : "zh";
  localStorage.setItem("cpaudit.lang", LANG);
  applyLang();
});

async function getJSON(path, timeoutMs = 20000) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeoutMs);
  try {
    const r = await fetch(path, { cache: "no-store", signal: ctl.signal });
    if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
    return await r.json();
  } finally { clearTimeout(timer); }
}

// -- live or stale: a lost connection greys every figure out (body.stale) until the server answers
function setLink(state) {
  const link = $("link");
  link.dataset.state = state;
  link.textContent = t(state);
  const stale = state === "lost";
  const was = document.body.classList.contains("stale");
  document.body.classList.toggle("stale", stale);
  document.body.dataset.stale = stale ? "1" : "0";
  document.body.title = stale ? t("stale_note") : "";
  if (was && !stale) document.dispatchEvent(new Event("reconnect"));
}

// the heartbeat: a small document every 2 s, so a page that refreshes its figures rarely still
// shows within seconds that they are no longer live
const HEARTBEAT_MS = 2000;
async function heartbeat() {
  // a page that is no campaign's (the central list) names its own small document
  try { await getJSON(document.body.dataset.heartbeat || "api/v1/campaign", 3000); setLink("live"); } catch (e) { setLink("lost"); }
  setTimeout(heartbeat, HEARTBEAT_MS);
}

// Run ``fn`` now and every ``ms``; a failure marks the page stale and never stops the loop, and the
// loop runs again at once when the connection comes back.
function every(ms, fn) {
  let timer = null, running = false;
  async function tick() {
    if (running) return;
    running = true;
    clearTimeout(timer);
    try {
      await fn();
      setLink("live");
      document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || 0) + 1);
    } catch (e) {
      setLink("lost");
    } finally {
      running = false;
      timer = setTimeout(tick, ms);
    }
  }
  document.addEventListener("reconnect", tick);
  tick();
}

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

// a table made by script goes in a box that scrolls sideways by itself, never the page
function scrollBox(table) {
  const box = document.createElement("div");
  box.className = "scroll";
  box.appendChild(table);
  return box;
}

// a check's id ("coverage:hot_wort.total") in words; the tag or device after the colon is a name
const CHECKS = { en: { streams: "streams measured", coverage: "coverage", synchrony: "synchrony", skew: "clock skew",
    polling: "polling", calibration: "calibration", conditions: "process conditions", units: "units",
    manual: "manual entries", duration: "duration", load: "production load" },
  zh: { streams: "计量覆盖", coverage: "数据完整率", synchrony: "同步性", skew: "时钟偏差", polling: "采集",
    calibration: "检定", conditions: "工况参数", units: "计量单位", manual: "人工录入", duration: "实测时长",
    load: "生产负荷" } };
function checkName(id) {
  const [k, rest] = id.split(/:(.*)/s);
  const w = (CHECKS[LANG] || {})[k] || CHECKS.en[k] || k;
  return rest ? `${w}: ${rest}` : w;
}

applyLang();
heartbeat();
