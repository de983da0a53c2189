"""The bench's structured targets: a line's figure judged against its threshold (a ratio to its
baseline, or the figure itself), the verdicts summed up at the end of ``python -m bench`` and
the exit status non-zero when one target is missed. No timing: the figures are given."""
from __future__ import annotations

import pytest

from bench import common
from bench.__main__ import main
from bench.common import at_most, below, line, ratio_at_least, ratio_at_most


@pytest.mark.parametrize("target, value, baseline, met", [
    (ratio_at_least(0.7), 71.0, 100.0, True),
    (ratio_at_least(0.7), 70.0, 100.0, True),          # on the threshold: met
    (ratio_at_least(0.7), 69.0, 100.0, False),
    (ratio_at_least(0.7), 69.6, 100.0, True),          # judged as printed: 0.70x
    (ratio_at_least(0.7), 50.0, None, False),          # a ratio without a baseline: not shown met
    (ratio_at_most(2), 199.0, 100.0, True),
    (ratio_at_most(2), 201.0, 100.0, False),
    (at_most(1000, "ms"), 1000.0, 1.0, True),          # the figure, not its ratio to the baseline
    (at_most(1000, "ms"), 1000.2, 1.0, False),
    (below(100, "%"), 99.9, None, True),
    (below(100, "%"), 100.0, None, False),
])
def test_a_target_is_judged_on_the_figure_or_its_ratio(target: common.Target, value: float,
                                                       baseline: float | None,
                                                       met: bool) -> None:
    assert target.met(value, baseline) is met


def test_a_target_line_prints_its_verdict_and_a_text_target_is_only_a_note(
        capsys: pytest.CaptureFixture[str]) -> None:
    common.VERDICTS.clear()
    line("ours", 80.0, "rows/s", 100.0, ratio_at_least(0.7))
    line("theirs", 60.0, "rows/s", 100.0, ratio_at_least(0.7))
    line("generate", 12.0, "s", target="well under 60 s")
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("= 0.80x baseline  (target ≥ 0.7x: met)")
    assert out[1].endswith("= 0.60x baseline  (target ≥ 0.7x: MISSED)")
    assert out[2].endswith("12.0 s  (target well under 60 s)")
    assert common.VERDICTS.lines == [("ours", True), ("theirs", False)]
    assert common.VERDICTS.summary() == "targets: 1 met, 1 missed: theirs"
    common.VERDICTS.clear()


def test_bench_exits_non_zero_naming_the_missed_targets(
        capsys: pytest.CaptureFixture[str]) -> None:
    def good() -> None:
        line("store bulk write vs raw executemany", 75.0, "rows/s", 100.0, ratio_at_least(0.7))

    def bad() -> None:
        line("MQTT path vs raw aiomqtt", 65.0, "msg/s", 100.0, ratio_at_least(0.7))
        line("restart after 1 h down", 250.0, "ms", 100.0, ratio_at_most(2))

    sections = {"good": good, "bad": bad}
    assert main(["good"], sections) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "targets: 1 met, 0 missed"
    assert main(["good", "bad"], sections) == 1
    assert capsys.readouterr().out.splitlines()[-1] == (
        "targets: 1 met, 2 missed: MQTT path vs raw aiomqtt; restart after 1 h down")
    assert main([], sections) == 1                        # all sections, the same verdicts
    assert capsys.readouterr().out.splitlines()[-1].startswith("targets: 1 met, 2 missed")
    assert main(["nothing"], sections) == 2
    common.VERDICTS.clear()
