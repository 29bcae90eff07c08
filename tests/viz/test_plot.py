"""Plots: PNG files written without a display, the right panels, titles and legends."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.image  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from backprop import MLP  # noqa: E402
from backprop.data import moons, spiral, toy  # noqa: E402
from backprop.train import History, fit  # noqa: E402
from backprop.viz.plot import plot_decision_boundary, plot_history, plot_training  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def moons_run():
    X, y = moons(40, noise=0.1, seed=0)
    model = MLP(2, [8, 1], activation="relu", output_activation="linear", seed=0)
    history = fit(model, X, y, epochs=15, validation_split=0.25, progress=False)
    return model, X, y, history


def _texts(fig):
    return [ax.get_title() for ax in fig.axes], [
        t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()
    ]


def test_history_png(tmp_path, moons_run):
    *_, history = moons_run
    path = tmp_path / "history.png"
    plt.close("all")  # what earlier tests may have left open, so the check below is this call's
    fig = plot_history(history, path)
    assert path.read_bytes()[:8] == PNG
    height, width, _ = matplotlib.image.imread(path).shape
    assert (width, height) == (1200, 480)
    titles, legend = _texts(fig)
    assert titles[0] == "Loss (hinge)" and titles[1].startswith("Accuracy: ")
    assert {"training", "validation"} <= set(legend)
    loss_line = fig.axes[0].get_lines()[0]
    assert list(loss_line.get_ydata()) == history.loss
    assert plt.get_fignums() == []  # written through Agg, no pyplot figure left open


def test_decision_boundary_png_binary(tmp_path, moons_run):
    model, X, y, _ = moons_run
    path = tmp_path / "boundary.png"
    fig = plot_decision_boundary(model, X, y, "hinge", path=path, resolution=60)
    assert path.read_bytes()[:8] == PNG
    title = fig.axes[0].get_title()
    assert title.startswith("Decision boundary: ") and "of 40 points right" in title
    _, legend = _texts(fig)
    assert legend[:2] == ["class 0", "class 1"]


def test_decision_boundary_multiclass_and_training_figure(tmp_path):
    X, y = spiral(30, classes=3, seed=0)
    model = MLP(2, [8, 3], activation="relu", output_activation="linear", seed=0)
    history = fit(model, X, y, loss="cross-entropy", epochs=3, progress=False)
    path = tmp_path / "spiral.png"
    fig = plot_training(history, model, X, y, path=path, resolution=50)
    titles, legend = _texts(fig)
    assert titles[0] == "Loss (cross-entropy)" and titles[1].startswith("Accuracy: ")
    assert titles[2].startswith("Decision boundary")
    assert {"class 0", "class 1", "class 2"} <= set(legend)
    assert path.read_bytes()[:8] == PNG


def test_training_figure_without_2d_data_has_two_panels(tmp_path):
    X, y = toy()
    model = MLP(3, [4, 1], seed=0)
    history = fit(model, X, y, epochs=3, progress=False)
    fig = plot_training(history, model, X, y, path=tmp_path / "toy.png")
    assert len(fig.axes) == 2


def test_errors():
    with pytest.raises(ValueError, match="empty"):
        plot_history(History())
    X, y = toy()
    with pytest.raises(ValueError, match="2-D inputs, got 3 features"):
        plot_decision_boundary(MLP(3, [1]), X, y)


def test_interactive_use_returns_a_pyplot_figure(moons_run):
    *_, history = moons_run
    fig = plot_history(history)
    assert plt.fignum_exists(fig.number)
    plt.close(fig)


@pytest.mark.parametrize("options", [{}, {"validation_split": 0.3, "patience": 2}])
def test_the_accuracy_label_never_overlaps_a_legend(tmp_path, options):
    """Issue 8: in the blobs plot the accuracy label sat on the legend. The kept epoch's
    accuracy is in the title now, and no text inside a panel touches its legend."""
    from backprop.data import blobs

    X, y = blobs(seed=0)
    model = MLP(2, [16, 16, 3], activation="relu", output_activation="linear", seed=0)
    history = fit(model, X, y, epochs=30, progress=False, **options)
    fig = plot_training(history, model, X, y, path=tmp_path / "blobs.png", resolution=40)
    kept = history.best_epoch if history.stopped_early else history.epochs - 1
    assert fig.axes[1].get_title().startswith(f"Accuracy: {history.accuracy[kept]:.1%} at ")
    # legend loc="best" steers clear of lines and points but not of free text, so the history
    # panels hold none: a label drawn inside them could land under the legend again
    assert len(fig.axes[0].texts) == 0 and len(fig.axes[1].texts) == 0
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        legend = ax.get_legend().get_window_extent(renderer)
        for text in ax.texts:
            assert not text.get_window_extent(renderer).overlaps(legend), text.get_text()
        title = ax.title.get_window_extent(renderer)
        assert not title.overlaps(legend)


def test_a_plot_file_gets_the_usual_mode_and_keeps_an_old_one(tmp_path, moons_run):
    import os

    *_, history = moons_run
    old = os.umask(0o022)
    try:
        plot_history(history, tmp_path / "new.png")
    finally:
        os.umask(old)
    assert (tmp_path / "new.png").stat().st_mode & 0o777 == 0o644
    kept = tmp_path / "kept.png"
    kept.write_bytes(b"old")
    os.chmod(kept, 0o640)
    plot_history(history, kept)
    assert kept.read_bytes()[:8] == PNG and kept.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.png", "new.png"]


# ---- as the explorer shows them, and saying what is left out (issue 17) ------------------------


def _explorer_class_colours():
    import re
    from importlib.resources import files

    assets = files("backprop.viz").joinpath("assets")
    for asset in assets.iterdir():
        if asset.name.endswith(".js"):
            found = re.search(r"CLASS_COLOURS = \[([^\]]*)\]", asset.read_text(encoding="utf-8"))
            if found:
                return re.findall(r'"(#[0-9a-fA-F]{6})"', found.group(1))
    raise AssertionError("no CLASS_COLOURS in the page assets")


def test_the_classes_have_the_explorers_colours_the_same_way_round(moons_run):
    from matplotlib.colors import to_hex

    model, X, y, _ = moons_run
    fig = plot_decision_boundary(model, X, y, "hinge", resolution=30)
    points = {c.get_label(): c for c in fig.axes[0].collections if c.get_label().startswith("cl")}
    explorer = _explorer_class_colours()
    for k in (0, 1):
        assert to_hex(points[f"class {k}"].get_facecolor()[0]) == explorer[k].lower()
    plt.close(fig)


def test_a_figure_without_a_boundary_says_why(tmp_path):
    from backprop.viz.plot import no_boundary_reason

    X, y = toy()
    model = MLP(3, [4, 1], seed=0)
    history = fit(model, X, y, epochs=3, progress=False)
    fig = plot_training(history, model, X, y, path=tmp_path / "toy.png")
    assert "no decision boundary" in fig._suptitle.get_text().lower()
    assert "this data has 3" in fig._suptitle.get_text()
    assert no_boundary_reason(X) in fig._suptitle.get_text().lower()
    assert no_boundary_reason([[1.0, 2.0]]) is None
    fig = plot_training(history, path=tmp_path / "curves.png")  # no data given: nothing to say
    assert fig._suptitle is None
