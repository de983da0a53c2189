"""Reconciliation of a generated 1,000-stream network (issue 6: ≤ 1 s), and `cpaudit reconcile`
on 10,000 streams (issue 14: a chain and 2,000 random nodes, time and peak memory).

Baseline: the bare closed-form WLS on the same network (projection of the unmeasured streams,
x̂ = x − V Gᵀ (G V Gᵀ)⁻¹ G x, numpy only) — the least any reconciliation must compute. cpaudit adds
classification, the global, measurement and nodal tests, GLR over every bias and leak hypothesis,
equivalence sets and serial compensation of each gross error found.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import header, line


def _bare_wls(streams) -> np.ndarray:   # type: ignore[no-untyped-def]
    from cpaudit.analyzer.reconcile import _left_null, _nodes, incidence
    nodes = _nodes(streams)
    a = incidence(streams, nodes)
    mx = [j for j, s in enumerate(streams) if s.value is not None]
    ux = [j for j, s in enumerate(streams) if s.value is None]
    x = np.array([streams[j].value for j in mx])
    var = np.array([streams[j].sigma for j in mx]) ** 2
    g = _left_null(a[:, ux]) @ a[:, mx]
    vg = var[:, None] * g.T
    return x - vg @ np.linalg.lstsq(g @ vg, g @ x, rcond=None)[0]


def _best(f, *args, n: int = 3) -> float:   # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(n):
        t0 = time.perf_counter()
        f(*args)
        best = min(best, time.perf_counter() - t0)
    return best


def run() -> None:
    from bench.netgen import network, pick_faults, with_bias, with_leak
    from cpaudit.analyzer.reconcile import reconcile
    header("reconciliation: generated network, 1 % meters, 10 % unmeasured")
    net = network(1000, 400, seed=1)
    n_unm = sum(s.value is None for s in net.streams)
    print(f"    {len(net.streams)} streams, 400 nodes, {n_unm} unmeasured")
    node, stream = pick_faults(net)
    inflow = sum(s.value or 0.0 for s in net.streams if s.dst == node)
    bare = _best(_bare_wls, net.streams)
    line("bare closed-form WLS (baseline)", bare * 1e3, "ms")
    clean = _best(reconcile, net.streams)
    line("cpaudit reconcile, no gross error", clean * 1e3, "ms", bare * 1e3, "<= 1000 ms")
    faulty = with_bias(with_leak(net, node, 0.10 * inflow), stream, 10.0)
    both = _best(reconcile, faulty.streams)
    line("cpaudit reconcile, a leak and a biased meter", both * 1e3, "ms", bare * 1e3, "<= 1000 ms")
    r = reconcile(faulty.streams)
    found = {(s.kind, s.where) for s in r.suspects}
    found |= {("set", w) for s in r.suspects for w in s.equivalent}
    leak_ok = ("leak", node) in found or ("set", node) in found
    bias_ok = ("bias", stream) in found or ("set", stream) in found
    print(f"    injected: leak of {0.10 * inflow:.1f} at {node}, +10 sigma on {stream}; "
          f"found {[(s.kind, s.where, round(s.estimate, 1)) for s in r.suspects]} -> "
          f"leak {'located' if leak_ok else 'MISSED'}, bias {'located' if bias_ok else 'MISSED'}")
    run_large()


def _cli(path: str) -> tuple[float, float, int]:
    """`cpaudit reconcile --json` as a user runs it: (wall s, the child's peak RSS MB, exit)."""
    t0 = time.perf_counter()
    # the child's own peak (VmHWM, written as it exits): its rusage's ru_maxrss would carry
    # the bench process's RSS over exec
    from tests.config.test_poison import _OWN_PEAK
    proc = subprocess.Popen([sys.executable, "-c", _OWN_PEAK, "reconcile", path, "--json"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parent.parent)
    _, err = proc.communicate()
    peak = [ln for ln in err.splitlines() if ln.startswith("VMHWM_KB ")]
    kb = float(peak[-1].split()[1]) if peak else float("nan")
    return time.perf_counter() - t0, kb / 1024.0, proc.returncode


def _table(streams, path: str) -> None:   # type: ignore[no-untyped-def]
    with open(path, "w") as f:
        f.write("stream,from,to,value,sigma\n")
        for s in streams:
            f.write(f"{s.id},{s.src},{s.dst},{'' if s.value is None else repr(s.value)},"
                    f"{'' if s.sigma is None else repr(s.sigma)}\n")


def _bare_sparse(streams) -> np.ndarray:   # type: ignore[no-untyped-def]
    """The least a sparse WLS computes, every stream taken as measured: x̂ = x − V Aᵀ
    (A V Aᵀ)⁻¹ A x with one sparse factorisation (no projection, no tests)."""
    import scipy.sparse as sp
    import scipy.sparse.linalg as spla
    from cpaudit.analyzer.reconcile import ENV, _nodes
    nodes = {n: i for i, n in enumerate(_nodes(streams))}
    rows, cols, vals = [], [], []
    for j, s in enumerate(streams):
        for n, v in ((s.dst, 1.0), (s.src, -1.0)):
            if n != ENV:
                rows.append(nodes[n])
                cols.append(j)
                vals.append(v)
    a = sp.csc_matrix((vals, (rows, cols)), shape=(len(nodes), len(streams)))
    x = np.array([s.value if s.value is not None else 50.0 for s in streams])
    var = np.array([s.sigma if s.sigma is not None else 0.5 for s in streams]) ** 2
    vr = (a @ sp.diags(var) @ a.T).tocsc()
    return x - var * (a.T @ spla.splu(vr).solve(a @ x))


def run_large() -> None:
    from bench.netgen import network
    from cpaudit.analyzer.reconcile import ENV, StreamData, reconcile
    header("cpaudit reconcile on 10,000 streams (issue 14: a chain ran out of memory, 2,000 "
           "random nodes gave no answer in 120 s)")
    rng = np.random.default_rng(3)
    hops = [ENV] + [f"N{i:05d}" for i in range(9_999)] + [ENV]
    chain = [StreamData(f"S{i:05d}", a, b, 100.0 + float(rng.normal(0, 1.0)), 1.0)
             for i, (a, b) in enumerate(zip(hops, hops[1:]))]
    rand = network(10_000, 2_000, unmeasured=0.1, seed=5).streams
    with tempfile.TemporaryDirectory(prefix="cpaudit-bench-") as tmp:
        small = os.path.join(tmp, "small.csv")
        with open(small, "w") as f:
            f.write("stream,from,to,value,sigma\n1,ENV,A,100,1\n2,A,ENV,60,1\n3,A,ENV,38,1\n")
        t_small, m_small, _ = _cli(small)
        line("cpaudit reconcile, 3 streams (start-up baseline)", t_small * 1e3, "ms")
        line("  its peak memory", m_small, "MB")
        for name, short, streams in (("10,000-stream chain", "chain", chain),
                                     (f"{len(rand):,} streams, 2,000 nodes", "random", rand)):
            path = os.path.join(tmp, "t.csv")
            _table(streams, path)
            bare = _best(_bare_sparse, streams, n=1)
            secs, mb, rc = _cli(path)
            line(f"bare sparse WLS, {short}, all measured (baseline)", bare * 1e3, "ms")
            line(f"cpaudit reconcile, {name}", secs * 1e3, "ms", t_small * 1e3,
                 "seconds" + ("" if rc == 0 else f"; EXIT {rc}"))
            line("  its peak memory", mb, "MB", m_small)
            t_in = _best(reconcile, streams, n=1)
            line("  of which reconcile() itself", t_in * 1e3, "ms", bare * 1e3)
    header("dense vs sparse path on a mid-size network (1,000 streams over 400 nodes)")
    mid = network(1000, 400, seed=2).streams
    dense = _best(lambda s: reconcile(s, method="dense"), mid, n=2)
    sparse = _best(lambda s: reconcile(s, method="sparse"), mid, n=2)
    line("dense path (SVD projection, W formed; baseline)", dense * 1e3, "ms")
    line("sparse path (node aggregation, SuperLU/Cholesky)", sparse * 1e3, "ms", dense * 1e3)
    a = reconcile(mid, method="dense")
    b = reconcile(mid, method="sparse")
    worst = max(abs((x["reconciled"] or 0.0) - (y["reconciled"] or 0.0))
                / max(1.0, abs(x["reconciled"] or 0.0)) for x, y in zip(a.streams, b.streams))
    print(f"    same results: chi2 {a.global_test['statistic']:.6f} vs "
          f"{b.global_test['statistic']:.6f}, largest relative difference of an estimate "
          f"{worst:.1e}", flush=True)
