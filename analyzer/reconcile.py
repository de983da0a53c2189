"""Data reconciliation and gross-error detection for linear (total-flow) balances.

Notation and formulas: shared/reference/balance-math.md §2, after Narasimhan & Jordache, *Data
Reconciliation and Gross Error Detection* (2000), eqs. 7-3, 7-13, 7-29…7-32, 7-73; Crowe et al.
(1983) for the projection of unmeasured flows.

- Incidence A (nodes × streams): +1 a stream enters the node, −1 it leaves; ``ENV`` is the boundary
  and has no balance. Measurements x [any one unit] with standard deviations σ (same unit).
- Unmeasured streams are projected out with P (rows span the left null space of A_u); the reduced
  constraints G = T·A_x (T = independent rows of P) have ν = rank(G) degrees of freedom.
- x̂ = x − V Gᵀ (G V Gᵀ)⁻¹ G x; adjustments a = x − x̂; W = V Gᵀ V_r⁻¹ G V.
- Global test γ = rᵀ V_r⁻¹ r ~ χ²(ν). Measurement test z_i = |a_i| / √W_ii with a Šidák level over
  the redundant measurements. GLR for a measurement bias (signature G e_i) and a leak at node k
  (signature T e_k): T = d²/C, estimate d/C with d = fᵀV_r⁻¹r, C = fᵀV_r⁻¹f; hypotheses with
  parallel signatures form an **equivalence set** the data cannot tell apart.
- Several gross errors: serial compensation — the most significant hypothesis is compensated (a
  biased meter becomes unmeasured; a leak becomes an unmeasured stream to ENV) and the tests rerun
  while the global test rejects.
- Detectability_i = √W_ii / σ_i ∈ [0, 1]: the fraction of a bias on meter i that shows in its
  adjustment; near 0, "no gross error" says nothing about that meter. Meters below
  ``detectability_min`` and nodes whose leak signature T e_k is zero (no redundancy: a leak there
  cannot show) are named in words (``undetectable``, ``untestable``, ``findings``).
- Equivalent hypotheses (parallel signatures, equal T): the one named first is the physically
  possible one (a leak ≥ 0; a bias that leaves the true amount ≥ 0), a leak at the node before a
  bias on one of its meters, then the bias smallest in units of its meter's σ; the others are
  listed as ``equivalent``.
- Estimates: after compensating the gross errors found, the reported ``reconciled`` values are
  those of the compensated model, bounded to amounts ≥ 0 (``nonnegative``): minimise
  Σ (x̂_i − x_i)²/σ_i² subject to A z = 0, z ≥ 0 by an active set (a stream at its bound is
  fixed at 0: its column leaves A, its measurement stays in the objective). The tests (global,
  MT, nodal, GLR) are those of the linear problem — their distributions are known; beside them
  ``bounds`` gives the streams at their bound, their unbounded estimates and the bounded
  objective with ν + k degrees of freedom (k active bounds; the bounded statistic follows a
  χ̄² whose tail is at most that of χ²(ν + k), so its p-value is an upper bound).

Large networks (above DENSE_MAX_STREAMS streams, or ``method="sparse"``) are solved by
analyzer/recon_sparse.py: the same problem and results without the dense matrices.

Pure functions; no I/O.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import stats

ENV = "ENV"
TOL = 1e-9


@dataclass(frozen=True)
class StreamData:
    id: str
    src: str
    dst: str
    value: float | None         # None: unmeasured
    sigma: float | None


@dataclass
class Suspect:
    kind: str                   # "bias" | "leak"
    where: str                  # stream id or node name
    statistic: float
    estimate: float             # bias (measured − true) or leak size, in the data's unit
    critical: float
    equivalent: list[str] = field(default_factory=list)
    # equivalent hypotheses that are not physical: a negative leak (a gain), or a bias that
    # would make the true amount negative
    not_physical: list[str] = field(default_factory=list)


@dataclass
class ReconResult:
    streams: list[dict[str, Any]]
    global_test: dict[str, Any]
    suspects: list[Suspect]
    equivalent_sets: list[list[str]]
    unobservable: list[str]
    nonredundant: list[str]
    nodal_tests: list[dict[str, Any]]
    alpha: float
    steps: list[dict[str, Any]]
    bounds: dict[str, Any] = field(default_factory=dict)
    untestable: list[dict[str, Any]] = field(default_factory=list)
    undetectable: list[dict[str, Any]] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return d


class ReconcileError(ValueError):
    pass


def _nodes(streams: list[StreamData]) -> list[str]:
    seen: dict[str, None] = {}
    for s in streams:
        for n in (s.src, s.dst):
            if n != ENV:
                seen.setdefault(n, None)
    return list(seen)


def incidence(streams: list[StreamData], nodes: list[str]) -> np.ndarray:
    idx = {n: i for i, n in enumerate(nodes)}
    a = np.zeros((len(nodes), len(streams)))
    for j, s in enumerate(streams):
        if s.dst != ENV:
            a[idx[s.dst], j] += 1.0
        if s.src != ENV:
            a[idx[s.src], j] -= 1.0
    return a


def _left_null(a: np.ndarray) -> np.ndarray:
    """Rows spanning {p : p a = 0}."""
    m = a.shape[0]
    if a.shape[1] == 0:
        return np.eye(m)
    u, s, _ = np.linalg.svd(a, full_matrices=True)
    rank = int((s > TOL * max(1.0, s.max(initial=0.0))).sum())
    return u[:, rank:].T


def _null(a: np.ndarray) -> np.ndarray:
    """Columns spanning {v : a v = 0}."""
    if a.shape[1] == 0:
        return np.zeros((0, 0))
    _, s, vt = np.linalg.svd(a, full_matrices=True)
    rank = int((s > TOL * max(1.0, s.max(initial=0.0))).sum())
    return vt[rank:].T


@dataclass
class _Core:
    x: np.ndarray
    var: np.ndarray
    g: np.ndarray               # reduced constraints on measured (k × n_x)
    t: np.ndarray               # node space → reduced space (k × m)
    r: np.ndarray
    vr_inv: np.ndarray
    xhat: np.ndarray
    adj: np.ndarray
    w: np.ndarray
    dof: int
    gamma: float


def _core(a_x: np.ndarray, a_u: np.ndarray, x: np.ndarray, var: np.ndarray,
          need_w: bool = True) -> _Core:
    p = _left_null(a_u)
    gfull = p @ a_x
    if gfull.size == 0:
        k = 0
        t = np.zeros((0, a_x.shape[0]))
    else:
        u, s, _ = np.linalg.svd(gfull, full_matrices=False)
        k = int((s > TOL * max(1.0, s.max(initial=0.0))).sum())
        t = u[:, :k].T @ p
    g = t @ a_x
    if k == 0:
        z = np.zeros(len(x))
        return _Core(x, var, g, t, np.zeros(0), np.zeros((0, 0)), x.copy(), z,
                     np.zeros((len(x), len(x))), 0, 0.0)
    vg = var[:, None] * g.T
    vr = g @ vg
    vr_inv = np.linalg.inv(vr)
    r = g @ x
    xhat = x - vg @ vr_inv @ r
    w = vg @ vr_inv @ vg.T if need_w else np.zeros((0, 0))
    return _Core(x, var, g, t, r, vr_inv, xhat, x - xhat, w, k, float(r @ vr_inv @ r))


# the numbers a double can square and invert: a σ outside [SIGMA_MIN, SIGMA_MAX] (or a value
# beyond VALUE_MAX) makes σ² underflow to 0 (σ = 1e-300: "Singular matrix") or overflow to
# inf (σ = 1e308: "χ² = 0.000, accepted"); analyzer/recon_table.py refuses far less already
SIGMA_MIN, SIGMA_MAX, VALUE_MAX = 1e-100, 1e150, 1e100
# streams above which ``method="auto"`` takes the sparse path (analyzer/recon_sparse.py): the
# dense one forms matrices of streams × streams (bench/recon_bench.py times both)
DENSE_MAX_STREAMS = 200


def reconcile(streams: list[StreamData], alpha: float = 0.05, max_errors: int = 5,
              nonnegative: bool = True, detectability_min: float = 0.1,
              method: str = "auto") -> ReconResult:
    """Reconcile, test and locate gross errors (module docstring); ``nonnegative`` bounds the
    estimates to ≥ 0, ``detectability_min`` names the meters a bias hides on. ``method``:
    ``dense`` (SVD projection, every matrix formed), ``sparse`` (node aggregation and a sparse
    factorisation, analyzer/recon_sparse.py: the same results) or ``auto`` (sparse above
    DENSE_MAX_STREAMS streams)."""
    if not 0 < alpha < 1:
        raise ReconcileError(f"alpha must be between 0 and 1, got {alpha}")
    if method not in ("auto", "dense", "sparse"):
        raise ReconcileError(f"method must be auto, dense or sparse, got {method!r}")
    ids = [s.id for s in streams]
    if len(set(ids)) != len(ids):
        raise ReconcileError("duplicate stream ids")
    for s in streams:
        if s.value is not None and (s.sigma is None or not s.sigma > 0):
            raise ReconcileError(f"stream {s.id}: a measured value needs a sigma > 0")
        if s.value is not None and s.sigma is not None and not (
                SIGMA_MIN <= s.sigma <= SIGMA_MAX and abs(s.value) <= VALUE_MAX):
            raise ReconcileError(f"stream {s.id}: sigma {s.sigma:g} or value {s.value:g} is "
                                 f"outside what can be computed with (sigma within "
                                 f"{SIGMA_MIN:g}..{SIGMA_MAX:g}, |value| up to {VALUE_MAX:g})")
        if s.src == s.dst:
            raise ReconcileError(f"stream {s.id}: starts and ends at {s.src}")
    nodes = _nodes(streams)
    if not nodes:
        raise ReconcileError("no node besides ENV")
    spread = [s.sigma for s in streams if s.value is not None and s.sigma is not None]
    try:
        if method == "sparse" or (method == "auto" and len(streams) > DENSE_MAX_STREAMS):
            from cpaudit.analyzer.recon_sparse import reconcile_sparse
            return reconcile_sparse(streams, nodes, alpha, max_errors, nonnegative,
                                    detectability_min)
        return _reconcile_dense(streams, nodes, alpha, max_errors, nonnegative,
                                detectability_min)
    except np.linalg.LinAlgError as e:
        raise ReconcileError(f"the balances cannot be solved in double precision ({e}): the "
                             f"sigmas span {min(spread, default=0):g} to "
                             f"{max(spread, default=0):g}") from e


def _reconcile_dense(streams: list[StreamData], nodes: list[str], alpha: float,
                     max_errors: int, nonnegative: bool, detectability_min: float
                     ) -> ReconResult:
    ids = [s.id for s in streams]
    a = incidence(streams, nodes)
    measured = [j for j, s in enumerate(streams) if s.value is not None]
    base_unmeasured = [j for j, s in enumerate(streams) if s.value is None]

    excluded: list[int] = []           # measurements compensated as biased
    leaks: list[int] = []              # nodes compensated with a leak stream
    suspects: list[Suspect] = []
    steps: list[dict[str, Any]] = []
    first_gt: dict[str, Any] | None = None
    first_core: _Core | None = None
    first_mx: list[int] = []
    while True:
        mx = [j for j in measured if j not in excluded]
        ux = base_unmeasured + excluded
        a_x = a[:, mx]
        leak_cols = np.zeros((len(nodes), len(leaks)))
        for c, k in enumerate(leaks):
            leak_cols[k, c] = -1.0
        a_u = np.hstack([a[:, ux], leak_cols])
        x = np.array([streams[j].value for j in mx], dtype=float)
        var = np.array([streams[j].sigma for j in mx], dtype=float) ** 2
        core = _core(a_x, a_u, x, var)
        crit_gt = float(stats.chi2.ppf(1 - alpha, core.dof)) if core.dof else float("nan")
        gt = {"statistic": core.gamma, "dof": core.dof,
              "p_value": float(stats.chi2.sf(core.gamma, core.dof)) if core.dof else 1.0,
              "critical": crit_gt, "rejected": bool(core.dof and core.gamma > crit_gt)}
        if first_core is None:
            first_core, first_gt, first_mx = core, gt, mx
        hyps = _hypotheses(core, mx, streams, nodes, leaks)
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
        group = [h for h, par in zip(hyps, _parallel_to(top[3], hyps, core.vr_inv)) if par]
        best = min(group, key=lambda h: _plausibility(h, streams, ids))
        names = [h[1] for h in group]
        suspects.append(Suspect(best[0], best[1], best[2], best[4], crit,
                                [n for n in names if n != best[1]],
                                [h[1] for h in group if _plausibility(h, streams, ids)[0]]))
        if best[0] == "bias":
            excluded.append(ids.index(best[1]))
        else:
            leaks.append(nodes.index(best[1]))
    assert first_core is not None and first_gt is not None
    mx = [j for j in measured if j not in excluded]
    # the last pass's core is that of the compensated model: reused for its estimates
    est = _estimate(a, streams, mx, base_unmeasured + excluded, leaks, nonnegative, core)
    est.dof = int(steps[-1]["global_test"]["dof"])
    res = _report(streams, nodes, a, first_core, first_gt, first_mx, base_unmeasured,
                  suspects, alpha, steps, est, excluded)
    res.bounds["rule"] = ("amounts >= 0 (bounded WLS, active set)" if nonnegative else
                          "none (unbounded WLS)")
    um = set(base_unmeasured)
    testable = [bool(first_core.dof) and
                float(np.abs(first_core.t[:, k]).max(initial=0.0)) > TOL
                for k in range(len(nodes))]
    near = [[streams[j].id for j in np.flatnonzero(a[k]) if j in um] for k in range(len(nodes))]
    _name_weak_points(res, streams, nodes, testable, near, first_mx, detectability_min)
    return res


def _plausibility(h: tuple[str, str, float, np.ndarray, float], streams: list[StreamData],
                  ids: list[str]) -> tuple[bool, bool, float]:
    """Sort key among equivalent hypotheses (lowest first): physically possible first (a leak
    ≥ 0; a bias that leaves the true amount ≥ 0), a leak before a bias, then the bias smallest
    in units of its meter's σ."""
    kind, where, _, _, size = h
    if kind == "leak":
        return (size < 0, False, 0.0)
    s = streams[ids.index(where)]
    assert s.value is not None and s.sigma is not None
    # a true amount of 0 within rounding (-3 read, a bias of -2.9999999999999996) is physical
    return (s.value - size < -1e-9 * max(s.sigma, abs(s.value)), True, abs(size) / s.sigma)


@dataclass
class _Estimate:
    values: dict[int, float | None]   # stream index -> estimate (None: unobservable)
    leaks: dict[int, float]           # node index -> compensated leak size
    active: list[int]                 # streams held at their bound 0
    unbounded: dict[int, float]       # their estimates without the bound
    objective: float                  # Σ ((x̂ − x)/σ)² over the measurements used
    dof: int = 0


def _solve(a: np.ndarray, streams: list[StreamData], mx: list[int], ux: list[int],
           leaks: list[int], fixed: set[int], known: _Core | None = None) -> _Estimate:
    """Equality-constrained WLS with the streams in ``fixed`` held at 0 (their columns leave
    the balance; a measured one keeps its (0 − x)²/σ² in the objective). ``known``: the core
    already computed for this very problem (nothing fixed)."""
    mxf = [j for j in mx if j not in fixed]
    uxf = [j for j in ux if j not in fixed]
    leak_cols = np.zeros((a.shape[0], len(leaks)))
    for c, k in enumerate(leaks):
        leak_cols[k, c] = -1.0
    a_x, a_u = a[:, mxf], np.hstack([a[:, uxf], leak_cols])
    x = np.array([streams[j].value for j in mxf], dtype=float)
    var = np.array([streams[j].sigma for j in mxf], dtype=float) ** 2
    core = known if known is not None and not fixed else _core(a_x, a_u, x, var, need_w=False)
    values: dict[int, float | None] = {j: float(v) for j, v in zip(mxf, core.xhat)}
    values.update({j: 0.0 for j in fixed})
    sizes = np.zeros(a_u.shape[1])
    if a_u.shape[1]:
        sizes = np.linalg.lstsq(a_u, -a_x @ core.xhat, rcond=None)[0]
        n = _null(a_u)
        for c, j in enumerate(uxf):
            obs = not (n.size and np.abs(n[c]).max() > 1e-8)
            values[j] = float(sizes[c]) if obs else None
    obj = float(np.sum((core.xhat - x) ** 2 / var)) if len(x) else 0.0
    for j in fixed:
        v, sg = streams[j].value, streams[j].sigma
        if j in mx and v is not None and sg:
            obj += (v / sg) ** 2
    return _Estimate(values, {k: float(sizes[len(uxf) + c]) for c, k in enumerate(leaks)},
                     sorted(fixed), {}, obj)


def _estimate(a: np.ndarray, streams: list[StreamData], mx: list[int], ux: list[int],
              leaks: list[int], nonnegative: bool, known: _Core | None = None) -> _Estimate:
    """The WLS estimates of the compensated model, bounded to ≥ 0 when ``nonnegative``: an
    active set — the most negative estimate (in units of its σ, or of the largest measurement
    for an unmeasured stream) is held at 0 and the problem solved again; a held stream is
    released when, freed, its estimate is ≥ 0 — until no estimate is negative."""
    return active_set(lambda fixed, k=None: _solve(a, streams, mx, ux, leaks, fixed, k),
                      streams, mx, nonnegative, known)


def active_set(solve: Any, streams: list[StreamData], mx: list[int], nonnegative: bool,
               known: Any = None) -> Any:
    """The active set of :func:`_estimate` over any solver (``solve(fixed, known)`` → an
    estimate with ``values``; the sparse path's too)."""
    fixed: set[int] = set()
    est = solve(fixed, known)
    if not nonnegative:
        return est
    scale = max([abs(streams[j].value or 0.0) for j in mx] + [1.0])
    unbounded: dict[int, float] = {}
    for _ in range(2 * len(streams) + 2):
        neg = {j: v / (streams[j].sigma or scale) for j, v in est.values.items()
               if v is not None and j not in fixed and v < -1e-9 * scale}
        if neg:
            j = min(neg, key=lambda k: neg[k])
            unbounded.setdefault(j, float(est.values[j]))
            fixed.add(j)
            est = solve(fixed)
            continue
        for j in sorted(fixed):
            trial = solve(fixed - {j})
            if (trial.values.get(j) or 0.0) > 1e-9 * scale:
                fixed.discard(j)
                est = trial
                break
        else:
            break
    est.unbounded = {j: v for j, v in unbounded.items() if j in fixed}
    return est


def stream_rows(streams: list[StreamData], mx: list[int], est: Any, excluded: list[int],
                redundant: np.ndarray, adj: np.ndarray, x: np.ndarray, wdiag: np.ndarray,
                zcrit: float) -> list[dict[str, Any]]:
    """The report's row per stream (measured and reconciled, adjustment, measurement test,
    redundancy, detectability, bound and compensation flags); both paths'."""
    rows: list[dict[str, Any]] = []
    pos = {j: i for i, j in enumerate(mx)}
    active = set(est.active)
    for j, s in enumerate(streams):
        v = est.values.get(j)
        flags = {"bound_active": j in active,
                 "compensated": "bias" if j in excluded else None}
        if j in pos:
            i = pos[j]
            red = bool(redundant[i])
            mt = float(abs(adj[i]) / np.sqrt(wdiag[i])) if red else None
            rows.append({"id": s.id, "from": s.src, "to": s.dst, "measured": s.value,
                         "sigma": s.sigma, "reconciled": v,
                         "adjustment": None if v is None else float(v - x[i]),
                         "mt": mt, "mt_critical": zcrit if red else None,
                         "mt_rejected": bool(mt is not None and mt > zcrit),
                         "redundant": red,
                         "detectability": float(np.sqrt(max(wdiag[i], 0.0)) / s.sigma),
                         **flags})
        else:
            rows.append({"id": s.id, "from": s.src, "to": s.dst, "measured": None,
                         "sigma": None, "reconciled": v,
                         "adjustment": None, "mt": None, "mt_critical": None,
                         "mt_rejected": False, "redundant": False, "detectability": None,
                         **flags})
    return rows


def bounds_of(streams: list[StreamData], nodes: list[str], est: Any,
              excluded: list[int]) -> dict[str, Any]:
    """The report's ``bounds``: the streams held at 0, the objective and its p-value bound,
    the compensated leaks and biases; both paths'."""
    bdof = est.dof + len(est.active)
    return {"rule": "none", "active": [streams[j].id for j in est.active],
            "unbounded": {streams[j].id: v for j, v in est.unbounded.items()},
            "objective": est.objective, "dof": bdof,
            "p_value_at_most": float(stats.chi2.sf(est.objective, bdof)) if bdof else 1.0,
            "compensated_leaks": {nodes[n]: v for n, v in est.leaks.items()},
            "compensated_biases": [streams[j].id for j in excluded]}


def _hypotheses(core: _Core, mx: list[int], streams: list[StreamData], nodes: list[str],
                leaks: list[int]) -> list[tuple[str, str, float, np.ndarray, float]]:
    """GLR statistics of every bias and leak hypothesis, vectorised: for signatures F (columns),
    C = diag(Fᵀ V_r⁻¹ F), d = Fᵀ V_r⁻¹ r, T = d²/C, estimate d/C."""
    out: list[tuple[str, str, float, np.ndarray, float]] = []
    if core.dof == 0:
        return out
    floor = TOL * max(1.0, float(np.abs(core.vr_inv).max()))
    for kind, sig, names, skip in (
            ("bias", core.g, [streams[j].id for j in mx], set()),
            ("leak", core.t, nodes, set(leaks))):
        mf = core.vr_inv @ sig
        c = np.einsum("ij,ij->j", sig, mf)
        d = mf.T @ core.r
        big = np.abs(sig).max(axis=0, initial=0.0) > TOL
        for i in np.flatnonzero(big & (c > (floor if kind == "bias" else 0.0))):
            if i in skip:
                continue
            out.append((kind, names[i], float(d[i] * d[i] / c[i]), sig[:, i],
                        float(d[i] / c[i])))
    return out


def _parallel_to(best: np.ndarray, hyps: list[tuple[str, str, float, np.ndarray, float]],
                 m: np.ndarray) -> list[bool]:
    """Which hypotheses' signatures are parallel to ``best`` in the V_r⁻¹ metric (the data
    cannot tell them apart)."""
    f = np.stack([h[3] for h in hyps], axis=1)
    mb = m @ best
    c12 = mb @ f
    c11 = float(best @ mb)
    c22 = np.einsum("ij,ij->j", f, m @ f)
    cos = np.abs(c12) / np.sqrt(c11 * c22)
    return list(np.abs(cos - 1.0) < 1e-6)


def _report(streams: list[StreamData], nodes: list[str], a: np.ndarray, core: _Core,
            gt: dict[str, Any], mx: list[int], unmeasured: list[int],
            suspects: list[Suspect], alpha: float, steps: list[dict[str, Any]],
            est: _Estimate, excluded: list[int]) -> ReconResult:
    a_x, a_u = a[:, mx], a[:, unmeasured]
    unobservable: list[str] = []
    if unmeasured:
        n = _null(a_u)
        for c, j in enumerate(unmeasured):
            if n.size and np.abs(n[c]).max() > 1e-8:
                unobservable.append(streams[j].id)
    wdiag = np.diag(core.w) if core.w.size else np.zeros(len(mx))
    redundant = [i for i in range(len(mx)) if wdiag[i] > TOL * core.var[i]]
    nr = max(1, len(redundant))
    beta = 1 - (1 - alpha) ** (1 / nr)
    zcrit = float(stats.norm.ppf(1 - beta / 2))
    red_mask = np.zeros(len(mx), bool)
    red_mask[redundant] = True
    rows = stream_rows(streams, mx, est, excluded, red_mask, core.adj, core.x, wdiag, zcrit)
    # nodal test on the balances whose streams are all measured
    nodal = []
    m_full = [k for k in range(len(nodes)) if not np.abs(a_u[k]).max(initial=0) > 0]
    nb = 1 - (1 - alpha) ** (1 / max(1, len(m_full)))
    ncrit = float(stats.norm.ppf(1 - nb / 2))
    for k in m_full:
        rk = float(a_x[k] @ core.x)
        vk = float((a_x[k] ** 2) @ core.var)
        z = abs(rk) / np.sqrt(vk) if vk > 0 else None
        nodal.append({"node": nodes[k], "imbalance": rk, "z": z, "critical": ncrit,
                      "rejected": bool(z is not None and z > ncrit)})
    nonredundant = [streams[mx[i]].id for i in range(len(mx)) if i not in redundant]
    eq_sets = [[s.where] + s.equivalent for s in suspects if s.equivalent]
    bounds = bounds_of(streams, nodes, est, excluded)
    return ReconResult(rows, gt, suspects, eq_sets, unobservable, nonredundant, nodal, alpha,
                       steps, bounds)


def _name_weak_points(res: ReconResult, streams: list[StreamData], nodes: list[str],
                      testable: list[bool], unmeasured_at: list[list[str]], mx: list[int],
                      detectability_min: float) -> None:
    """Nodes a leak cannot show at (``testable`` false: their leak signature T e_k is zero;
    ``unmeasured_at``: the unmeasured streams at each node) and meters a bias hides on
    (detectability below ``detectability_min``), in words."""
    for k, node in enumerate(nodes):
        if testable[k]:
            continue
        near = unmeasured_at[k]
        why = (f"its balance holds the unmeasured stream{'s' if len(near) > 1 else ''} "
               f"{', '.join(near)}" if near else
               "its streams are tied to unmeasured ones elsewhere")
        res.untestable.append({"node": node, "unmeasured": near, "why": why})
        res.findings.append(f"node {node} is not testable: {why}, so a leak or a meter error "
                            "there cannot show in the balance")
    for sp in res.suspects:
        size = f"{sp.estimate:+,.0f}" if abs(sp.estimate) >= 1000 else f"{sp.estimate:+.4g}"
        what = (f"a leak of {size} at node {sp.where}" if sp.kind == "leak" else
                f"a bias of {size} on meter {sp.where}")
        text = f"gross error: {what} (GLR {sp.statistic:.1f} > {sp.critical:.2f})"
        if sp.equivalent:
            text += f"; the data cannot tell it from {', '.join(sp.equivalent)}"
        if sp.not_physical:
            text += f", of which {', '.join(sp.not_physical)} would not be physical"
        res.findings.append(text)
    rows = {r["id"]: r for r in res.streams}
    for j in mx:
        r = rows[streams[j].id]
        d = float(r["detectability"])
        if d >= detectability_min:
            continue
        zc = r["mt_critical"]
        sig = float(streams[j].sigma or 0.0)
        val = abs(float(streams[j].value or 0.0))
        if d <= TOL or zc is None:
            need = None
            text = (f"meter {streams[j].id} has no detectability (not redundant): no bias on it "
                    "can show; it is taken as it reads")
        else:
            need = zc / d * sig
            pct = f" ({100 * need / val:.0f} % of its reading)" if val > 0 else ""
            text = (f"meter {streams[j].id} has a low detectability ({d:.2f} < "
                    f"{detectability_min:g}): a bias shows only beyond about {zc / d:.0f} σ"
                    f"{pct}")
        res.undetectable.append({"stream": streams[j].id, "detectability": d,
                                 "min_bias_shown": need})
        res.findings.append(text)


SIGMA_RULES = {
    "rectangular": ("accuracy class a % as a rectangular ±a: sigma = a/sqrt(3) of the reading "
                    "(GUM 4.3.7)", float(np.sqrt(3.0))),
    "tolerance_2sigma": ("accuracy class a % as a tolerance of 2 sigma: sigma = a/2 of the "
                         "reading (the reconciliation convention, Sigmafine's default; "
                         "balance-math.md 1.3)", 2.0),
}


def sigma_from_accuracy(amount: float, accuracy_pct: float, rule: str = "rectangular"
                        ) -> float:
    """Standard uncertainty of an amount from its meter's accuracy class [% of reading].

    The class is a maximum permissible error ±a %. ``rectangular``: with nothing else known,
    GUM (JCGM 100:2008, 4.3.7) takes a rectangular distribution over ±a, so σ = a / √3 of the
    reading. ``tolerance_2sigma``: the tolerance is 2σ, σ = a / 2 (SIGMA_RULES).
    """
    return abs(amount) * accuracy_pct / 100.0 / SIGMA_RULES[rule][1]
