// The server's sentences in Chinese, in the standard's terms (DB11/T 1156: 实测, 物料平衡, 平衡偏差率,
// 审核重点 …). The analyzer writes its reasons, fixes and messages in English with their figures in
// them; this catalog matches each kind of sentence and says it again in Chinese with the same
// figures, and node and stream ids become their names (name_zh of the campaign file). A sentence no
// pattern knows is shown as it is: the browser tests (tests/web/test_views.py) fail on any English
// word left on a Chinese page, so a new sentence in the analyzer needs its pattern here.
"use strict";
const ZH_PATTERNS = [];
function zhPattern(re, fn) { ZH_PATTERNS.push([re, fn]); }
const ZH_PHRASES = [];
function zhPhrase(en, zh) { ZH_PHRASES.push([en, zh]); }

function zhMessage(s) {
  if (!s) return "";
  let out = String(s);
  for (const [re, fn] of ZH_PATTERNS) out = out.replace(re, (...m) => fn(...m));
  for (const [en, zh] of ZH_PHRASES) out = out.split(en).join(zh);
  return zhIds(out);
}

// node and stream ids standing as words in a sentence: their Chinese names
function zhIds(s) {
  const names = (typeof NAMES !== "undefined" && NAMES) || {};
  const ids = Object.assign({}, ...Object.entries(names.streams || {}).map(([k, v]) => ({ [k]: v.zh })),
    ...Object.entries(names.nodes || {}).map(([k, v]) => ({ [k]: v.zh })));
  const keys = Object.keys(ids).sort((a, b) => b.length - a.length);
  if (!keys.length) return s;
  const re = new RegExp(`(?<![\\w.:/-])(${keys.map((k) => k.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|")})(?![\\w.:/-])`, "g");
  return s.replace(re, (m) => ids[m] || m);
}

const STD = "DB11/T 1156";
// English: the node ids a balance message lists become their names too
function enMessage(s) {
  return String(s || "").replace(/(closure beyond [\d.]+ % at )([^:]+)(:)/g, (m, a, list, c) =>
    a + list.split(", ").map((x) => x.replace(/^(\S+)(?= [+-])/, (id) => id === "overall" ? "overall"
      : (NAMES.nodes || {})[id] ? NAMES.nodes[id].en : id)).join(", ") + c);
}
const zhHours = (x) => `${x} 小时`;
// -- balances (analyzer/balance.py, material.py) -------------------------------------------------
zhPattern(/every node closes within ([\d.]+) % \(DB11\/T 1156 7\.3\.4 b\)/g, (m, l) => `各单元平衡偏差率均在 ${l} % 以内（${STD} 7.3.4 b）`);
zhPattern(/closure beyond ([\d.]+) % at (.+?): find the cause and measure again \(7\.3\.4 b\)/g,
  (m, l, at) => `平衡偏差率超出 ${l} %：${at.replace(/overall/g, "总体")}；应查明原因并重新实测（7.3.4 b）`);
zhPattern(/over (\d+) whole production cycles?/g, (m, n) => `按 ${n} 个完整生产周期`);
zhPattern(/energy supplied per node in kgce; no node has a metered energy output, so no closure is judged/g,
  () => "各单元能源供入量以 kgce 计；无单元有计量的能量输出，故不判定平衡偏差率");
zhPattern(/every point valid over all ([\d.]+) h/g, (m, h) => `全部 ${h} 小时内各监测点均有效`);
// -- validity (analyzer/validity.py, production.py) ---------------------------------------------
zhPattern(/^valid: every clause of DB11\/T 1156 7\.3\.3\.3 is met/g, () => `有效：满足 ${STD} 7.3.3.3 各款要求`);
zhPattern(/\(remarks: ([^)]*)\)/g, (m, r) => `（备注：${r}）`);
zhPattern(/(\d+) complete cycle\(s\) at load, (\d+) required/g, (m, a, b) => `达到负荷的完整周期 ${a} 个，需 ${b} 个`);
zhPattern(/(\d+) consecutive complete cycles from (\S+) with the best coverage \(([\d.]+%)\)/g,
  (m, n, at, c) => `自 ${isoShown(at.replace(/(\+\d\d:\d\d)$/, ":00$1"))} 起连续 ${n} 个完整周期，数据完整率最高（${c}）`);
zhPattern(/no skew data in the store \(the collector records it as (\S+); a generated campaign has none\): synchrony judged on the time spans only/g,
  (m, tag) => `数据库中无时钟偏差数据（由采集程序记录为 ${tag}；生成的实测数据没有）：同步性仅按时间跨度判定`);
zhPattern(/run the campaign through cpaudit collect to record the skew/g, () => "通过 cpaudit collect 采集实测数据，以记录时钟偏差");
zhPattern(/（备注：([^）]*)）/g, (m, r) => `（备注：${r.split(", ").map((x) => typeof checkName === "function" ? checkName(x) : x).join("、")}）`);
zhPattern(/^not valid: (\d+) check\(s\) fail — first (\S+): /g, (m, n, c) => `尚未有效：${n} 项检查不通过，首先是 ${typeof checkName === "function" ? checkName(c) : c}：`);
zhPattern(/keep measuring without a break: ([\d.]+) h more/g, (m, h) => `继续不间断实测：还需 ${h} 小时`);
zhPattern(/([\d.]+) h of continuous measurement, ([\d.]+) h required; (\d+) break\(s\) longer than (\d+) s on a main stream/g,
  (m, a, b, n, s) => `已连续实测 ${a} 小时，需 ${b} 小时；主要物流上超过 ${s} 秒的中断 ${n} 次`);
zhPattern(/([\d.]+) h at load without a break, ([\d.]+) h required/g, (m, a, b) => `达到负荷且不间断 ${a} 小时，需 ${b} 小时`);
zhPattern(/(\d+) complete production cycle\(s\)( at load)? of (\d+) required \(([^)]*)\)/g,
  (m, a, load, b, how) => `${load ? "达到负荷的" : ""}完整生产周期 ${a} 个，需 ${b} 个（${how.replace(/^steps /, "工序 ")
    .replace("steps not known before a first cycle", "首个周期前工序未知").replace("cycles from the marked boundaries; steps not checked", "按标记的周期起点；未核对工序")}）`);
zhPattern(/(\d+) below the average load do not count/g, (m, n) => `${n} 个低于平均负荷的周期不计`);
zhPattern(/no complete cycle yet: the first one started at (\S+)/g, (m, at) => `尚无完整周期：第一个周期始于 ${at}`);
zhPattern(/no complete cycle yet: no balance window/g, () => "尚无完整周期：无平衡时段");
zhPattern(/no cycle counts \(none complete at load\): no balance window/g, () => "无可计入的周期（无达到负荷的完整周期）：无平衡时段");
zhPattern(/over ([\d.e-]+) (h|cycles?) that count, fewer than the ([\d.]+) required \(DB11\/T 1156 7\.3\.3\.3 e\): not a valid balance yet/g,
  (m, a, u, b) => u === "h" ? `计入时长 ${Number(a).toFixed(2)} 小时，少于要求的 ${b} 小时（${STD} 7.3.3.3 e）：尚非有效平衡`
    : `可计入的完整周期 ${a} 个，少于要求的 ${b} 个（${STD} 7.3.3.3 e）：尚非有效平衡`);
zhPattern(/(\d+) cycle\(s\) that count, fewer than the (\d+) required \(7\.3\.3\.3 e\): not a valid balance yet/g,
  (m, a, b) => `可计入的周期 ${a} 个，少于要求的 ${b} 个（7.3.3.3 e）：尚非有效平衡`);
zhPattern(/no (material|water|energy) streams in the flowsheet/g, (m, l) => `流程中无${{ material: "物料", water: "水", energy: "能源" }[l]}物流`);
zhPattern(/no pollutant factors configured \(pollutants\.factors\)/g, () => "未配置特征污染因子（pollutants.factors）");
zhPattern(/no pollutant readings in the window/g, () => "时段内无污染物读数");
zhPattern(/no valid hour (?:at any point|for) ?:? ?/g, () => "无有效小时：");
zhPattern(/some streams have no total over the window: /g, () => "部分物流在时段内无累计量：");
zhPattern(/no good readings yet from /g, () => "尚无有效读数：");
zhPattern(/no balance yet: no complete production cycle \(([^)]*)\) in the /g, (m, s) => `尚无平衡：无完整生产周期（${s}）于`);
zhPattern(/no balance: /g, () => "无平衡：");
zhPattern(/no measured streams/g, () => "无计量物流");
// coverage, synchrony, calibration, conditions, units, manual (analyzer/validity.py)
zhPattern(/no samples at all from (\S+) \(device (\S+)\)/g, (m, t, d) => `${t} 无任何数据（设备 ${d}）`);
zhPattern(/([\d.]+%) of the ticks good, below (\d+%)/g, (m, a, b) => `有效数据 ${a}，低于 ${b}`);
zhPattern(/([\d.]+%) of the ticks good/g, (m, a) => `有效数据 ${a}`);
zhPattern(/(\d+) gap\(s\), the longest ([\d.]+) (s|min|h)/g, (m, n, d, u) => `缺测 ${n} 段，最长 ${d} ${{ s: "秒", min: "分钟", h: "小时" }[u]}`);
zhPattern(/, no gap/g, () => "，无缺测");
zhPattern(/restore (\S+): look at device (\S+) \(link, power, address\)/g, (m, t, d) => `恢复 ${t}：检查设备 ${d}（通讯线路、电源、地址）`);
zhPattern(/the streams' meters have no time span in common/g, () => "各物流仪表没有共同的计量时段");
zhPattern(/inputs and outputs measured together over ([\d.]+%) of the window \((\S+) to (\S+)\)/g,
  (m, s, a, b) => `输入与输出同时计量的时间占时段的 ${s}（${a} 至 ${b}）`);
zhPattern(/started late: /g, () => "开始较晚："); zhPattern(/stopped early: /g, () => "结束较早：");
zhPattern(/start every meter at the same time \(7\.3\.3\.3 e: synchronously\)/g, () => "所有仪表同时开始计量（7.3.3.3 e：同步）");
zhPattern(/poll start times spread ([\d.]+) ms on average, ([\d.]+) ms at worst across devices within a tick/g,
  (m, a, b) => `同一采集周期内各设备的采集起始时间平均相差 ${a} ms，最大 ${b} ms`);
zhPattern(/over ([\d.]+) ms in (\d+) minute\(s\)/g, (m, a, n) => `${n} 分钟内超过 ${a} ms`);
zhPattern(/too many devices on one line or a slow device: split the polling/g, () => "同一线路设备过多或设备响应慢：分开采集");
zhPattern(/bring the calibration certificate of (\S+) up to date \(7\.3\.3\.3 c\)/g, (m, d) => `更新 ${d} 的检定证书（7.3.3.3 c）`);
zhPattern(/device (\S+) \(([^)]*)\) has no calibration certificate in the campaign file/g, (m, d, t) => `设备 ${d}（${t}）在实测配置中无检定证书`);
zhPattern(/certificate (\S+) valid until (\S+)/g, (m, c, d) => `检定证书 ${c} 有效期至 ${d}`);
zhPattern(/certificate (\S+) expired on (\S+), inside the window \((\S+) to (\S+)\)/g, (m, c, d, a, b) => `检定证书 ${c} 于 ${d} 到期，在时段内（${a} 至 ${b}）`);
zhPattern(/certificate (\S+) valid only from (\S+), after the window starts \((\S+)\)/g, (m, c, d, a) => `检定证书 ${c} 自 ${d} 起有效，晚于时段开始（${a}）`);
zhPattern(/process conditions not recorded: /g, () => "未记录工况参数：");
zhPattern(/(\d+) process condition\(s\) recorded beside their streams/g, (m, n) => `已随物流记录 ${n} 项工况参数`);
zhPattern(/restore the temperature\/pressure readings/g, () => "恢复温度/压力读数");
zhPattern(/every one of the (\d+) stream tags has a unit its balance can convert, once and explicitly/g, (m, n) => `全部 ${n} 个物流测点的单位均可明确换算`);
zhPattern(/give each tag the unit its meter reports/g, () => "为每个测点填写其仪表输出的单位");
zhPattern(/no stream is entered by hand/g, () => "无人工录入的物流");
zhPattern(/(\d+) stream\(s\) entered by hand/g, (m, n) => `${n} 条物流为人工录入`);
zhPattern(/readings marked manual in /g, () => "标记为人工读数：");
zhPattern(/(\d+) of (\d+) streams measured/g, (m, a, b) => `${b} 条物流中 ${a} 条实测`);
zhPattern(/ theoretical or manual with a source/g, () => " 为理论值或有依据的人工值");
zhPattern(/no data at all from /g, () => "无任何数据：");
zhPattern(/\(7\.3\.3\.3 a, b: main inlets and outlets must be measured\)/g, () => "（7.3.3.3 a、b：主要输入输出须实测）");
zhPattern(/^measure /g, () => "实测 ");
// hints (analyzer/validity.py _hints)
zhPattern(/(\S+) silent for the last 10 minutes(?: \(last good reading (\S+)\))?: look at device (\S+)/g,
  (m, t, at, d) => `${t} 最近 10 分钟无数据${at ? `（最后有效读数 ${at}）` : ""}：检查设备 ${d}`);
zhPattern(/coverage of (\S+) falling: (\d+%) in the last hour \(([\d.]+%) overall\): look at device (\S+)/g,
  (m, t, a, b, d) => `${t} 数据完整率下降：最近一小时 ${a}（总体 ${b}）：检查设备 ${d}`);
zhPattern(/load dip: (\S+) (\S+) in the last hour, below the average (\S+); hours below the average do not count/g,
  (m, v, u, a) => `负荷下降：最近一小时 ${v} ${u}，低于平均 ${a}；低于平均负荷的小时不计`);
zhPattern(/the last cycle ran at (\S+) (\S+), below the average (\S+): it will not count/g,
  (m, v, u, a) => `上一周期负荷 ${v} ${u}，低于平均 ${a}：不计入`);
zhPattern(/load (\S+) (\S+) over (\d+) complete cycle\(s\) against the audit period's average (\S+) (\S+) \([^)]*\)+/g,
  (m, v, u, n, a, u2) => `${n} 个完整周期的负荷 ${v} ${u}，审核期平均 ${a} ${u2}`);
zhPattern(/(\S+) h from (\S+) with the best coverage \(([\d.]+%)\) and load/g, (m, h, at, c) => `自 ${at} 起 ${h} 小时，数据完整率（${c}）与负荷最佳`);
// pollutants (analyzer/pollutant.py)
const place = (p) => ((typeof NAMES !== "undefined" && NAMES.places) || {})[p] || p;
zhPattern(/^water, with (.+)$/g, (m, p) => `随${place(p)}排入水体`);
zhPattern(/^air, through (.+)$/g, (m, p) => `经${place(p)}排入大气`);
zhPattern(/^not emitted at the last point \((.+) stays inside the site\)$/g, (m, p) => `末端点不外排（${place(p)}留在厂内）`);
zhPattern(/^an hour counts when each tag it needs has (\d+%) of its expected readings good .*$/gs,
  (m, f) => `某小时有效：所需各测点的有效读数不少于应有读数的 ${f}（pollutants.valid_hour_fraction；HJ 76-2017 附录 B，转引自 CEMS 厂商资料；HJ 75-2017 原文未查得）；周期分析仪的分钟数据以其周期结果到达为准；CEMS 状态非正常的分钟不计，记为无效`);
// the API's own errors (web/api.py) that a page shows
zhPattern(/missing or wrong access token \(Authorization: Bearer \.\.\.\)/g, () => "访问令牌缺失或错误");
zhPattern(/changes need an access token: start the server with CPAUDIT_TOKEN/g, () => "修改需要访问令牌：以环境变量 CPAUDIT_TOKEN 启动服务器");
// changes asked for in the office and what the edge box said (store/changes.py, web/api.py)
zhPattern(/^(\S+) already has a reading at (\d+); retract it first or choose another time$/g,
  (m, tag, ts) => `${tag} 在 ${ts} 已有读数：请先撤销，或选择其他时间`);
zhPattern(/^no manual reading of (\S+) at (\d+) to retract$/g, (m, tag, ts) => `${tag} 在 ${ts} 没有可撤销的人工读数`);
zhPattern(/^signature: not signed with this edge box's key for this campaign$/g, () => "签名不符：不是用本边缘设备为本次实测设置的密钥签名");
zhPattern(/^this campaign's edge box takes no change from the office .*$/g, () => "本次实测的现场边缘设备不接受办公室提出的更改（其数据汇未设置 changes_key_env）：请在边缘设备上操作");
zhPattern(/^ts: the campaign cannot stop before it started$/g, () => "时间：实测不能在开始之前结束");
zhPhrase("overall", "总体");
// duration and load (analyzer/production.py), balance windows (analyzer/window.py)
zhPattern(/keep measuring: (\d+) more complete cycle\(s\)( at load)?/g, (m, n, l) => `继续实测：还需 ${n} 个${l ? "达到负荷的" : ""}完整周期`);
zhPattern(/keep measuring without a break and at load: ([\d.]+) h more/g, (m, h) => `继续在负荷下不间断实测：还需 ${h} 小时`);
zhPattern(/(\d+) hour\(s\) below the audit period's average load do not count and break the run \(7\.3\.3\.3 e, f\), from (\S+)/g,
  (m, n, at) => `低于审核期平均负荷的 ${n} 小时不计，并中断连续实测（7.3.3.3 e、f），自 ${at} 起`);
zhPattern(/not counted: /g, () => "不计入：");
zhPattern(/below the (?:audit period's )?average load: (\S+) < (\S+) (\S+?)(?: \(7\.3\.3\.3 f\))?(?=[);,]|$)/g, (m, v, a, u) => `低于审核期平均负荷：${v} < ${a} ${u}`);
zhPattern(/below the audit period's average load \(7\.3\.3\.3 f\)/g, () => "低于审核期平均负荷（7.3.3.3 f）");
zhPattern(/ and (\d+) more/g, (m, n) => ` 等另 ${n} 个`);
zhPattern(/ and completes at about (\S+) \(nominal ([\d.]+) h a cycle\)/g, (m, at, h) => `，约于 ${at} 完成（每周期名义 ${h} 小时）`);
zhPattern(/ and completes at the next start \(([^)]*)\)/g, (m, w) => `，至下一周期开始时完成（${w}）`);
zhPattern(/no complete cycle yet, and no cycle start seen: a cycle counts from its start \(([^)]*)\) to the next one/g,
  (m, w) => `尚无完整周期，也未见周期开始：一个周期自其开始（${w}）至下一周期开始`);
zhPattern(/the first complete cycle ends at the earliest at about (\S+), at the latest about (\S+) \(nominal ([\d.]+) h a cycle\)/g,
  (m, a, b, h) => `第一个完整周期最早约于 ${a}、最迟约于 ${b} 结束（每周期名义 ${h} 小时）`);
zhPattern(/(\S+) entering state (\S+)/g, (m, t, s) => `${t} 进入状态 ${s}`);
zhPattern(/the next marked boundary/g, () => "下一个标记的周期起点");
zhPattern(/no complete cycle yet: the load is judged per cycle \(so far (\S+) (\S+) over the window\) against the audit period's average (\S+) (\S+) \(per [^;]*?\)(?=;|$)/g,
  (m, v, u, a, u2) => `尚无完整周期：负荷按周期判定（目前时段内 ${v} ${u}），审核期平均负荷 ${a} ${u2}（依据见实测配置）`);
zhPattern(/load (\S+) (\S+) (over the window|over \d+ complete cycle\(s\)(?: at load)?) against the audit period's average (\S+) (\S+) \(per [^;]*?\)(?=;|$)/g,
  (m, v, u, over, a, u2) => `${over === "over the window" ? "时段内" : over.replace(/over (\d+) complete cycle\(s\)( at load)?/, (x, n, l) => `${n} 个${l ? "达到负荷的" : ""}完整周期`)}负荷 ${v} ${u}，审核期平均负荷 ${a} ${u2}（依据见实测配置）`);
zhPattern(/(\d+) (cycle|hour|day)\(s\) below it do not count \(7\.3\.3\.3 f\)/g, (m, n, p) => `其中 ${n} 个${{ cycle: "周期", hour: "小时", day: "天" }[p]}低于平均负荷，不计（7.3.3.3 f）`);
zhPattern(/(\d+) hour\(s\) below it do not count \(7\.3\.3\.3 f\), from (\S+)/g, (m, n, at) => `其中 ${n} 小时低于平均负荷，不计（7.3.3.3 f），自 ${at} 起`);
zhPattern(/(\S+) at ([\d.]+) (\S+?)(?=,|$)/g, (m, at, v, u) => /^\d{4}-/.test(at) ? `${at} 为 ${v} ${u}` : m);
zhPattern(/the periods below the average load do not count \(7\.3\.3\.3 f\): measure at normal load to have enough at load/g,
  () => "低于平均负荷的时段不计（7.3.3.3 f）：应在正常负荷下实测，以获得足够的达标时段");
zhPattern(/no load figure yet: (\S+) has too few good readings in the window/g, (m, t) => `尚无负荷数据：${t} 在时段内有效读数过少`);
zhPattern(/restore (\S+) \(device (\S+)\)/g, (m, t, d) => `恢复 ${t}（设备 ${d}）`);
zhPattern(/declare the load tag and the audit period's average load/g, () => "填写负荷测点和审核期平均负荷");
zhPattern(/declare requirements\.cycles in the campaign file/g, () => "在实测配置中填写 requirements.cycles");
zhPattern(/(\d+) consecutive cycle\(s\) from (\S+) to (\S+)/g, (m, n, a, b) => `自 ${a} 至 ${b} 连续 ${n} 个周期`);
zhPattern(/every one of the (\d+) cycle\(s\)/g, (m, n) => `全部 ${n} 个周期`);
zhPattern(/(\d+) left out/g, (m, n) => `${n} 个未采用`);
zhPattern(/(\d+) of them do not count/g, (m, n) => `其中 ${n} 个不计`);
zhPattern(/a break of (\d+) s on a main stream \(7\.3\.3\.3 e\)/g, (m, s) => `主要物流中断 ${s} 秒（7.3.3.3 e）`);
zhPattern(/at load without a break, but not in the longest run \(a balance is one window\)/g, () => "负荷达标且无中断，但不在最长连续时段内（平衡只取一个时段）");
zhPattern(/([\d.]+) h from (\S+) to (\S+)/g, (m, h, a, b) => `自 ${a} 至 ${b} 共 ${h} 小时`);
zhPattern(/no run at load yet/g, () => "尚无达到负荷的连续时段");
zhPattern(/(\d+) period\(s\) left out/g, (m, n) => `${n} 个时段未采用`);
zhPattern(/(\d+) period\(s\) in it do not count/g, (m, n) => `其中 ${n} 个时段不计`);
zhPattern(/fewer than the ([\d.]+) h at load without a break required \(7\.3\.3\.3 e\): not a valid balance yet/g,
  (m, h) => `少于要求的 ${h} 小时负荷达标的不间断实测（7.3.3.3 e）：尚非有效平衡`);
// -- the central list of campaigns (web/fleet.py, fleet.js): its words, merged into I18N there -----
const FLEET_I18N = {
  en: {
    fleet_title: "Campaigns", fleet_database: "InfluxDB", fleet_site: "Site", fleet_campaign: "Campaign",
    fleet_last_data: "Last data", fleet_validity: "Validity", fleet_worst: "Worst closure",
    fleet_status_at: "Edge status at", fleet_behind: "Forwarded behind the edge by",
    fleet_note: "Every campaign the edge boxes forward to this InfluxDB. A row opens the campaign as its edge box shows it, live; nothing can be changed here (405): start, stop, mark cycles and enter readings on the edge box.",
    fleet_empty: "No campaign has forwarded its records here yet.",
    fleet_running: "running", fleet_stopped: "stopped", "fleet_no-data": "no data",
    fleet_computing: "computing…", fleet_updating: "updating", fleet_never: "never",
    fleet_ago: "ago", fleet_s: "s", fleet_min: "min", fleet_h: "h", fleet_d: "d",
    fleet_no_config: "no campaign configuration: the edge box forwarded none",
    fleet_bad_config: "campaign configuration broken", fleet_no_answer: "InfluxDB did not answer for this campaign",
    fleet_not_judged: "not judged yet", fleet_failed: "figures failed",
    fleet_invalid: "not valid yet", fleet_valid: "valid ✓", "fleet_no-data_v": "no data yet",
  },
  zh: {
    fleet_title: "实测项目", fleet_database: "InfluxDB", fleet_site: "企业", fleet_campaign: "实测项目",
    fleet_last_data: "最新数据", fleet_validity: "有效性", fleet_worst: "最大平衡偏差率",
    fleet_status_at: "现场终端状态时间", fleet_behind: "转发滞后于现场终端",
    fleet_note: "各现场终端转发到本 InfluxDB 的全部实测项目。点击一行即按现场终端的界面实时查看该项目；此处不能作任何修改（405）：开始、结束、标记周期和录入读数请在现场终端上进行。",
    fleet_empty: "尚无实测项目转发记录到此处。",
    fleet_running: "进行中", fleet_stopped: "已结束", "fleet_no-data": "无数据",
    fleet_computing: "计算中…", fleet_updating: "更新中", fleet_never: "从未",
    fleet_ago: "前", fleet_s: "秒", fleet_min: "分钟", fleet_h: "小时", fleet_d: "天",
    fleet_no_config: "无实测配置：现场终端未转发",
    fleet_bad_config: "实测配置有误", fleet_no_answer: "InfluxDB 未响应该项目的查询",
    fleet_not_judged: "尚未判定", fleet_failed: "计算失败",
    fleet_invalid: "尚未有效", fleet_valid: "有效 ✓", "fleet_no-data_v": "尚无数据",
  },
};
