"""Reconciliation of large networks with sparse linear algebra: the same problem, tests and
report as :func:`analyzer.reconcile.reconcile` (its docstring has the method), computed without
any matrix of streams × streams or nodes × streams.

The dense path projects the unmeasured streams out with an SVD of A_u and forms W (n × n): a
10,000-stream chain needs 800 MB for W alone, and the SVD of 10,000 streams over 2,000 nodes
does not finish in minutes. Here the projection is read off the graph (Crowe et al. 1983, node
aggregation): the left null space of A_u is spanned by the indicators of the node groups that
unmeasured streams join, a group joined to ENV having no balance. The reduced constraints G
are then an incidence matrix of the merged graph (one row per group, one left out for each
connected part that does not reach ENV, whose rows sum to zero), V_r = G V Gᵀ is sparse and is
factored once (SuperLU), and only the entries of Z = V_r⁻¹ the tests need are formed: its
diagonal and its entries on the pattern of G (a bias's C_i = g_iᵀ Z g_i), column block by column
block. Every statistic is invariant under the choice of basis of the reduced space, so the
results agree with the dense path's (tests/analyzer/test_recon_sparse.py compares both on random
networks); a leak's signature in a part that does not reach ENV is projected on that part's
sum-zero space exactly as the dense path's T = Uᵀ P does.

Unmeasured amounts: a stream whose value the balances fix is a bridge of the graph of unmeasured
streams (ENV a vertex of it); its amount is the imbalance of the side it cuts off, read over a
spanning tree. A stream on a cycle of unmeasured streams is unobservable.

Pure functions; no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy import stats

from cpaudit.analyzer.reconcile import (ENV, TOL, ReconcileError, ReconResult, StreamData, Suspect,
                                _name_weak_points, _plausibility, active_set, bounds_of,
                                stream_rows)

DENSE_Z = 3000        # reduced constraints up to this many: Z formed by dense Cholesky (LAPACK)
BLOCK = 512           # columns of Z solved at a time above it
# kind, where, T, (signature kind, stream column or node, C), size: the dense path's tuple
# with the signature named instead of stored
Hyp = tuple[str, str, float, tuple[str, int, float], float]


class _Graph:
    """Streams as edges over the nodes 0..m-1 and ENV (= m)."""

    def __init__(self, streams: list[StreamData], nodes: list[str]) -> None:
        idx = {n: i for i, n in enumerate(nodes)}
        self.m = len(nodes)
        self.src = np.array([idx.get(s.src, self.m) for s in streams], dtype=np.int64)
        self.dst = np.array([idx.get(s.dst, self.m) for s in streams], dtype=np.int64)


def _find(parent: np.ndarray, a: int) -> int:
    root = a
    while parent[root] != root:
        root = parent[root]
    while parent[a] != root:
        parent[a], a = root, parent[a]
    return root


def _union_groups(n: int, pairs: list[tuple[int, int]], env: int) -> np.ndarray:
    """Group label per vertex (0..n-1) for the vertices the pairs join; ENV's group is -1,
    the others numbered 0.. in order of their first vertex."""
    parent = np.arange(n)
    for a, b in pairs:
        ra, rb = _find(parent, a), _find(parent, b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    roots = np.array([_find(parent, v) for v in range(n)])
    env_root = roots[env]
    label = np.full(n, -1, dtype=np.int64)
    seen: dict[int, int] = {}
    for v in range(n):
        r = int(roots[v])
        if r == env_root:
            continue
        label[v] = seen.setdefault(r, len(seen))
    return label


@dataclass
class _Pass:
    """One reduced problem: the measured streams ``mx`` reconciled with the unmeasured ``ux``
    and the leak streams of ``leaks`` free."""
    mx: list[int]
    x: np.ndarray
    var: np.ndarray
    node_group: np.ndarray        # node -> group (-1: joined to ENV)
    row_of_group: np.ndarray      # group -> row of G (-1: no row)
    closed: list[np.ndarray]      # groups of each part not reaching ENV (with > 1 group)
    closed_of_group: np.ndarray   # group -> index into closed (-1: reaches ENV, or alone)
    g: sp.csc_matrix              # k × n_x
    dof: int
    y: np.ndarray                 # V_r⁻¹ r
    gamma: float
    xhat: np.ndarray
    solve: Any                    # b -> V_r⁻¹ b

    def leak_signature(self, node: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows and values of node ``node``'s leak signature T e_k (empty: untestable)."""
        grp = int(self.node_group[node])
        if grp < 0:
            return np.zeros(0, np.int64), np.zeros(0)
        c = int(self.closed_of_group[grp])
        if c < 0:
            r = int(self.row_of_group[grp])
            return (np.array([r]), np.array([1.0])) if r >= 0 else (np.zeros(0, np.int64),
                                                                    np.zeros(0))
        part = self.closed[c]
        rows = self.row_of_group[part]
        vals = np.where(part == grp, 1.0, 0.0) - 1.0 / len(part)
        keep = rows >= 0
        return rows[keep], vals[keep]


def _reduce(graph: _Graph, streams: list[StreamData], mx: list[int], free: list[int],
            leaks: list[int]) -> _Pass:
    """Node aggregation by the free (unmeasured) streams and the leaks, and the factored V_r."""
    m = graph.m
    pairs = [(int(graph.src[j]), int(graph.dst[j])) for j in free]
    pairs += [(k, m) for k in leaks]
    label = _union_groups(m + 1, pairs, m)
    n_groups = int(label.max(initial=-1)) + 1
    gs = label[graph.src[mx]] if mx else np.zeros(0, np.int64)
    gd = label[graph.dst[mx]] if mx else np.zeros(0, np.int64)
    # parts of the group graph (measured streams as edges, ENV as the vertex n_groups)
    env_v = n_groups
    a_v = np.where(gs < 0, env_v, gs)
    b_v = np.where(gd < 0, env_v, gd)
    part = _union_groups(n_groups + 1, list(zip(a_v.tolist(), b_v.tolist())), env_v)
    part_groups: dict[int, list[int]] = {}
    for grp in range(n_groups):
        if part[grp] >= 0:
            part_groups.setdefault(int(part[grp]), []).append(grp)
    row_of_group = np.arange(n_groups, dtype=np.int64)
    closed: list[np.ndarray] = []
    closed_of_group = np.full(n_groups, -1, dtype=np.int64)
    for groups in part_groups.values():
        row_of_group[groups[-1]] = -1              # its rows sum to zero: one left out
        if len(groups) > 1:
            closed_of_group[groups] = len(closed)
            closed.append(np.array(groups, dtype=np.int64))
    kept = row_of_group >= 0
    row_of_group[kept] = np.arange(int(kept.sum()))
    k = int(kept.sum())
    rog = np.append(row_of_group, -1)               # group -1 (ENV) has no row
    rd, rs = rog[gd], rog[gs]
    same = gs == gd
    cols = np.arange(len(mx))
    ent_r = np.concatenate([rd[(rd >= 0) & ~same], rs[(rs >= 0) & ~same]])
    ent_c = np.concatenate([cols[(rd >= 0) & ~same], cols[(rs >= 0) & ~same]])
    ent_v = np.concatenate([np.ones(int(((rd >= 0) & ~same).sum())),
                            -np.ones(int(((rs >= 0) & ~same).sum()))])
    g = sp.csc_matrix((ent_v, (ent_r, ent_c)), shape=(k, len(mx)))
    x = np.array([streams[j].value for j in mx], dtype=float)
    var = np.array([streams[j].sigma for j in mx], dtype=float) ** 2
    if k == 0:
        return _Pass(mx, x, var, label[:m], row_of_group, closed, closed_of_group, g, 0,
                     np.zeros(0), 0.0, x.copy(), lambda b: np.zeros_like(b))
    vr = (g @ sp.diags(var) @ g.T).tocsc()
    if k <= DENSE_Z:
        cho = scipy.linalg.cho_factor(vr.toarray(), lower=True, check_finite=False)

        def solve(b: np.ndarray) -> np.ndarray:
            return np.asarray(scipy.linalg.cho_solve(cho, b, check_finite=False))
    else:
        lu = spla.splu(vr, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                       options={"SymmetricMode": True})

        def solve(b: np.ndarray) -> np.ndarray:
            return np.asarray(lu.solve(np.ascontiguousarray(b)))
    r = g @ x
    y = solve(r)
    xhat = x - var * (g.T @ y)
    return _Pass(mx, x, var, label[:m], row_of_group, closed, closed_of_group, g, k, y,
                 float(r @ y), xhat, solve)


def _z_entries(ps: _Pass, pairs_a: np.ndarray, pairs_b: np.ndarray) -> tuple[np.ndarray,
                                                                               np.ndarray]:
    """diag(Z) and Z[a, b] for the given row pairs (b = -1: none), Z = V_r⁻¹, by column
    blocks (dense for small problems)."""
    k = ps.dof
    diag = np.zeros(k)
    zab = np.zeros(len(pairs_a))
    has_b = pairs_b >= 0
    order = np.argsort(np.where(has_b, pairs_b, k), kind="stable")
    sorted_b = np.where(has_b, pairs_b, k)[order]
    step = k if k <= DENSE_Z else BLOCK
    for lo in range(0, k, step):
        hi = min(k, lo + step)
        eye = np.zeros((k, hi - lo))
        eye[np.arange(lo, hi), np.arange(hi - lo)] = 1.0
        zb = ps.solve(eye)
        diag[lo:hi] = zb[np.arange(lo, hi), np.arange(hi - lo)]
        i0, i1 = np.searchsorted(sorted_b, [lo, hi])
        sel = order[i0:i1]
        zab[sel] = zb[pairs_a[sel], pairs_b[sel] - lo]
    return diag, zab


@dataclass
class _Tests:
    """The first pass's figures the report needs beyond :class:`_Pass`."""
    wdiag: np.ndarray
    hyps: list[Hyp]
    c_bias: np.ndarray
    closed_z1: list[np.ndarray]


def _hypotheses(ps: _Pass, streams: list[StreamData], nodes: list[str], leaks: list[int]
                ) -> _Tests:
    """GLR statistics of every bias and leak hypothesis (reconcile._hypotheses), from the
    entries of Z on the pattern of G."""
    n_x = len(ps.mx)
    if ps.dof == 0:
        return _Tests(np.zeros(n_x), [], np.zeros(n_x), [])
    g = ps.g.tocsc()
    nnz = np.diff(g.indptr)
    # the rows (a: +1 side, b: -1 side) of each column; -1 where the column has fewer entries
    a = np.full(n_x, -1, np.int64)
    b = np.full(n_x, -1, np.int64)
    for col in np.flatnonzero(nnz):
        lo, hi = g.indptr[col], g.indptr[col + 1]
        rows, vals = g.indices[lo:hi], g.data[lo:hi]
        for r, v in zip(rows, vals):
            if v > 0:
                a[col] = r
            else:
                b[col] = r
    first = np.where(a >= 0, a, b)
    second = np.where((a >= 0) & (b >= 0), b, -1)
    diag, zab = _z_entries(ps, np.maximum(first, 0), second)
    c_bias = np.where(first >= 0, diag[np.maximum(first, 0)], 0.0)
    c_bias += np.where(second >= 0, diag[np.maximum(second, 0)] - 2.0 * zab, 0.0)
    c_bias = np.maximum(c_bias, 0.0)
    d_bias = g.T @ ps.y
    wdiag = ps.var ** 2 * c_bias
    closed_z1 = [ps.solve(_indicator(ps, part)) for part in ps.closed]
    out: list[Hyp] = []
    floor = TOL * max(1.0, float(diag.max(initial=0.0)))
    for i in np.flatnonzero((nnz > 0) & (c_bias > floor)):
        out.append(("bias", streams[ps.mx[i]].id, float(d_bias[i] ** 2 / c_bias[i]),
                    ("bias", int(i), float(c_bias[i])), float(d_bias[i] / c_bias[i])))
    skip = set(leaks)
    for node in range(len(nodes)):
        if node in skip:
            continue
        rows, vals = ps.leak_signature(node)
        if not len(rows) or np.abs(vals).max() <= TOL:
            continue
        c = _leak_c(ps, node, rows, vals, diag, closed_z1)
        if c <= 0:
            continue
        d = float(vals @ ps.y[rows])
        out.append(("leak", nodes[node], d * d / c, ("leak", node, c), d / c))
    return _Tests(wdiag, out, c_bias, closed_z1)


def _indicator(ps: _Pass, part: np.ndarray) -> np.ndarray:
    v = np.zeros(ps.dof)
    rows = ps.row_of_group[part]
    v[rows[rows >= 0]] = 1.0
    return v


def _leak_c(ps: _Pass, node: int, rows: np.ndarray, vals: np.ndarray, diag: np.ndarray,
            closed_z1: list[np.ndarray]) -> float:
    """sᵀ Z s for a leak signature s: Z_gg for a group reaching ENV; in a closed part of c
    groups s = R(e_g − 1/c): Z_gg − (2/c)(Z 1)_g + (1/c²) 1ᵀ Z 1 over its kept rows."""
    grp = int(ps.node_group[node])
    ci = int(ps.closed_of_group[grp])
    if ci < 0:
        return float(diag[rows[0]])
    part = ps.closed[ci]
    cnt = len(part)
    z1 = closed_z1[ci]
    one = _indicator(ps, part)
    r = int(ps.row_of_group[grp])
    zgg = diag[r] if r >= 0 else 0.0
    z1g = z1[r] if r >= 0 else 0.0
    return float(zgg - 2.0 / cnt * z1g + float(one @ z1) / cnt ** 2)


def _signature_dot(ps: _Pass, key: tuple[str, int, float], z: np.ndarray) -> float:
    if key[0] == "bias":
        col = ps.g.getcol(key[1])
        return float(col.data @ z[col.indices]) if col.nnz else 0.0
    rows, vals = ps.leak_signature(key[1])
    return float(vals @ z[rows])


def _signature(ps: _Pass, key: tuple[str, int, float]) -> np.ndarray:
    out = np.zeros(ps.dof)
    if key[0] == "bias":
        col = ps.g.getcol(key[1])
        out[col.indices] = col.data
    else:
        rows, vals = ps.leak_signature(key[1])
        out[rows] = vals
    return out


def _parallel(ps: _Pass, top: Hyp, hyps: list[Hyp]) -> list[Hyp]:
    """The hypotheses whose signatures are parallel to ``top``'s in the V_r⁻¹ metric (the data
    cannot tell them apart): |cos| = |f_iᵀ Z f| / √(C_i C) = 1."""
    f = _signature(ps, top[3])
    z = ps.solve(f)
    c11 = float(f @ z)
    g_dot = ps.g.T @ z
    out = []
    for h in hyps:
        kind, where, c22 = h[3]
        c12 = float(g_dot[where]) if kind == "bias" else _signature_dot(ps, h[3], z)
        if c11 > 0 and c22 > 0 and abs(abs(c12) / np.sqrt(c11 * c22) - 1.0) < 1e-6:
            out.append(h)
    return out


def _bridges(n: int, edges: list[tuple[int, int]]) -> np.ndarray:
    """Which edges of a multigraph on n vertices are bridges (on no cycle), iteratively
    (Tarjan's low-link; a parallel edge makes a cycle)."""
    adj: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    for e, (u, v) in enumerate(edges):
        adj[u].append((v, e))
        adj[v].append((u, e))
    disc = np.full(n, -1, np.int64)
    low = np.zeros(n, np.int64)
    bridge = np.zeros(len(edges), bool)
    t = 0
    for root in range(n):
        if disc[root] >= 0 or not adj[root]:
            continue
        disc[root] = low[root] = t
        t += 1
        stack: list[tuple[int, int, int]] = [(root, -1, 0)]   # vertex, edge in, next index
        while stack:
            v, pe, i = stack[-1]
            if i < len(adj[v]):
                stack[-1] = (v, pe, i + 1)
                w, e = adj[v][i]
                if e == pe:
                    continue
                if disc[w] < 0:
                    disc[w] = low[w] = t
                    t += 1
                    stack.append((w, e, 0))
                else:
                    low[v] = min(low[v], disc[w])
            else:
                stack.pop()
                if stack:
                    u = stack[-1][0]
                    low[u] = min(low[u], low[v])
                    if low[v] > disc[u]:
                        bridge[pe] = True
    return bridge


def _free_amounts(graph: _Graph, free: list[tuple[int, int]], imbalance: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Amounts of the free streams (src, dst vertex pairs; ENV = m) that close every node's
    ``imbalance`` (what the measured streams leave it short of: in − out), and which are fixed
    by it (the bridges). Over a spanning forest rooted at ENV: a tree stream carries the
    imbalance of the side it cuts off; the other streams carry 0 (their amounts are not
    observable, nor are those of the tree streams on a cycle with them)."""
    m = graph.m
    n = m + 1
    bridge = _bridges(n, free)
    adj: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    for e, (u, v) in enumerate(free):
        adj[u].append((v, e))
        adj[v].append((u, e))
    amount = np.zeros(len(free))
    seen = np.zeros(n, bool)
    order: list[tuple[int, int]] = []                 # (vertex, edge to its parent)
    for root in [m] + list(range(m)):
        if seen[root]:
            continue
        seen[root] = True
        todo = [(root, -1)]
        while todo:
            v, pe = todo.pop()
            order.append((v, pe))
            for w, e in adj[v]:
                if not seen[w]:
                    seen[w] = True
                    todo.append((w, e))
    total = np.concatenate([imbalance, [0.0]])
    for v, pe in reversed(order):                     # children before parents
        if pe < 0:
            continue
        u, w = free[pe]
        # the stream enters v when v is its dst: u_e = -(what v's side is short of)
        amount[pe] = -total[v] if w == v else total[v]
        parent = u if w == v else w
        total[parent] += total[v]
    return amount, bridge


@dataclass
class _Estimate:
    values: dict[int, float | None]
    leaks: dict[int, float]
    active: list[int]
    unbounded: dict[int, float]
    objective: float
    dof: int = 0


def _solve(graph: _Graph, streams: list[StreamData], mx: list[int], ux: list[int],
           leaks: list[int], fixed: set[int], known: _Pass | None = None) -> _Estimate:
    """reconcile._solve on the graph: the streams in ``fixed`` held at 0."""
    mxf = [j for j in mx if j not in fixed]
    uxf = [j for j in ux if j not in fixed]
    ps = known if known is not None and not fixed else _reduce(graph, streams, mxf, uxf, leaks)
    values: dict[int, float | None] = {j: float(v) for j, v in zip(mxf, ps.xhat)}
    values.update({j: 0.0 for j in fixed})
    # what each node is short of once the measured streams take their estimates
    imb = np.zeros(graph.m + 1)
    if mxf:
        np.add.at(imb, graph.dst[mxf], ps.xhat)
        np.add.at(imb, graph.src[mxf], -ps.xhat)
    pairs = [(int(graph.src[j]), int(graph.dst[j])) for j in uxf]
    pairs += [(k, graph.m) for k in leaks]
    amount, bridge = _free_amounts(graph, pairs, imb[:graph.m])
    for c, j in enumerate(uxf):
        values[j] = float(amount[c]) if bridge[c] else None
    obj = float(np.sum((ps.xhat - ps.x) ** 2 / ps.var)) if len(ps.x) else 0.0
    for j in fixed:
        v, sg = streams[j].value, streams[j].sigma
        if j in mx and v is not None and sg:
            obj += (v / sg) ** 2
    return _Estimate(values, {k: float(amount[len(uxf) + c]) for c, k in enumerate(leaks)},
                     sorted(fixed), {}, obj)


def _estimate(graph: _Graph, streams: list[StreamData], mx: list[int], ux: list[int],
              leaks: list[int], nonnegative: bool, known: _Pass) -> _Estimate:
    """reconcile._estimate (the same active set) on the graph."""
    return active_set(  # type: ignore[no-any-return]
        lambda fixed, k=None: _solve(graph, streams, mx, ux, leaks, fixed, k),
        streams, mx, nonnegative, known)


def reconcile_sparse(streams: list[StreamData], nodes: list[str], alpha: float,
                     max_errors: int, nonnegative: bool, detectability_min: float
                     ) -> ReconResult:
    """:func:`analyzer.reconcile.reconcile` for streams already validated there."""
    graph = _Graph(streams, nodes)
    ids = [s.id for s in streams]
    measured = [j for j, s in enumerate(streams) if s.value is not None]
    base_unmeasured = [j for j, s in enumerate(streams) if s.value is None]
    excluded: list[int] = []
    leaks: list[int] = []
    suspects: list[Suspect] = []
    steps: list[dict[str, Any]] = []
    first: tuple[_Pass, _Tests, dict[str, Any]] | None = None
    while True:
        mx = [j for j in measured if j not in excluded]
        ps = _reduce(graph, streams, mx, base_unmeasured + excluded, leaks)
        tests = _hypotheses(ps, streams, nodes, leaks)
        crit_gt = float(stats.chi2.ppf(1 - alpha, ps.dof)) if ps.dof else float("nan")
        gt = {"statistic": ps.gamma, "dof": ps.dof,
              "p_value": float(stats.chi2.sf(ps.gamma, ps.dof)) if ps.dof else 1.0,
              "critical": crit_gt, "rejected": bool(ps.dof and ps.gamma > crit_gt)}
        if first is None:
            first = (ps, tests, gt)
        hyps = tests.hyps
        nh = max(1, len(hyps))
        beta = 1 - (1 - alpha) ** (1 / nh)
        crit = float(stats.chi2.ppf(1 - beta, 1))
        steps.append({"global_test": gt, "excluded": [streams[j].id for j in excluded],
                      "leaks": [nodes[k] for k in leaks]})
        if not gt["rejected"] or not hyps or len(suspects) >= max_errors:
            break
        top = max(hyps, key=lambda h: h[2])
        if top[2] <= crit:
            break
        group = _parallel(ps, top, hyps)
        best = min(group, key=lambda h: _plausibility(h, streams, ids))  # type: ignore[arg-type]
        names = [h[1] for h in group]
        suspects.append(Suspect(best[0], best[1], best[2], best[4], crit,
                                [n for n in names if n != best[1]],
                                [h[1] for h in group
                                 if _plausibility(h, streams, ids)[0]]))  # type: ignore[arg-type]
        if best[0] == "bias":
            excluded.append(ids.index(best[1]))
        else:
            leaks.append(nodes.index(best[1]))
    assert first is not None
    mx = [j for j in measured if j not in excluded]
    est = _estimate(graph, streams, mx, base_unmeasured + excluded, leaks, nonnegative, ps)
    est.dof = int(steps[-1]["global_test"]["dof"])
    res = _report(graph, streams, nodes, first, base_unmeasured, suspects, alpha, steps, est,
                  excluded)
    res.bounds["rule"] = ("amounts >= 0 (bounded WLS, active set)" if nonnegative else
                          "none (unbounded WLS)")
    ps0 = first[0]
    testable = [bool(ps0.dof) and len(ps0.leak_signature(k)[0]) > 0 and
                float(np.abs(ps0.leak_signature(k)[1]).max()) > TOL for k in range(len(nodes))]
    near: list[list[str]] = [[] for _ in nodes]
    for j in base_unmeasured:          # in stream order, as the dense path lists them
        for v in (graph.src[j], graph.dst[j]):
            if v < graph.m:
                near[int(v)].append(streams[j].id)
    _name_weak_points(res, streams, nodes, testable, near, ps0.mx, detectability_min)
    return res


def _report(graph: _Graph, streams: list[StreamData], nodes: list[str],
            first: tuple[_Pass, _Tests, dict[str, Any]], unmeasured: list[int],
            suspects: list[Suspect], alpha: float, steps: list[dict[str, Any]],
            est: _Estimate, excluded: list[int]) -> ReconResult:
    """reconcile._report from the first pass's figures."""
    ps, tests, gt = first
    mx = ps.mx
    pairs = [(int(graph.src[j]), int(graph.dst[j])) for j in unmeasured]
    bridge = _bridges(graph.m + 1, pairs) if pairs else np.zeros(0, bool)
    unobservable = [streams[j].id for c, j in enumerate(unmeasured) if not bridge[c]]
    wdiag = tests.wdiag
    adj = ps.x - ps.xhat
    redundant_mask = wdiag > TOL * ps.var
    nr = max(1, int(redundant_mask.sum()))
    beta = 1 - (1 - alpha) ** (1 / nr)
    zcrit = float(stats.norm.ppf(1 - beta / 2))
    rows = stream_rows(streams, mx, est, excluded, redundant_mask, adj, ps.x, wdiag, zcrit)
    # nodal test on the balances whose streams are all measured
    m = graph.m
    touched_by_unmeasured = np.zeros(m + 1, bool)
    touched_by_unmeasured[graph.src[unmeasured]] = True
    touched_by_unmeasured[graph.dst[unmeasured]] = True
    rk = np.zeros(m + 1)
    vk = np.zeros(m + 1)
    mxa = np.array(mx, dtype=np.int64)
    np.add.at(rk, graph.dst[mxa], ps.x)
    np.add.at(rk, graph.src[mxa], -ps.x)
    np.add.at(vk, graph.dst[mxa], ps.var)
    np.add.at(vk, graph.src[mxa], ps.var)
    m_full = [k for k in range(m) if not touched_by_unmeasured[k]]
    nb = 1 - (1 - alpha) ** (1 / max(1, len(m_full)))
    ncrit = float(stats.norm.ppf(1 - nb / 2))
    nodal = []
    for k in m_full:
        z = abs(rk[k]) / np.sqrt(vk[k]) if vk[k] > 0 else None
        nodal.append({"node": nodes[k], "imbalance": float(rk[k]),
                      "z": None if z is None else float(z), "critical": ncrit,
                      "rejected": bool(z is not None and z > ncrit)})
    nonredundant = [streams[mx[i]].id for i in range(len(mx)) if not redundant_mask[i]]
    eq_sets = [[sp_.where] + sp_.equivalent for sp_ in suspects if sp_.equivalent]
    bounds = bounds_of(streams, nodes, est, excluded)
    return ReconResult(rows, gt, suspects, eq_sets, unobservable, nonredundant, nodal, alpha,
                       steps, bounds)


__all__ = ["reconcile_sparse", "ReconcileError", "ENV"]
