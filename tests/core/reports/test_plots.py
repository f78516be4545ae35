"""Sweep plots people can read: every trial named in a legend with its own style, and status
labels that stay inside the figure."""

from __future__ import annotations

import math

from matplotlib.backends.backend_agg import FigureCanvasAgg

from genlab.core.reports import plots


def _curves(n: int) -> list[plots.Curve]:
    ranks = [(i * 7) % n for i in range(n)]  # not in trial order: the legend sorts by rank
    return [plots.Curve(f"#{i} lr={i}", [(s, 3 - 0.01 * s * (1 + r)) for s in range(1, 30)],
                        [(0, 3.0), (29, 2.5 - 0.01 * r)], "completed", r)
            for i, r in enumerate(ranks)]


def test_legend_names_every_trial_best_first_each_in_its_own_style():
    curves = _curves(9)
    fig = plots.loss_curves_figure(curves)
    (legend,) = fig.legends
    names = [t.get_text() for t in legend.get_texts()]
    assert names == [c.label for c in sorted(curves, key=lambda c: c.rank)]
    styles = {(plots.curve_style(c.rank)["color"], plots.curve_style(c.rank)["linestyle"])
              for c in curves}
    assert len(styles) == 9
    lines = fig.axes[0].get_lines()
    assert len({(line.get_color(), line.get_linestyle()) for line in lines}) == 9


def test_many_trials_reuse_colours_with_another_line_style_and_the_legend_says_how_many_more():
    assert plots.curve_style(3)["color"] == plots.curve_style(13)["color"]
    assert plots.curve_style(3)["linestyle"] != plots.curve_style(13)["linestyle"]
    fig = plots.loss_curves_figure(_curves(20))
    (legend,) = fig.legends
    assert len(legend.get_texts()) == plots.LEGEND_MAX
    assert "4 more in the table" in legend.get_title().get_text()


def test_diverged_and_off_scale_marks_are_explained_in_the_legend():
    curves = _curves(2) + [plots.Curve("#2 lr=1", [(1, 3.0), (2, 50.0), (3, math.inf)],
                                       [(0, 3.0)], "diverged", 2)]
    (legend,) = plots.loss_curves_figure(curves).legends
    names = [t.get_text() for t in legend.get_texts()]
    assert names[-2:] == ["leaves the plot", "diverged (last step)"]


def test_status_labels_stay_inside_the_figure(tmp_path):
    axes = [plots.Axis("lr", [1e-5, 1e-3, 3e-2, 1.0], log=True),
            plots.Axis("optimizer", ["adamw", "sgd", "adamw", "sgd"])]
    fig = plots.objective_figure(axes, [4.49, 0.61, 4.19, None],
                                 ["completed", "completed", "completed", "diverged"],
                                 "best_eval_loss")
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    box = fig.bbox
    labels = [t for ax in fig.axes for t in ax.texts]
    assert [t.get_text() for t in labels] == ["diverged", "diverged"]
    for text in labels:
        extent = text.get_window_extent(renderer)
        assert box.x0 <= extent.x0 and extent.x1 <= box.x1, (extent, box)
        assert box.y0 <= extent.y0 and extent.y1 <= box.y1, (extent, box)
