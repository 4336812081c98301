"""The training figure: losses per step, and the held-out score per validated epoch with the kept one marked."""

from __future__ import annotations

from valor_lib.detection.figures import loss_figure

HISTORY = [{"step": s, "loss": 10 / s, "loss_ce": 1 / s, "loss_bbox": 0.5 / s, "loss_giou": 0.8 / s}
           for s in range(1, 61)]


def test_the_loss_figure_has_a_validation_panel_only_when_there_was_validation():
    plain = loss_figure(HISTORY, window=5)
    assert len(plain.axes) == 2
    assert [line.get_label() for line in plain.axes[1].lines] == ["class (focal)", "box L1", "1 - GIoU"]
    checks = [{"epoch": 2, "step": 20, "score": 0.1}, {"epoch": 4, "step": 40, "score": 0.3},
              {"epoch": 6, "step": 60, "score": 0.2}]
    fig = loss_figure(HISTORY, window=5, validation=checks, selected_epoch=4)
    panel = fig.axes[2]
    assert list(panel.lines[0].get_xdata()) == [2, 4, 6] and list(panel.lines[0].get_ydata()) == [0.1, 0.3, 0.2]
    assert [t.get_text() for t in panel.get_legend().get_texts()] == ["kept: epoch 4"]
    assert panel.collections[0].get_offsets().tolist() == [[4.0, 0.3]]
