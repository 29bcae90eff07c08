"""fit(record=True): snapshots that agree with training itself."""

from __future__ import annotations

import pytest

from backprop import MLP
from backprop.data import moons, spiral
from backprop.train import MAX_FRAMES, _recorded_epochs, fit

X, Y = moons(40, noise=0.1, seed=3)


def _model(seed=0, **kw):
    return MLP(2, [6, 1], activation="tanh", output_activation="linear", seed=seed, **kw)


def _fit(model, epochs, **kw):
    kw.setdefault("optimizer", "sgd")
    kw.setdefault("lr", 0.5)
    return fit(model, X, Y, epochs=epochs, progress=False, **kw)


def test_off_by_default_and_recording_changes_nothing():
    plain, recorded = _model(), _model()
    h0 = _fit(plain, 5)
    h1 = _fit(recorded, 5, record=True)
    assert h0.snapshots == [] and h0.recording is None
    assert [p.data for p in plain.parameters()] == [p.data for p in recorded.parameters()]
    assert h0.loss == h1.loss and h0.accuracy == h1.accuracy


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"batch_size": 8},
        {"compile": True},
        {"compile": True, "batch_size": 8},
        {"optimizer": "adam", "lr": 0.05},
    ],
    ids=["full-batch", "minibatch", "compiled", "compiled-minibatch", "adam"],
)
def test_snapshot_k_is_the_model_after_k_epochs_exactly(options):
    epochs = 6
    history = _fit(_model(), epochs, record=True, **options)
    assert [s.epoch for s in history.snapshots] == list(range(epochs + 1))
    for k in (0, 1, 3, epochs):
        again = _model()
        if k:
            _fit(again, k, **options)
        assert history.snapshot(k).parameters == [p.data for p in again.parameters()], k


def test_snapshot_metrics_and_grads_follow_training():
    history = _fit(_model(), 4, record=True)
    snaps = history.snapshots
    assert [s.loss for s in snaps[1:]] == history.loss
    assert [s.accuracy for s in snaps[1:]] == history.accuracy
    assert snaps[0].grads == [0.0] * len(snaps[0].parameters)  # no update has happened yet
    # full-batch SGD: each epoch's one update moved the previous snapshot by -lr * its grads
    for before, after in zip(snaps, snaps[1:]):
        moved = [p - 0.5 * g for p, g in zip(before.parameters, after.grads)]
        assert moved == after.parameters
    assert any(g != 0.0 for g in snaps[-1].grads)


def test_a_snapshot_loaded_into_a_fresh_model_gives_what_training_measured():
    from backprop.train import _evaluate, get_objective

    history = _fit(_model(), 3, record=True)
    objective, l2 = get_objective("hinge"), history.recording.l2
    for k in (0, 1, 2, 3):
        model = history.model_at(k)
        loss, accuracy = _evaluate(model, X, history.recording.y, objective, l2)
        assert (loss, accuracy) == (history.snapshot(k).loss, history.snapshot(k).accuracy)
        if k:
            assert (loss, accuracy) == (history.loss[k - 1], history.accuracy[k - 1])


def test_long_runs_keep_evenly_spaced_frames_with_the_first_and_the_last():
    assert _recorded_epochs(200) == set(range(201))
    kept = sorted(_recorded_epochs(1000))
    assert len(kept) == MAX_FRAMES and kept[0] == 0 and kept[-1] == 1000
    gaps = {b - a for a, b in zip(kept, kept[1:])}
    assert gaps == {5}
    kept = sorted(_recorded_epochs(333))
    assert (
        len(kept) == MAX_FRAMES
        and kept[-1] == 333
        and max(b - a for a, b in zip(kept, kept[1:])) <= 2
    )
    history = fit(_model(), X[:10], Y[:10], epochs=450, lr=0.1, optimizer="sgd",
                  progress=False, record=True)  # fmt: skip
    epochs = [s.epoch for s in history.snapshots]
    assert len(epochs) == MAX_FRAMES and epochs[0] == 0 and epochs[-1] == 450


def test_early_stopping_records_the_last_epoch():
    history = fit(_model(), X, Y, epochs=300, lr=0.0, optimizer="sgd", patience=3,
                  progress=False, record=True)  # fmt: skip
    assert history.stopped_early
    assert history.snapshots[-1].epoch == history.epochs == 4


def test_several_classes_and_model_at():
    Xs, ys = spiral(30, classes=3, seed=0)
    model = MLP(2, [8, 3], activation="tanh", output_activation="linear", seed=1)
    history = fit(model, Xs, ys, epochs=3, progress=False, record=True)
    assert history.recording.architecture == model.architecture()
    assert history.model_at(3).state_dict() == model.state_dict()


def test_errors_say_what_went_wrong():
    history = _fit(_model(), 2)
    with pytest.raises(ValueError, match=r"record=True"):
        history.model_at(1)
    history = _fit(_model(), 2, record=True)
    with pytest.raises(ValueError, match=r"no snapshot at epoch 7: the recorded epochs run "):
        history.snapshot(7)
    with pytest.raises(ValueError, match=r"record must be True or False, got 'yes'"):
        _fit(_model(), 1, record="yes")
