"""Generated flow networks for the reconciliation bench and tests.

A network of ``n_streams`` streams over ``n_nodes`` nodes is built from random paths
ENV → nodes in increasing order → ENV, each carrying a random flow; a stream is an edge of some
path, so every node balances exactly with the true flows. Measurements are the true flows plus
Gaussian noise of σ = ``rel_sigma`` of the flow; a share of streams is left unmeasured.
Deterministic for a seed.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from cpaudit.analyzer.reconcile import ENV, StreamData


@dataclass
class Network:
    streams: list[StreamData]
    truth: dict[str, float]


def network(n_streams: int = 1000, n_nodes: int = 400, unmeasured: float = 0.1,
            rel_sigma: float = 0.01, seed: int = 1) -> Network:
    rng = np.random.default_rng(seed)
    edges: dict[tuple[str, str], int] = {}
    flows: list[float] = []
    names = [f"N{i:04d}" for i in range(n_nodes)]
    touched = 0
    while len(edges) < n_streams:
        # the first paths visit every node, so none is left out; later ones are random
        if touched < n_nodes:
            length = int(rng.integers(2, 6))
            nodes = list(range(touched, min(n_nodes, touched + length)))
            touched = nodes[-1] + 1
        else:
            length = int(rng.integers(2, 8))
            nodes = sorted(set(int(v) for v in rng.integers(0, n_nodes, length)))
        q = float(rng.uniform(5.0, 100.0))
        hops = [ENV] + [names[k] for k in nodes] + [ENV]
        for a, b in zip(hops, hops[1:]):
            key = (a, b)
            if key not in edges:
                if len(edges) >= n_streams:
                    # out of streams: route the rest of the path over a fresh edge to ENV
                    key = (a, ENV)
                    if key not in edges:
                        edges[key] = len(flows)
                        flows.append(0.0)
                    flows[edges[key]] += q
                    break
                edges[key] = len(flows)
                flows.append(0.0)
            flows[edges[key]] += q
    out: list[StreamData] = []
    truth: dict[str, float] = {}
    for (a, b), j in edges.items():
        sid = f"S{j:04d}"
        true = flows[j]
        truth[sid] = true
        if rng.random() < unmeasured:
            out.append(StreamData(sid, a, b, None, None))
        else:
            sigma = rel_sigma * true
            out.append(StreamData(sid, a, b, true + float(rng.normal(0.0, sigma)), sigma))
    return Network(out, truth)


def with_bias(net: Network, stream: str, sigmas: float) -> Network:
    """The network with meter ``stream`` reading ``sigmas`` of its σ too high."""
    out = [replace(s, value=s.value + sigmas * s.sigma)
           if s.id == stream and s.value is not None and s.sigma is not None else s
           for s in net.streams]
    return Network(out, dict(net.truth))


def with_leak(net: Network, node: str, amount: float) -> Network:
    """The network with an unmetered loss of ``amount`` at ``node``: the flow along one path
    from ENV to the node rises by ``amount`` (every node on the way still balances), so only
    ``node`` takes in more than it gives out. The meters read the new true flows with the same
    noise as before."""
    into: dict[str, list[StreamData]] = {}
    for s in net.streams:
        into.setdefault(s.dst, []).append(s)
    path: list[StreamData] = []
    at = node
    while at != ENV:
        step = into[at][0]
        path.append(step)
        at = step.src
    raised = {s.id for s in path}
    out = [replace(s, value=s.value + amount) if s.id in raised and s.value is not None else s
           for s in net.streams]
    truth = {k: v + amount if k in raised else v for k, v in net.truth.items()}
    return Network(out, truth)


def pick_faults(net: Network) -> tuple[str, str]:
    """Where to inject faults the reconciliation should find: a well-instrumented node (it and its neighbours' streams all measured) for a leak and a
    measured stream elsewhere with good detectability for a bias."""
    from cpaudit.analyzer.reconcile import reconcile
    clean = reconcile(net.streams)
    det = {r["id"]: r["detectability"] or 0.0 for r in clean.streams}
    unmeasured = {s.id for s in net.streams if s.value is None}
    touching: dict[str, list[StreamData]] = {}
    for s in net.streams:
        for n in (s.src, s.dst):
            touching.setdefault(n, []).append(s)
    nodes = [n for n, ss in sorted(touching.items()) if n != ENV
             and all(s.id not in unmeasured and s.src != ENV and s.dst != ENV for s in ss)
             and all(t.id not in unmeasured for s in ss for m in (s.src, s.dst)
                     for t in touching.get(m, []) if m != ENV)]
    # the busiest of them: a 10 % leak there is well above the meters' noise
    node = max(nodes, key=lambda n: sum(s.value or 0.0 for s in touching[n] if s.dst == n))
    near = {s.id for s in touching[node]}
    half = net.streams[len(net.streams) // 2:]
    stream = next(s.id for s in half if s.id not in near and s.id not in unmeasured
                  and det[s.id] > 0.7)
    return node, stream
