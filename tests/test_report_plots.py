"""The report's figures show every configuration they are given, however few milestones it has, and give each
stratum of a study its own best-per-level line."""

import pandas as pd
import pytest

from nerftune.report import plots


@pytest.fixture
def drawn(monkeypatch):
    """The figures the plot functions would save, kept open for inspection."""
    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, out: figures.append(fig))
    yield figures
    for fig in figures:
        plots.plt.close(fig)


def _visible(line) -> bool:
    """A line draws something: a segment between two points, or a marker."""
    return len(line.get_xdata()) >= 2 or line.get_marker() not in (None, "None", "", " ")


@pytest.mark.parametrize("steps", [[30], [10, 20, 30]], ids=["one milestone", "three milestones"])
def test_every_configuration_of_the_learning_curves_is_drawn(steps, drawn, tmp_path):
    trials = pd.DataFrame({"configuration": [0, 1], "frames": [3, 12], "stop_reason": ["completed"] * 2})
    # every milestone on the whole test set (no `eval.max_images`): the curve is the milestones themselves
    curves = pd.DataFrame(
        [
            {"configuration": c, "step": s, "psnr": 15.0 + c + s / 100, "full_test": True}
            for c in (0, 1)
            for s in steps
        ]
    )
    plots.plot_learning_curves(curves, trials, ["frames"], "psnr", tmp_path / "curves.png")
    (fig,) = drawn
    lines = {line.get_label(): line for line in fig.axes[0].get_lines() if not line.get_label().startswith("_")}
    assert sorted(lines) == ["0: frames=3", "1: frames=12"]
    assert all(_visible(line) for line in lines.values()), {k: line.get_xdata() for k, line in lines.items()}


def test_each_stratum_gets_its_own_best_per_level_line(drawn, tmp_path):
    # frames is the stratified dimension; two scenes are the other strata: one black line per scene, never one that
    # joins a level's best on one scene to the next level's best on the other
    final = pd.DataFrame(
        {
            "scene": ["a", "a", "b", "b"] * 2,
            "frames": [6, 12, 6, 12] * 2,
            "lr": [0.01] * 4 + [0.001] * 4,
            "psnr": [20.0, 22.0, 25.0, 27.0, 19.0, 21.0, 24.0, 26.0],
        }
    )
    summary = final.assign(mean=final.psnr, ci_low=final.psnr - 1, ci_high=final.psnr + 1, n=1)
    best = summary[summary.lr == 0.01]
    plots.plot_by_dimension(
        summary, final, "frames", ["scene", "lr"], "psnr", tmp_path / "f.png", best=best, within=["scene"]
    )
    (fig,) = drawn
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert {"best per level (scene=a)", "best per level (scene=b)"} <= set(lines)
    assert list(lines["best per level (scene=a)"].get_ydata()) == [20.0, 22.0]
    assert list(lines["best per level (scene=b)"].get_ydata()) == [25.0, 27.0]


def test_the_tolerance_under_the_most_frames_compared_is_a_dotted_line_on_the_curve_it_answers(drawn, tmp_path):
    # 42 frames has one replicate only: the most compared is 18 frames (22.5), and the line lies 0.5 dB under it
    summary = pd.DataFrame({"frames": [6, 18, 42], "mean": [20.0, 22.5, 30.0], "n": [2, 2, 1]})
    summary = summary.assign(ci_low=summary["mean"] - 1, ci_high=summary["mean"] + 1)
    final = pd.DataFrame({"frames": [6, 6, 18, 18, 42], "psnr": [19.5, 20.5, 22.0, 23.0, 30.0]})
    enough = (-0.5, "0.5 dB under the most: enough above")
    plots.plot_by_dimension(summary, final, "frames", [], "psnr", tmp_path / "f.png", enough=enough)
    (fig,) = drawn
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert list(lines[enough[1]].get_ydata()) == [22.0, 22.0]
    # several curves and no best-per-level line: no one curve to mark
    two = pd.concat([summary.assign(lr=1), summary.assign(lr=2)])
    plots.plot_by_dimension(two, final.assign(lr=1), "frames", ["lr"], "psnr", tmp_path / "g.png", enough=enough)
    assert enough[1] not in [line.get_label() for line in drawn[1].axes[0].get_lines()]
