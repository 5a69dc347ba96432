"""lib.early_stopping on scripted validation curves: when it stops and which weights it restores."""

import pytest
import torch
import torch.nn as nn

from lib.early_stopping import EarlyStopper, improved


def _run(curve, tmp_path, **kw):
    """Feed a validation curve; the model's weight is set to the epoch number before each call."""
    model = nn.Linear(1, 1, bias=False)
    stopper = EarlyStopper(tmp_path / "best.pt", **kw)
    key = kw.get("monitor", "val_loss")
    for epoch, value in enumerate(curve, start=1):
        model.weight.data.fill_(epoch)
        if stopper(epoch, {key: value}, model):
            break
    fresh = stopper.restore(nn.Linear(1, 1, bias=False))
    return epoch, stopper.best_epoch, int(fresh.weight.item())


@pytest.mark.parametrize(
    "curve,patience,min_delta,expected",
    [
        ([1.0, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8], 3, 0.0, (5, 2, 2)),  # a plateau: ties are no improvement
        ([1.0, 0.9, 0.95, 0.85, 0.87, 0.86, 0.88, 0.7], 3, 0.0, (7, 4, 4)),  # noise after the best epoch
        (
            [1.0, 0.9, 0.92, 0.91, 0.8, 0.85, 0.84, 0.83],
            3,
            0.0,
            (8, 5, 5),
        ),  # a late improvement resets patience
        ([1.0, 0.95, 0.93, 0.92, 0.5], 3, 0.1, (4, 1, 1)),  # gains below min_delta do not count
        ([1.0, 0.9, 0.8], 5, 0.0, (3, 3, 3)),  # never stops: the curve ends first
    ],
)
def test_scripted_curves(curve, patience, min_delta, expected, tmp_path):
    assert _run(curve, tmp_path, patience=patience, min_delta=min_delta) == expected


def test_accuracy_is_maximised(tmp_path):
    assert _run([0.5, 0.7, 0.6, 0.65, 0.69], tmp_path, monitor="val_acc", patience=3) == (5, 2, 2)


def test_improved_rule():
    assert improved(1.0, None) and improved(0.5, 0.6) and not improved(0.6, 0.6)
    assert not improved(0.55, 0.6, min_delta=0.1) and improved(0.7, 0.6, mode="max")
    with pytest.raises(ValueError, match="patience"):
        EarlyStopper("x.pt", patience=0)


def test_checkpoint_file_holds_the_best_weights(tmp_path):
    model = nn.Linear(2, 1)
    stopper = EarlyStopper(tmp_path / "sub" / "best.pt", patience=2)
    stopper(1, {"val_loss": 1.0}, model)
    best = {k: v.clone() for k, v in model.state_dict().items()}
    model.weight.data.add_(1)
    stopper(2, {"val_loss": 2.0}, model)
    on_disk = torch.load(tmp_path / "sub" / "best.pt", weights_only=True)
    assert all(torch.equal(on_disk[k], best[k]) for k in best)
