"""course.plots.tiles: per-tile rescaling, RGB and single-channel grids, bad shapes."""

import matplotlib
import pytest
import torch

from course.plots import tiles

matplotlib.use("Agg")


def test_rgb_filters_are_rescaled_per_tile():
    w = torch.zeros(3, 3, 2, 2)
    w[0, 0, 0, 0] = -5.0  # one negative red weight: darkest pixel of tile 0
    w[1] = 7.0
    w[1, 2, 1, 1] = 9.0  # tile 1 ranges 7..9: its brightest pixel is pure blue plus the rest at 0
    fig = tiles(w, ncols=2, titles=["a", "b", "c"])
    shown = [ax.images[0].get_array() for ax in fig.axes if ax.images]
    assert len(shown) == 3 and shown[0].shape == (2, 2, 3)
    assert shown[0].min() == 0.0 and shown[0].max() == 1.0
    assert shown[1][1, 1].tolist() == [0.0, 0.0, 1.0] and shown[1][0, 0].tolist() == [0.0, 0.0, 0.0]
    assert len(fig.axes) == 4  # a 2 x 2 grid, the last one empty


def test_feature_maps_and_bad_shapes():
    fig = tiles(torch.arange(32.0).view(2, 4, 4), ncols=8)
    img = fig.axes[0].images[0].get_array()
    assert img.shape == (4, 4) and img[0, 0] == 0.0 and img[3, 3] == 1.0
    with pytest.raises(ValueError, match=r"got shape \(2, 5, 4, 4\)"):
        tiles(torch.zeros(2, 5, 4, 4))
