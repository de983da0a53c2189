"""cpaudit command line.

    cpaudit check CONFIG                        validate; exit 0, or print errors and exit 2
    cpaudit simulate CONFIG [--leak NODE[:F]] [--scenario FILE] [--fault '...'] [--origin T]
                                                run the simulated site (Modbus servers, MQTT)
    cpaudit generate CONFIG --hours H --store PATH [--scenario FILE] [--fault '...'] [--origin T]
                                                write a simulated campaign into a store, fast
    cpaudit collect CONFIG --store PATH         poll the devices into the store
    cpaudit analyze CONFIG --store PATH [--from T] [--to T] [--json] [--validity-only]
    cpaudit serve CONFIG --store PATH [--host H] [--port P]
    cpaudit demo [--config C] [--store S] [--port P] [--leak NODE[:F]]
    cpaudit hj212 decode FILE [--json] [--crc V] [--tz Z]   decode an HJ 212 capture
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import ipaddress
import json
import logging
import os
import re
from pathlib import Path
import signal
import sys
from typing import Any, Sequence
from zoneinfo import ZoneInfo

from cpaudit import config as cfgmod

EXIT_CONFIG = 2
DEFAULT_CONFIG = os.path.join(os.path.dirname(cfgmod.__file__), "examples", "brewery.yaml")


def _load(path: str) -> cfgmod.Config:
    try:
        return cfgmod.load(path)
    except cfgmod.ConfigError as e:
        print(str(e), file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


def _leak(text: str | None) -> tuple[str, float] | None:
    if not text:
        return None
    node, _, frac = text.partition(":")
    try:
        f = float(frac) if frac else 0.10
    except ValueError:
        raise argparse.ArgumentTypeError(f"--leak {text!r}: fraction must be a number") from None
    if not 0 < f < 1:
        raise argparse.ArgumentTypeError(f"--leak {text!r}: fraction must be between 0 and 1")
    return node, f


def _time(text: str | None, tz: str) -> int | None:
    """``--from/--to``: ns since the epoch, or ISO 8601. A time without an offset is read in the
    campaign's zone; where that zone's clocks change, a local time that never happened (spring
    forward) or happened twice (fall back) is refused with both readings named, not guessed."""
    if text is None:
        return None
    if re.fullmatch(r"-?[0-9]+", text):
        ns = int(text) if len(text) <= 20 else 2**63
        if not -2**63 <= ns < 2**63:
            raise SystemExit(f"cpaudit: time {text!r} is outside the range of the store "
                             "(ns since the epoch, 1677-2262)")
        return ns
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        raise SystemExit(f"cpaudit: bad time {text!r}; use ISO 8601, e.g. 2026-11-24T08:00+08:00")
    if t.tzinfo is None:
        zone = ZoneInfo(tz)
        early, late = t.replace(tzinfo=zone, fold=0), t.replace(tzinfo=zone, fold=1)
        if early.utcoffset() != late.utcoffset():
            back = early.astimezone(dt.timezone.utc).astimezone(zone)
            if back.replace(tzinfo=None) != t:
                raise SystemExit(
                    f"cpaudit: {text} does not exist in {tz}: the clocks went forward over it "
                    f"({_offset(early)} -> {_offset(late)}); give the time with its offset")
            raise SystemExit(
                f"cpaudit: {text} happened twice in {tz} (the clocks went back): say which, "
                f"{t.isoformat()}{_offset(early)} or {t.isoformat()}{_offset(late)}")
        t = early
    ns = (t - _EPOCH) // dt.timedelta(microseconds=1) * 1000     # exact, not through a float
    if not -2**63 <= ns < 2**63:
        raise SystemExit(f"cpaudit: time {text!r} is outside 1677-2262, the range of the store")
    return ns


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def _offset(t: dt.datetime) -> str:
    off = t.utcoffset() or dt.timedelta(0)
    sign = "-" if off < dt.timedelta(0) else "+"
    m = abs(int(off.total_seconds())) // 60
    return f"{sign}{m // 60:02d}:{m % 60:02d}"


def _run_async(coro_factory: Any) -> int:
    """Run an async main with SIGINT/SIGTERM setting a stop event (clean shutdown)."""
    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await coro_factory(stop)
    asyncio.run(runner())
    return 0


# -- commands ---------------------------------------------------------------------------------
def cmd_check(a: argparse.Namespace) -> int:
    cfg = _load(a.config)
    print(f"{a.config}: ok — {len(cfg.devices)} devices, {len(cfg.tag_index())} tags, "
          f"{len(cfg.flowsheet.nodes)} nodes, {len(cfg.flowsheet.streams)} streams")
    return 0


def _scenario(a: argparse.Namespace) -> Any:
    """The scenario file and --fault options, validated together (file:line: field on error)."""
    from pydantic import ValidationError

    from cpaudit.config.loader import describe, read_text, validate_text
    from cpaudit.config.scenario import Scenario, parse_fault
    faults: list[Any] = []
    name = ""
    if getattr(a, "scenario", None):
        try:
            sc = validate_text(read_text(a.scenario), a.scenario, Scenario, what="a scenario")
        except cfgmod.ConfigError as e:
            print(str(e), file=sys.stderr)
            raise SystemExit(EXIT_CONFIG) from None
        assert isinstance(sc, Scenario)
        faults, name = list(sc.faults), sc.name
    for text in getattr(a, "fault", None) or []:
        try:
            faults.append(Scenario.model_validate({"faults": [parse_fault(text)]}).faults[0])
        except ValidationError as e:
            print(f"cpaudit: --fault {text!r}: {'; '.join(describe(e, skip=2))}",
                  file=sys.stderr)
            raise SystemExit(EXIT_CONFIG) from None
        except ValueError as e:
            print(f"cpaudit: --fault {text!r}: {e}", file=sys.stderr)
            raise SystemExit(EXIT_CONFIG) from None
    return Scenario(name=name, faults=faults) if faults else None


def _origin(a: argparse.Namespace, cfg: cfgmod.Config) -> float | None:
    t = _time(getattr(a, "origin", None), cfg.campaign.timezone)
    return None if t is None else t / 1e9


def cmd_simulate(a: argparse.Namespace) -> int:
    from cpaudit.simulators.live import run
    cfg = _load(a.config)
    leak = _leak(a.leak)
    if leak and leak[0] not in {n.id for n in cfg.flowsheet.nodes}:
        print(f"cpaudit: --leak: unknown node {leak[0]!r}", file=sys.stderr)
        return EXIT_CONFIG
    scenario = _scenario(a)
    origin = _origin(a, cfg)
    try:
        return _run_async(lambda stop: run(cfg, leak, stop, scenario, origin))
    except ValueError as e:
        print(f"cpaudit: simulate: {e}", file=sys.stderr)
        return EXIT_CONFIG


def cmd_generate(a: argparse.Namespace) -> int:
    from cpaudit.simulators.generate import generate
    from cpaudit.store import SQLiteStore
    cfg = _load(a.config)
    scenario = _scenario(a)
    origin = _origin(a, cfg)
    st = SQLiteStore(a.store)
    _keep_config(st, a.config)
    try:
        def progress(x: float) -> None:
            if not a.quiet:
                print(f"\r  {x:6.1%}", end="", file=sys.stderr, flush=True)
        stats = generate(cfg, st, a.hours, start=origin, scenario=scenario, leak=_leak(a.leak),
                         progress=progress)
    except ValueError as e:
        print(f"\ncpaudit: generate: {e}", file=sys.stderr)
        return EXIT_CONFIG
    finally:
        st.close()
    tz = ZoneInfo(cfg.campaign.timezone)
    t0 = dt.datetime.fromtimestamp(stats.start_ns / 1e9, tz).isoformat(timespec="seconds")
    t1 = dt.datetime.fromtimestamp(stats.end_ns / 1e9, tz).isoformat(timespec="seconds")
    print(f"{'' if a.quiet else chr(10)}{a.store}: {stats.samples} samples of {len(stats.tags)} "
          f"tags, {t0} to {t1} ({a.hours:g} h) in {stats.seconds:.1f} s"
          + (f"; {len(scenario.faults)} faults" if scenario else ""))
    return 0


def cmd_collect(a: argparse.Namespace) -> int:
    from cpaudit.collector.forwarding import Forwarding
    from cpaudit.collector.service import Collector
    from cpaudit.store import SQLiteStore
    cfg = _load(a.config)
    st = SQLiteStore(a.store)
    _keep_config(st, a.config)

    async def go(stop: asyncio.Event) -> None:
        # the sinks are built here, beside the collector: it records, they forward the record
        await Collector(cfg, st, beside=[Forwarding.from_config(cfg, st)]).run(stop)
    try:
        return _run_async(go)
    finally:
        st.close()


def _open_store(cfg_path: str | None, store_path: str) -> tuple[Any, Any] | int:
    """(config, store) for analyze/export: the store a SQLite path or an InfluxDB URL (see
    store.url); without a config file, the one the edge box forwarded with its data."""
    from cpaudit.store import StoreError
    from cpaudit.store.url import open_store
    try:
        st = open_store(store_path)
    except StoreError as e:
        print(f"cpaudit: {e}", file=sys.stderr)
        return 1
    if cfg_path is not None:
        return _load(cfg_path), st
    try:
        text = st.campaign_config()
    except StoreError as e:
        st.close()
        print(f"cpaudit: {e}", file=sys.stderr)
        return 1
    if text is None:
        st.close()
        print(f"cpaudit: {store_path} carries no campaign configuration; give the config file",
              file=sys.stderr)
        return 2
    try:
        return cfgmod.load_text(text, f"<configuration forwarded with {store_path}>"), st
    except cfgmod.ConfigError as e:
        st.close()
        print(e, file=sys.stderr)
        return 2


def _keep_config(st: Any, path: str) -> None:
    """The configuration travels with the data: a central reader of the forwarded copy needs
    nothing typed by hand (the file as it was when collection started)."""
    try:
        with open(path, encoding="utf-8") as f:
            st.keep_config(f.read())
    except (OSError, UnicodeDecodeError):
        pass


def _report(a: argparse.Namespace, validity_only: bool = False, alpha: float = 0.05
            ) -> tuple[Any, dict[str, Any]] | int:
    """(config, report document) for the store and window of ``a``, or an exit code. With
    ``validity_only`` the document holds the campaign's name and its validity alone."""
    from cpaudit.analyzer.iotools import campaign_report, validity_from_store
    from cpaudit.store import StoreError
    opened = _open_store(a.config, a.store)
    if isinstance(opened, int):
        return opened
    cfg, st = opened
    tz = cfg.campaign.timezone
    start, end = _time(a.start, tz), _time(a.end, tz)
    try:
        if validity_only:
            v = validity_from_store(cfg, st, start, end)
            return cfg, {"campaign": cfg.campaign.name, "validity": v.to_dict()}
        return cfg, campaign_report(cfg, st, start, end, alpha=alpha,
                                    window=getattr(a, "window", None))
    except StoreError as e:
        print(f"cpaudit: {e}", file=sys.stderr)
        return 1
    finally:
        st.close()


def cmd_analyze(a: argparse.Namespace) -> int:
    got = _report(a, a.validity_only, a.alpha)
    if isinstance(got, int):
        return got
    cfg, doc = got
    if a.json:
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return 0
    _print_validity(doc["validity"], cfg.campaign.timezone)
    if not a.validity_only:
        _print_balances(cfg, doc)
    return 0


def cmd_resend(a: argparse.Namespace) -> int:
    """Forward an edge box's whole record again (after an upgrade that changed the series)."""
    from cpaudit.store import StoreError
    from cpaudit.store.forward import resend
    from cpaudit.store.sqlite import SQLiteStore
    if not os.path.exists(a.store):
        print(f"cpaudit: {a.store}: no such store", file=sys.stderr)
        return 2
    try:
        st = SQLiteStore(a.store)
        try:
            was = resend(st, a.sink or None)
        finally:
            st.close()
    except StoreError as e:
        print(f"cpaudit: {e}", file=sys.stderr)
        return 1
    if not was:
        print(f"cpaudit: {a.store} has forwarded to no sink yet: nothing to send again")
    for name, cur in was.items():
        print(f"{name}: forwards again from the first sample (it stood at write {cur:,}); "
              "the next run of the collector sends it")
    return 0


def cmd_change_key(a: argparse.Namespace) -> int:
    """The key an edge box takes the office's changes signed with, for the campaign of a
    campaign file: derived from the office's master key (``CPAUDIT_CHANGE_KEY`` in the
    environment), so that each box holds its own campaign's key only."""
    from cpaudit.store.changes import campaign_key
    master = os.environ.get("CPAUDIT_CHANGE_KEY", "")
    if not master:
        print("cpaudit: set CPAUDIT_CHANGE_KEY (the office's master key, as the central server "
              "has it) in the environment", file=sys.stderr)
        return 2
    cfg = _load(a.config)
    print(campaign_key(master.encode(), cfg.campaign.site or "", cfg.campaign.name).decode())
    return 0


def cmd_campaigns(a: argparse.Namespace) -> int:
    """The campaigns a central InfluxDB holds: site, campaign, state, newest data, and how far
    behind each edge box is (what it holds and has not forwarded)."""
    from cpaudit.store import StoreError
    from cpaudit.store.url import fleet_store, is_url
    if not is_url(a.store):
        print("cpaudit: campaigns lists what a central InfluxDB holds: "
              "--store influxdb://host:8086/DB", file=sys.stderr)
        return 2
    try:
        st = fleet_store(a.store)
        rows = st.campaigns()
        st.close()
    except StoreError as e:
        print(f"cpaudit: {e}", file=sys.stderr)
        return 1
    for r in rows:
        r["state"] = "finished" if r["end"] else "running"
    if a.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    if not rows:
        print("no campaign has forwarded its records here")
    for r in rows:
        edge = r["edge"]
        last = (dt.datetime.fromtimestamp(r["last_data"] / 1e9, dt.timezone.utc)
                .isoformat(timespec="seconds") if r["last_data"] else "no data")
        said = (dt.datetime.fromtimestamp(edge["at"] / 1e9, dt.timezone.utc)
                .isoformat(timespec="seconds") if edge.get("at") else "never")
        print(f"{r['site'] or '(no site)'} / {r['campaign']}: {r['state']}, newest data {last}; "
              f"edge box: {int(edge.get('backlog') or 0):,} samples not yet forwarded "
              f"(as it said at {said})")
    return 0


def cmd_export(a: argparse.Namespace) -> int:
    from cpaudit.analyzer.export import documents
    got = _report(a)
    if isinstance(got, int):
        return got
    out = Path(a.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, data in documents(got[1]).items():
            (out / name).write_bytes(data)
            print(out / name)
    except OSError as e:
        print(f"cpaudit: cannot write the export into {out}: {e}", file=sys.stderr)
        return 1
    return 0


def _print_balances(cfg: Any, doc: dict[str, Any]) -> None:
    result = doc["balances"]["material"]
    print(f"Material balance (物料平衡), {cfg.campaign.name}")
    if result["start_ns"] is None:
        print(f"  {result['message']}")
        return
    print(f"  window {result['start']} → {result['end']} ({result['hours'] * 60:.1f} min)")
    w = doc.get("balance_window") or {}
    if w:
        print(f"  balance window ({w.get('chosen')}, rule {w.get('rule')}): {w.get('reason')}")
        for x in w.get("left_out", [])[:8]:
            print(f"    left out {x['start']} → {x['end']}: {x['why']}")
        for x in w.get("included_not_counting", [])[:8]:
            print(f"    included, does not count {x['start']} → {x['end']}: {x['why']}")
    per = result.get("per_cycle") or []
    if per:
        nodes = list(per[0]["closure_pct"])
        print(f"  per cycle: closure [%] ({len(per)} cycle(s) used)")
        print(f"  {'start':<17}{'load':>7}" + "".join(f"{n[:9]:>10}" for n in nodes)
              + f"{'overall':>10}")
        for c in per:
            cells = "".join("         -" if c["closure_pct"][n] is None else
                            f"{c['closure_pct'][n]:>+10.2f}" for n in nodes)
            ld = "-" if c["load"] is None else f"{c['load']:.2f}"
            occ = "-" if c["overall_closure_pct"] is None else f"{c['overall_closure_pct']:+.2f}"
            print(f"  {c['start'][:16]:<17}{ld:>7}{cells}{occ:>10}"
                  + ("" if c["counts"] else "  (does not count)"))
    print(f"  {'node':<14}{'inputs [kg]':>14}{'outputs [kg]':>14}{'closure [%]':>13}  verdict")
    for n in result["nodes"] + ([result["overall"]] if result["overall"] else []):
        c = "-" if n["closure_pct"] is None else f"{n['closure_pct']:+.2f}"
        v = "?" if n["ok"] is None else ("ok" if n["ok"] else f"BEYOND {result['limit_pct']:g} %")
        print(f"  {n['node']:<14}{n['total_in']:>14.1f}{n['total_out']:>14.1f}{c:>13}  {v}")
    print(f"  {result['message']}")
    pl = result.get("production_line")
    if pl and pl.get("closure_pct") is not None:
        print(f"  {pl['name']}: inputs {pl['total_in']:.1f} kg, outputs {pl['total_out']:.1f} kg, "
              f"closure {pl['closure_pct']:+.2f} % (the whole focus also holds what shared "
              "utilities pass through for others)")
    for x in result["losses"][:6]:
        share = (f"{x['share_of_input_pct']:.2f} % of the raw materials"
                 if x["share_of_input_pct"] is not None else "a shared utility's loss")
        node = (f", {x['share_of_node_input_pct']:.2f} % of the node's input"
                if x["share_of_node_input_pct"] is not None else "")
        if x.get("charged_to_focus") is not None:
            node += f"; charged to the focus {x['charged_to_focus']:.1f} kg ({x['charged_rule']})"
        print(f"  loss: {x['node']}: {x['what']} {x['amount']:.1f} kg ({share}{node}), "
              f"{x['kind']}")
    for u in result["utilisation"]:
        print(f"  utilisation ({u['basis']}): {u['utilisation_pct']:.1f} % of "
              f"{', '.join(u.get('inputs', []))}")
    for c in result["components"]:
        oc = c["overall"]["closure_pct"] if c["overall"] else None
        print(f"  {c['layer']}: {c['verdict']}" + (f", overall {oc:+.2f} %" if oc is not None
                                                    else ""))
    recon = doc["reconciliation"]["material"]
    if recon is not None:
        g = recon["global_test"]
        print(f"  reconciliation: chi2 = {g['statistic']:.2f}, dof = {g['dof']}, "
              f"p = {g['p_value']:.4f} ({'rejected' if g['rejected'] else 'accepted'})")
        for s in recon["suspects"]:
            if s["equivalent"]:
                print(f"  gross error of {abs(s['estimate']):.1f} kg at one of (the data cannot "
                      f"tell which): {', '.join([s['where'], *s['equivalent']])} — a leak at the "
                      "node or a bias on one of its meters")
            else:
                print(f"  suspect: {s['kind']} at {s['where']}, estimate {s['estimate']:.1f} kg")
        if recon.get("sigma_rule"):
            print(f"  meter sigma: {recon['sigma_rule']}")
        for f in recon.get("findings", []):
            print(f"  note: {f}")
    w = doc["balances"]["water"]["indicators"]
    if "fresh_t" in w:
        print(f"\nWater (水平衡, GB/T 12452): fresh {w['fresh_t']:.1f} t, reused {w['reused_t']:.1f} t"
              + (f", repeated-use rate {w['repeated_use_rate_pct']:.1f} %"
                 if w.get("repeated_use_rate_pct") is not None else "")
              + (f", condensate reuse {w['condensate_reuse_rate_pct']:.1f} %"
                 if w.get("condensate_reuse_rate_pct") is not None else ""))
        bal = w.get("balance", {})
        if "classes" in bal:
            print("  " + "; ".join(f"{c['what']} {c['t']:.1f} t" for c in bal["classes"].values()))
            print(f"  residual of the whole flowsheet {bal['residual_t']:+.2f} t: "
                  f"{bal['residual_note']}" if bal.get("residual_t") is not None
                  else "  residual not judged")
            parts = [f"{n['node']} {n['residual_t']:+.2f}" for n in bal.get("nodes", [])
                     if n.get("residual_t") is not None]
            if parts:
                print(f"  per node [t]: {', '.join(parts)}")
        own = w.get("own_balance")
        if own and own.get("residual_t") is not None:
            print(f"  the focus's own water: in {own['inputs_t']:.1f} t, consumed "
                  f"{own['consumed_t']:.1f} t, discharged {own['discharged_t']:.1f} t, residual "
                  f"{own['residual_t']:+.2f} t — {own['residual_note']}"
                  + (f"; leak rate {w['leak_rate_pct']:.2f} %" if w.get("leak_rate_pct")
                     is not None else ""))
        pu = w.get("fresh_per_unit_product")
        if pu:
            print(f"  fresh water per unit product {pu['value']:.3f} {pu['unit']} (charged to "
                  f"the focus; {pu['gross']:.3f} before deductions) — {pu['rule']}")
    en = doc["balances"]["energy"]["summary"]
    if "total_kgce" in en:
        parts = [f"{k} {v['amount']:.1f} {v['unit']} = {v['kgce']:.1f} kgce"
                 for k, v in en["carriers"].items()]
        print(f"Energy (能量平衡, GB/T 2589 coefficients): {'; '.join(parts)}; total "
              f"{en['total_kgce']:.1f} kgce")
        pu = en.get("per_unit_product")
        if pu:
            print(f"  charged to the focus {en['charged_kgce']:.1f} kgce, {pu['value']:.3f} "
                  f"{pu['unit']} ({pu['gross']:.3f} before deductions) — {pu['rule']}")
    for x in en.get("units", []):
        if x["efficiency_pct"] is not None:
            print(f"  {x['node']}: fuel {x['fuel_kgce']:.1f} kgce (auxiliary electricity "
                  f"{x['auxiliary_electricity_kgce']:.1f} kgce apart), effective "
                  f"{x['effective_kgce']:.1f} kgce, losses {x['losses_kgce']:.1f} kgce, "
                  f"efficiency {x['efficiency_pct']:.1f} % (GB/T 3484, {x['efficiency_basis']})")
    pol = doc["balances"]["pollutant"]
    if pol["factors"]:
        print(f"Pollutant factors (特征污染因子平衡): {pol['message']}")
        if pol.get("scope"):
            print(f"  note: {pol['scope']}")
        for f in pol["factors"]:
            rem = f["removal_overall_pct"]
            em = f["emitted_kg"]
            print(f"  {f['factor']:<12} collected {f['collected_kg']:.3f} kg"
                  + (f", removed {rem:.1f} %" if rem is not None else "")
                  + (f", emitted {em:.3f} kg to {f['destination']}" if em is not None else "")
                  + (f" (valid hours only {f['emitted_kg_valid_hours']:.3f} kg; "
                     f"{f['substitution_rule']})" if f.get("emitted_kg_valid_hours") is not None
                     and em is not None and abs(f["emitted_kg_valid_hours"] - em) > 1e-9
                     else ""))


def _print_validity(r: dict[str, Any], tz: str) -> None:
    """The validity report (its JSON form) as a field team reads it: verdict, what fails, what to
    fix."""
    z = ZoneInfo(tz)

    def at(ns: int | None) -> str:
        return "-" if ns is None else f"{dt.datetime.fromtimestamp(ns / 1e9, z):%Y-%m-%d %H:%M}"

    print(f"Campaign validity (DB11/T 1156 7.3.3.3): {r['verdict'].upper()}")
    print(f"  window {at(r['start_ns'])} → {at(r['end_ns'])}")
    print(f"  {r['message']}")
    shown = [c for c in r['checks'] if c['status'] != "pass" or not c['id'].startswith(
        ("coverage:", "calibration:"))]
    hidden = len(r['checks']) - len(shown)
    for c in shown:
        print(f"  {c['status'].upper():<8}{c['id']:<28}{c['reason']}")
    if hidden:
        print(f"  PASS    ({hidden} coverage and calibration checks more; --json lists them)")
    p = r['progress']
    if p:
        done = f"{p['done']:.1f}" if p["unit"] == "h" else str(p["done"])
        print(f"  progress: {done} {p['unit']} done, {p['required']:g} required; the duration is "
              f"met from {at(p.get('earliest_valid_ns'))} if nothing breaks")
    if r['best_window']:
        print(f"  best window: {r['best_window']['reason']}")
    bw = r.get('balance_window')
    if bw:
        print(f"  balance window: {bw['reason']}")
    for i, f in enumerate(r['fixes'], 1):
        print(f"  fix {i}: {f['fix']} [{f['check']}]")
    for h in r['hints']:
        print(f"  hint: {h}")
    print()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_serve(a: argparse.Namespace) -> int:
    """The web UI and API on waitress (a production WSGI server: a pool of threads, request
    size limits, no log line per request). Beyond localhost it needs CPAUDIT_TOKEN, and then
    reading the campaign needs a token too (CPAUDIT_TOKEN or the read-only CPAUDIT_READ_TOKEN)."""
    import logging

    from waitress.server import create_server

    from cpaudit.web import create_app
    from cpaudit.web.app import MAX_BODY
    # "Task queue depth is N" at every burst of more clients than threads: not a fault
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    from cpaudit.store.url import is_url
    from cpaudit.web.fleet import names_a_campaign
    fleet = is_url(a.store) and not names_a_campaign(a.store) and a.config is None
    if a.config_dir is not None and not fleet:
        print("cpaudit: --config-dir is for the list of every campaign of a central InfluxDB "
              "(--store influxdb://host:8086/DB, no campaign)", file=sys.stderr)
        return EXIT_CONFIG
    if a.config is not None:
        _load(a.config)
    elif not is_url(a.store):
        print("cpaudit: serve needs the campaign file (only a central InfluxDB store carries "
              "its own)", file=sys.stderr)
        return EXIT_CONFIG
    exposed = not _is_loopback(a.host)
    if exposed and not os.environ.get("CPAUDIT_TOKEN"):
        print(f"cpaudit: refusing to listen on {a.host} without an access token "
              "(set CPAUDIT_TOKEN); the default is 127.0.0.1", file=sys.stderr)
        return EXIT_CONFIG
    # exposed: reads need a token too (CPAUDIT_READ_GUARD=1 asks for it on localhost as well)
    from cpaudit.store import StoreError
    try:
        if fleet:       # every campaign of the database, each under /c/<site>/<campaign>/
            from cpaudit.web.fleet import create_fleet_app
            app = create_fleet_app({"CPAUDIT_STORE": a.store, "CPAUDIT_CONFIG_DIR": a.config_dir,
                                    **({"CPAUDIT_READ_GUARD": True} if exposed else {})})
        else:
            app = create_app({"CPAUDIT_CONFIG": a.config or "", "CPAUDIT_STORE": a.store,
                              **({"CPAUDIT_READ_GUARD": True} if exposed else {})})
    except StoreError as e:
        print(f"cpaudit: {e}", file=sys.stderr)
        return 1
    except cfgmod.ConfigError as e:
        print(str(e), file=sys.stderr)
        return EXIT_CONFIG
    try:
        server = create_server(app, host=a.host, port=a.port, threads=a.threads,
                               max_request_body_size=MAX_BODY, max_request_header_size=16384,
                               channel_timeout=60, connection_limit=200, ident="cpaudit")
    except OSError as e:
        print(f"cpaudit: cannot listen on {a.host}:{a.port}: {e.strerror}", file=sys.stderr)
        return 1

    def _stop(*_: object) -> None:
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, _stop)
    guarded = app.config["CPAUDIT_READ_GUARD"]
    print(f"cpaudit: serving http://{a.host}:{a.port}/ (waitress, {a.threads} threads"
          f"{'; reads need the token' if guarded else ''})", flush=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0


def cmd_reconcile(a: argparse.Namespace) -> int:
    from cpaudit.analyzer.recon_table import MAX_BYTES, decode_table, parse_table
    from cpaudit.analyzer.reconcile import ReconcileError, reconcile
    try:
        with open(a.file, "rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except OSError as e:
        print(f"cpaudit: {a.file}: {e.strerror}", file=sys.stderr)
        return 1
    try:
        if a.encoding:
            try:
                text, enc = raw.decode(a.encoding), a.encoding
            except (LookupError, UnicodeDecodeError) as e:
                raise ReconcileError(f"{a.file}: not {a.encoding} text: {e}") from None
        else:
            text, enc = decode_table(raw, a.file)
        if enc in ("gb18030", "cp1252", "latin-1") and not a.encoding:   # a guess: said so
            print(f"cpaudit: {a.file}: not UTF-8; read as {enc} (--encoding says otherwise)",
                  file=sys.stderr)
        result = reconcile(parse_table(text, a.file), alpha=a.alpha)
    except ReconcileError as e:
        print(f"cpaudit: {e}", file=sys.stderr)
        return EXIT_CONFIG
    if a.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    g = result.global_test
    print(f"{'stream':<12}{'measured':>12}{'reconciled':>12}{'adjust':>10}{'MT':>7}  note")
    def col(v: float | None, w: int, p: int = 2) -> str:
        return f"{v:>{w}.{p}f}" if v is not None else f"{'-':>{w}}"
    for row in result.streams:
        note = ("unobservable" if row["id"] in result.unobservable else
                "non-redundant" if row["id"] in result.nonredundant else
                "MT rejects" if row["mt_rejected"] else "")
        print(f"{row['id']:<12}{col(row['measured'], 12)}{col(row['reconciled'], 12)}"
              f"{col(row['adjustment'], 10)}{col(row['mt'], 7)}  {note}")
    verdict = "REJECTED" if g["rejected"] else "accepted"
    print(f"global test: chi2 = {g['statistic']:.3f}, dof = {g['dof']}, p = {g['p_value']:.4f} "
          f"({verdict} at alpha = {a.alpha})")
    for sus in result.suspects:
        if sus.equivalent:
            print(f"gross error (T = {sus.statistic:.2f} > {sus.critical:.2f}) at one of, the "
                  f"data cannot tell which: {', '.join([sus.where, *sus.equivalent])}; size "
                  f"{abs(sus.estimate):.3f}")
        else:
            print(f"suspect: {sus.kind} at {sus.where}, estimate {sus.estimate:.3f}, "
                  f"T = {sus.statistic:.2f} > {sus.critical:.2f}")
    return 0


def cmd_hj212_decode(a: argparse.Namespace) -> int:
    """Decode a capture of HJ 212 packets, one a line; exit 1 when any line was refused."""
    from cpaudit.collector.hj212 import SYSTEM_CODES, decode_line
    try:
        with (sys.stdin.buffer if a.file == "-" else open(a.file, "rb")) as fh:
            lines = fh.read().splitlines()
    except OSError as e:
        print(f"{a.file}: {e.strerror}", file=sys.stderr)
        return EXIT_CONFIG
    bad = 0
    for i, line in enumerate(lines, 1):
        d = decode_line(i, line, a.crc, a.tz)
        bad += not d["ok"]
        if a.json:
            d.pop("detail", None)
            print(json.dumps(d, ensure_ascii=False))
        elif d["ok"]:
            vals = "  ".join(f"{v['code']}-{v['field']}={v['value']}"
                             + (f" [{v['flag']}]" if v["flag"] else "")
                             for v in d["values"])  # type: ignore[attr-defined]
            st = SYSTEM_CODES.get(str(d["st"]), "unknown system code")
            print(f"{i}: CN={d['cn']} ST={d['st']} ({st}) MN={d['mn']} Flag={d['flag']} "
                  f"QN={d['qn']} DataTime={d['data_time']}  {vals}")
        else:
            print(f"{i}: refused ({d['error']}): {d.get('detail')}")
    return 1 if bad else 0


def cmd_demo(a: argparse.Namespace) -> int:
    from cpaudit.demo import run_demo
    _load(a.config)
    return run_demo(a.config, a.store, a.host, a.port, a.leak, fresh=not a.keep,
                    history_h=a.history)


# -- parser -----------------------------------------------------------------------------------
def _fault_args(s: argparse.ArgumentParser) -> None:
    s.add_argument("--scenario", help="a fault scenario file (YAML)")
    s.add_argument("--fault", action="append", metavar="'KIND key=value ...'",
                   help="a fault, e.g. 'leak node=mash fraction=0.1 start=2h duration=4h' "
                        "(repeatable)")
    s.add_argument("--origin", help="campaign origin (ISO 8601 or ns since epoch); "
                   "generate: default HOURS before now; simulate: default now")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cpaudit", description="Measurement campaigns and balances "
                                "for cleaner-production audits (DB11/T 1156).")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("check", help="validate a campaign file")
    s.add_argument("config")
    s.set_defaults(func=cmd_check)

    s = sub.add_parser("simulate", help="run the simulated site live")
    s.add_argument("config")
    s.add_argument("--leak", help="NODE[:FRACTION] (default fraction 0.10)")
    _fault_args(s)
    s.set_defaults(func=cmd_simulate)

    s = sub.add_parser("generate", help="write a simulated campaign straight into a store")
    s.add_argument("config")
    s.add_argument("--hours", type=float, required=True)
    s.add_argument("--store", required=True)
    s.add_argument("--quiet", action="store_true")
    s.add_argument("--leak", help="NODE[:FRACTION], a leak over the whole campaign")
    _fault_args(s)
    s.set_defaults(func=cmd_generate)

    s = sub.add_parser("collect", help="poll the devices into the store")
    s.add_argument("config")
    s.add_argument("--store", required=True)
    s.set_defaults(func=cmd_collect)

    s = sub.add_parser("analyze", help="balances over a window")
    s.add_argument("config", nargs="?", default=None,
                   help="the campaign file (default: the one forwarded with the store's data)")
    s.add_argument("--store", required=True,
                   help="a SQLite file, or influxdb://host:8086/DB?site=…&campaign=… (user and "
                        "password from CPAUDIT_INFLUX_USERNAME/_PASSWORD)")
    s.add_argument("--from", dest="start")
    s.add_argument("--to", dest="end")
    s.add_argument("--json", action="store_true")
    s.add_argument("--validity-only", action="store_true",
                   help="the validity report alone (no balance): seconds on a long campaign")
    s.add_argument("--alpha", type=float, default=0.05,
                   help="significance level of the reconciliation tests")
    s.add_argument("--window", choices=["best_valid", "campaign"], default=None,
                   help="the balance window: the one validity accepts (cycles or hours below "
                        "the average load left out) or the campaign/--from/--to as given "
                        "(default: requirements.balance_window)")
    s.set_defaults(func=cmd_analyze)

    s = sub.add_parser("campaigns", help="the campaigns a central InfluxDB holds, and how far "
                                         "behind each edge box is")
    s.add_argument("--store", required=True, help="influxdb://host:8086/DB")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_campaigns)

    s = sub.add_parser("change-key", help="the key an edge box takes the office's changes "
                                          "signed with (from CPAUDIT_CHANGE_KEY)")
    s.add_argument("config", help="the edge box's campaign file")
    s.set_defaults(func=cmd_change_key)

    s = sub.add_parser("resend", help="forward an edge box's whole record again (after an "
                                      "upgrade that changed the InfluxDB series)")
    s.add_argument("--store", required=True, help="the edge box's SQLite record")
    s.add_argument("--sink", action="append", help="a sink's name (default: every sink it "
                                                  "has forwarded to); may be repeated")
    s.set_defaults(func=cmd_resend)

    s = sub.add_parser("export", help="the report's tables (XLSX, CSV) and diagrams (SVG)")
    s.add_argument("config")
    s.add_argument("--store", required=True)
    s.add_argument("--out", required=True, help="folder to write into")
    s.add_argument("--from", dest="start")
    s.add_argument("--to", dest="end")
    s.set_defaults(func=cmd_export)

    s = sub.add_parser("reconcile", help="reconcile a hand-typed table of stream totals (CSV)")
    s.add_argument("file")
    s.add_argument("--alpha", type=float, default=0.05)
    s.add_argument("--json", action="store_true")
    s.add_argument("--encoding", help="the table's text encoding (default: UTF-8 with or "
                   "without BOM, UTF-16 with BOM, else GB18030, else Windows-1252)")
    s.set_defaults(func=cmd_reconcile)

    s = sub.add_parser("serve", help="the web UI and API")
    s.add_argument("config", nargs="?", default=None,
                   help="the campaign file (default, for an InfluxDB store: the one forwarded "
                        "with its data)")
    s.add_argument("--store", required=True,
                   help="a SQLite file, or influxdb://host:8086/DB?site=…&campaign=… (a central, "
                        "read-only view), or influxdb://host:8086/DB: the list of every campaign "
                        "there, each opening read-only")
    s.add_argument("--config-dir", default=None,
                   help="with influxdb://host:8086/DB: campaign files, matched by campaign name, "
                        "for campaigns whose edge box forwarded none")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8050)
    s.add_argument("--threads", type=int, default=8, help="worker threads (default 8)")
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("hj212", help="HJ 212 tools for field engineers")
    hs = s.add_subparsers(dest="hj212_command", required=True)
    s = hs.add_parser("decode", help="decode a capture, one packet a line")
    s.add_argument("file", help="capture file, or - for stdin")
    s.add_argument("--json", action="store_true", help="one JSON object per input line")
    s.add_argument("--crc", default="hj212", choices=["hj212", "modbus_swapped", "modbus", "auto"],
                   help="CRC variant the logger sends (auto: any of them)")
    s.add_argument("--tz", default="Asia/Shanghai", help="the logger's time zone (DataTime)")
    s.set_defaults(func=cmd_hj212_decode)

    s = sub.add_parser("demo", help="simulators + collector + web on the demo campaign")
    s.add_argument("--config", default=DEFAULT_CONFIG)
    s.add_argument("--store", default="var/demo.db")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8050)
    s.add_argument("--leak", help="NODE[:FRACTION], e.g. mash or mash:0.1")
    s.add_argument("--keep", action="store_true", help="keep the existing demo store")
    s.add_argument("--history", type=float, default=8.0,
                   help="hours of campaign generated before the live part starts (0: none)")
    s.set_defaults(func=cmd_demo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    a = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if a.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        return int(a.func(a) or 0)
    except argparse.ArgumentTypeError as e:
        print(f"cpaudit: {e}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130
