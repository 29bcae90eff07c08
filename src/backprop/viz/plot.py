"""Plots of a training run with matplotlib: loss and accuracy curves, and a 2-D decision boundary.

Each function draws on a new figure and returns it; with ``path`` it also writes a PNG (through
the non-interactive Agg backend, so it works without a display) and closes the figure.
"""

from __future__ import annotations

import io
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

from ..data import plural
from ..nn import Module
from ..train import History, get_objective, predict_outputs

__all__ = ["plot_history", "plot_decision_boundary", "plot_training", "no_boundary_reason"]

# Colour-blind-safe (Okabe-Ito) colours for the curves
COLORS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
# The classes in the explorer's colours (CLASS_COLOURS in viz/assets), the same way round:
# class 0 orange, class 1 blue, ...
CLASS_COLORS = [
    "#e8710a",
    "#1a73e8",
    "#188038",
    "#a142f4",
    "#d93025",
    "#12a4b8",
    "#c69000",
    "#5f6368",
    "#e52592",
    "#7cb342",
]


def _figure(path: str | Path | None, *size: float):
    if path is not None:
        from matplotlib.figure import Figure  # no pyplot: draws with Agg, needs no display

        return Figure(figsize=size, layout="constrained")
    import matplotlib.pyplot as plt  # interactive use, e.g. inline in a notebook

    return plt.figure(figsize=size, layout="constrained")


def _finish(fig, path: str | Path | None):
    if path is not None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        from ..serialize import write_atomic

        FigureCanvasAgg(fig)
        buffer = io.BytesIO()  # drawn whole first: a failed plot leaves an old file as it was
        fig.savefig(buffer, format=Path(path).suffix.lstrip(".").lower() or "png", dpi=120)
        write_atomic(path, buffer.getvalue())
    return fig


def _history_axes(ax_loss, ax_acc, history: History) -> None:
    epochs = range(1, history.epochs + 1)
    ax_loss.plot(epochs, history.loss, color=COLORS[0], label="training")
    ax_acc.plot(epochs, history.accuracy, color=COLORS[0], label="training")
    if history.val_loss:
        ax_loss.plot(epochs, history.val_loss, color=COLORS[1], label="validation")
        ax_acc.plot(epochs, history.val_accuracy, color=COLORS[1], label="validation")
    if history.best_epoch is not None and (history.stopped_early or history.interrupted):
        for ax in (ax_loss, ax_acc):
            ax.axvline(history.best_epoch + 1, color="grey", ls=":", lw=1, label="best epoch")
    name = f" ({history.loss_name})" if history.loss_name else ""
    ax_loss.set(title=f"Loss{name}", xlabel="epoch", ylabel="loss")
    if min(history.loss + history.val_loss) > 0 and max(history.loss) / min(history.loss) > 50:
        ax_loss.set_yscale("log")
    # the accuracy of the weights the model ends with (the best epoch's after a stop): in the
    # title and as a dot, never as text in the plot, where the legend could land on it
    kept = history.epochs - 1
    stopped = history.stopped_early or history.interrupted
    if stopped and history.best_epoch is not None:
        kept = history.best_epoch
    which = "the best epoch" if stopped and history.best_epoch is not None else "epoch"
    ax_acc.set(
        title=f"Accuracy: {history.accuracy[kept]:.1%} at {which} {kept + 1}",
        xlabel="epoch",
        ylabel="accuracy",
        ylim=(-0.02, 1.02),
    )
    ax_acc.plot([kept + 1], [history.accuracy[kept]], "o", color=COLORS[0], ms=4)
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize="small")
        ax.xaxis.get_major_locator().set_params(integer=True)


def plot_history(history: History, path: str | Path | None = None):
    """Loss and accuracy per epoch (training, and validation if there was any)."""
    if not history.loss:
        raise ValueError("the history is empty: no epoch finished")
    fig = _figure(path, 10, 4)
    ax_loss, ax_acc = fig.subplots(1, 2)
    _history_axes(ax_loss, ax_acc, history)
    return _finish(fig, path)


def _boundary_axes(
    ax,
    model: Module,
    X: Sequence[Sequence[float]],
    y: Sequence[Hashable],
    loss: str,
    classes: Sequence[Hashable],
    resolution: int,
    feature_names: Sequence[str] | None,
) -> None:
    import numpy as np
    from matplotlib.colors import ListedColormap

    if not X or len(X[0]) != 2:
        raise ValueError(
            f"a decision boundary needs 2-D inputs, got {plural(len(X[0]) if X else 0, 'feature')}"
        )
    objective = get_objective(loss)
    k = len(classes)
    pts = np.asarray(X, dtype=float)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    pad = 0.1 * np.maximum(hi - lo, 1e-9) + 0.1
    xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution)
    ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution)
    gx, gy = np.meshgrid(xs, ys)
    grid = np.column_stack([gx.ravel(), gy.ravel()]).tolist()
    outs = predict_outputs(model, grid)
    region = np.array([objective.predict(o) for o in outs], dtype=float).reshape(gx.shape)
    colors = CLASS_COLORS[:k] if k <= len(CLASS_COLORS) else None
    cmap = ListedColormap(colors) if colors else "tab20"
    ax.contourf(gx, gy, region, levels=np.arange(k + 1) - 0.5, cmap=cmap, alpha=0.25)
    if objective.binary:  # the boundary itself: where the score crosses 0
        score = np.asarray(outs, dtype=float).reshape(gx.shape)
        ax.contour(gx, gy, score, levels=[0.0], colors="black", linewidths=1.2)
    else:  # the edge of each class's region (contouring class indices would double some edges)
        for i in range(k):
            inside = (region == i).astype(float)
            if 0 < inside.mean() < 1:
                ax.contour(gx, gy, inside, levels=[0.5], colors="black", linewidths=1.0)

    index_of = {c: i for i, c in enumerate(classes)}
    truth = np.array([index_of[label] for label in y])
    predicted = np.array([objective.predict(o) for o in predict_outputs(model, X)])
    for i, c in enumerate(classes):
        mask = truth == i
        ax.scatter(
            pts[mask, 0],
            pts[mask, 1],
            s=28,
            color=CLASS_COLORS[i % len(CLASS_COLORS)],
            edgecolors="black",
            linewidths=0.6,
            label=f"class {c}",
            zorder=3,
        )
    wrong = predicted != truth
    if wrong.any():
        ax.scatter(
            pts[wrong, 0],
            pts[wrong, 1],
            s=110,
            facecolors="none",
            edgecolors="red",
            linewidths=1.5,
            label=f"misclassified ({int(wrong.sum())})",
            zorder=4,
        )
    acc = 1.0 - wrong.mean()
    ax.set_title(f"Decision boundary: {acc:.1%} of {plural(len(X), 'point')} right")
    names = list(feature_names) if feature_names else ["x1", "x2"]
    ax.set(xlabel=names[0], ylabel=names[1], xlim=(xs[0], xs[-1]), ylim=(ys[0], ys[-1]))
    ax.set_aspect("equal", adjustable="box")
    ax.legend(loc="upper right", fontsize="small", framealpha=0.9)


def plot_decision_boundary(
    model: Module,
    X: Sequence[Sequence[float]],
    y: Sequence[Hashable],
    loss: str = "hinge",
    classes: Sequence[Hashable] | None = None,
    path: str | Path | None = None,
    resolution: int = 200,
    feature_names: Sequence[str] | None = None,
):
    """The classes the model predicts over the plane of 2-D data, with the points on top
    (misclassified points ringed in red)."""
    from ..data import sorted_classes

    classes = list(classes) if classes is not None else sorted_classes(list(y))
    fig = _figure(path, 6, 5.5)
    _boundary_axes(fig.subplots(), model, X, y, loss, classes, resolution, feature_names)
    return _finish(fig, path)


def no_boundary_reason(X: Sequence[Sequence[float]] | None) -> str | None:
    """Why plot_training draws no decision boundary for rows X (None: it draws one)."""
    width = len(X[0]) if X else 0
    if width == 2:
        return None
    return (
        f"no decision boundary: it is drawn over 2 input features, and this data has {width}; "
        "the plot shows the loss and accuracy"
    )


def plot_training(
    history: History,
    model: Module | None = None,
    X: Sequence[Sequence[float]] | None = None,
    y: Sequence[Hashable] | None = None,
    path: str | Path | None = None,
    feature_names: Sequence[str] | None = None,
    resolution: int = 200,
) -> Any:
    """One figure: loss, accuracy and (for 2-D data with a model) the decision boundary; with
    data of another width, the figure says why the boundary is not drawn."""
    if not history.loss:
        raise ValueError("the history is empty: no epoch finished")
    given = model is not None and X is not None and y is not None
    boundary = given and no_boundary_reason(X) is None
    fig = _figure(path, 16 if boundary else 10, 5 if boundary else 4)
    if boundary:
        axes = fig.subplots(1, 3, width_ratios=[1, 1, 1.15])
        _history_axes(axes[0], axes[1], history)
        from ..data import sorted_classes

        classes = history.classes or sorted_classes(list(y))
        _boundary_axes(axes[2], model, X, y, history.loss_name, classes, resolution, feature_names)
    else:
        _history_axes(*fig.subplots(1, 2), history)
        if given:
            fig.suptitle(no_boundary_reason(X).capitalize(), fontsize="medium", color="#444")
    return _finish(fig, path)
