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
  adjustment; near 0, "no gross error" says nothing about that meter.

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


def _core(a_x: np.ndarray, a_u: np.ndarray, x: np.ndarray, var: np.ndarray) -> _Core:
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
    w = vg @ vr_inv @ vg.T
    return _Core(x, var, g, t, r, vr_inv, xhat, x - xhat, w, k, float(r @ vr_inv @ r))


def reconcile(streams: list[StreamData], alpha: float = 0.05, max_errors: int = 5
              ) -> ReconResult:
    if not 0 < alpha < 1:
        raise ReconcileError(f"alpha must be between 0 and 1, got {alpha}")
    ids = [s.id for s in streams]
    if len(set(ids)) != len(ids):
        raise ReconcileError("duplicate stream ids")
    for s in streams:
        if s.value is not None and (s.sigma is None or not s.sigma > 0):
            raise ReconcileError(f"stream {s.id}: a measured value needs a sigma > 0")
        if s.src == s.dst:
            raise ReconcileError(f"stream {s.id}: starts and ends at {s.src}")
    nodes = _nodes(streams)
    if not nodes:
        raise ReconcileError("no node besides ENV")
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
        best = max(hyps, key=lambda h: h[2])
        if best[2] <= crit:
            break
        group = [h for h, par in zip(hyps, _parallel_to(best[3], hyps, core.vr_inv)) if par]
        names = [h[1] for h in group]
        suspects.append(Suspect(best[0], best[1], best[2], best[4], crit,
                                [n for n in names if n != best[1]]))
        if best[0] == "bias":
            excluded.append(ids.index(best[1]))
        else:
            leaks.append(nodes.index(best[1]))
    assert first_core is not None and first_gt is not None
    return _report(streams, nodes, a, first_core, first_gt, first_mx, base_unmeasured,
                   suspects, alpha, steps)


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
            suspects: list[Suspect], alpha: float, steps: list[dict[str, Any]]) -> ReconResult:
    a_x, a_u = a[:, mx], a[:, unmeasured]
    uhat = np.zeros(len(unmeasured))
    unobservable: list[str] = []
    if unmeasured:
        uhat = np.linalg.lstsq(a_u, -a_x @ core.xhat, rcond=None)[0]
        n = _null(a_u)
        for c, j in enumerate(unmeasured):
            if n.size and np.abs(n[c]).max() > 1e-8:
                unobservable.append(streams[j].id)
    wdiag = np.diag(core.w) if core.w.size else np.zeros(len(mx))
    redundant = [i for i in range(len(mx)) if wdiag[i] > TOL * core.var[i]]
    nr = max(1, len(redundant))
    beta = 1 - (1 - alpha) ** (1 / nr)
    zcrit = float(stats.norm.ppf(1 - beta / 2))
    rows: list[dict[str, Any]] = []
    pos = {j: i for i, j in enumerate(mx)}
    upos = {j: c for c, j in enumerate(unmeasured)}
    for j, s in enumerate(streams):
        if j in pos:
            i = pos[j]
            red = i in redundant
            mt = float(abs(core.adj[i]) / np.sqrt(wdiag[i])) if red else None
            rows.append({"id": s.id, "from": s.src, "to": s.dst, "measured": s.value,
                         "sigma": s.sigma, "reconciled": float(core.xhat[i]),
                         "adjustment": float(core.xhat[i] - core.x[i]),
                         "mt": mt, "mt_critical": zcrit if red else None,
                         "mt_rejected": bool(mt is not None and mt > zcrit),
                         "redundant": red,
                         "detectability": float(np.sqrt(max(wdiag[i], 0.0)) / s.sigma)})
        else:
            c = upos[j]
            obs = s.id not in unobservable
            rows.append({"id": s.id, "from": s.src, "to": s.dst, "measured": None,
                         "sigma": None, "reconciled": float(uhat[c]) if obs else None,
                         "adjustment": None, "mt": None, "mt_critical": None,
                         "mt_rejected": False, "redundant": False, "detectability": None})
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
    return ReconResult(rows, gt, suspects, eq_sets, unobservable, nonredundant, nodal, alpha,
                       steps)


def sigma_from_accuracy(amount: float, accuracy_pct: float) -> float:
    """Standard uncertainty of an amount from its meter's accuracy class [% of reading].

    The class is a maximum permissible error ±a %; with nothing else known, GUM (JCGM 100:2008,
    4.3.7) takes a rectangular distribution over ±a, so σ = a / √3 of the reading.
    """
    return abs(amount) * accuracy_pct / 100.0 / np.sqrt(3.0)
