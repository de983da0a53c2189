"""The site model: balanced by construction, closed-form totals, faults where they are put.

Hand figures (load amplitude 0, so every brew has size 1): a brew takes 30 000 kg of water,
6 000 kg of malt and 1 500 kg of rice; the mash gives 28 500 kg of sweet wort and 9 000 kg of spent
grains; the kettle evaporates 7 % of the wort (1 995 kg), leaves 1.2 % as trub plus the 60 kg of
hops (402 kg), and casts 28 500 x 0.918 = 26 163 kg of hot wort.
"""
from __future__ import annotations

import numpy as np
import pytest

from cpaudit.simulators.site import CYCLE_S, BrewerySite, Window

T0 = 1_790_000_000.0
NODES = {
    "mash": (["water_in", "malt_in", "adjunct_in"], ["spent_grains", "sweet_wort"]),
    "kettle": (["sweet_wort", "hops_in", "steam_kettle"], ["vapour", "trub", "hot_wort",
                                                          "condensate"]),
    "cip": (["cip_water"], ["cip_waste"]),
    "header": (["steam_main"], ["steam_kettle", "steam_other"]),
    "boiler": (["makeup_water", "condensate"], ["steam_main", "blowdown"]),
    "equalization": (["cip_waste", "brewery_ww"], ["ww_influent"]),
    "anaerobic": (["ww_influent"], ["ww_anaerobic"]),
    "aerobic": (["ww_anaerobic"], ["ww_effluent", "sludge"]),
}


def closure(site: BrewerySite, node: str, t0: float, t1: float) -> float:
    ins, outs = NODES[node]
    t = np.array([t0, t1])
    i = sum(np.diff(site.total(s, t))[0] for s in ins)
    o = sum(np.diff(site.total(s, t))[0] for s in outs)
    return (i - o) / i


def test_hand_figures_over_whole_brews() -> None:
    site = BrewerySite(T0, load_amplitude=0.0)
    t = np.array([T0 + 8 * CYCLE_S])
    assert site.total("water_in", t)[0] == pytest.approx(8 * 30000, rel=1e-12)
    assert site.total("hot_wort", t)[0] == pytest.approx(8 * 26163, rel=1e-12)
    assert site.total("trub", t)[0] == pytest.approx(8 * 402, rel=1e-12)
    assert site.total("vapour", t)[0] == pytest.approx(8 * 1995, rel=1e-12)
    for node in NODES:
        assert closure(site, node, T0, T0 + 8 * CYCLE_S) == pytest.approx(0, abs=1e-12), node


def test_continuous_units_balance_at_every_instant_and_rates_integrate() -> None:
    site = BrewerySite(T0, load_amplitude=0.08)
    t = T0 + np.arange(0, 2 * CYCLE_S, 1.0)
    for node in ("equalization", "anaerobic", "aerobic", "header"):
        ins, outs = NODES[node]
        r_in = sum(site.rate(s, t) for s in ins)
        r_out = sum(site.rate(s, t) for s in outs)
        assert np.allclose(r_in, r_out, rtol=1e-12), node
    for s in ("hot_wort", "gas", "el_brewhouse", "ww_influent"):
        numeric = site.rate(s, t + 0.5).sum() / 3600          # midpoint rule, 1 s steps
        exact = np.diff(site.total(s, np.array([T0, T0 + 2 * CYCLE_S])))[0]
        assert numeric == pytest.approx(exact, rel=2e-4), s


def test_a_timed_leak_shows_only_at_its_node() -> None:
    site = BrewerySite(T0, load_amplitude=0.0)
    site.add_leak("anaerobic", 0.10, Window(T0 + 3600, T0 + 7200))
    assert closure(site, "anaerobic", T0 + 3600, T0 + 7200) == pytest.approx(0.10, rel=1e-9)
    assert closure(site, "anaerobic", T0 + 7200, T0 + 3 * 3600) == pytest.approx(0, abs=1e-12)
    for node in ("equalization", "aerobic", "mash", "kettle", "boiler"):
        assert closure(site, node, T0, T0 + 3 * CYCLE_S) == pytest.approx(0, abs=1e-12), node


def test_aborted_brew_and_shutdown() -> None:
    site = BrewerySite(T0, load_amplitude=0.0)
    k = site.abort_brew_at(T0 + 2 * CYCLE_S + 0.2 * CYCLE_S)     # during mashing of brew 2
    assert k == 2
    t = T0 + 2 * CYCLE_S + np.array([0.1, 0.25, 0.5, 0.9]) * CYCLE_S
    assert list(site.state(t)) == [1.0, 0.0, 0.0, 0.0]
    brews = np.diff(site.total("hot_wort", np.array([T0, T0 + 4 * CYCLE_S])))[0] / 26163
    assert brews == pytest.approx(3.0, rel=1e-9)                # brew 2 never cast its wort
    # the aborted brew leaves its mash in the vessel: the mash does not close over that cycle
    assert closure(site, "mash", T0 + 2 * CYCLE_S, T0 + 3 * CYCLE_S) > 0.5
    off = BrewerySite(T0, load_amplitude=0.0)
    off.add_load_drop(0.0, Window(T0 + CYCLE_S, T0 + 3 * CYCLE_S))
    assert off.rate("brewery_ww", np.array([T0 + 1.5 * CYCLE_S]))[0] == 0.0
    assert off.state(np.array([T0 + 1.5 * CYCLE_S, T0 + 3.1 * CYCLE_S])).tolist() == [0.0, 1.0]
    assert np.diff(off.total("hot_wort", np.array([T0, T0 + 4 * CYCLE_S])))[0] / 26163 == \
        pytest.approx(2.0, rel=1e-9)
