"""Progress bars: one per phase, closed when done, silent when stderr is not a terminal."""

from __future__ import annotations

from orchestration.progress import Bars


def test_a_bar_per_phase_closes_when_done_and_is_quiet_off_a_terminal(capsys):
    with Bars() as bars:
        bars("train", 1, 3, loss=0.5)
        bars("QAT energy_qat", 2, 4)
        assert set(bars.open) == {"train", "QAT energy_qat"}
        bars("train", 3, 3)
        assert set(bars.open) == {"QAT energy_qat"}
    assert bars.open == {}
    assert capsys.readouterr().err == ""  # pytest's stderr is not a terminal
