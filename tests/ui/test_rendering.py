"""The Qt-free pictures and words behind the views: grid layout, receptive-field colours, units."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.ui.formatting import format_nll, percentile_text, rate_text
from app.ui.rendering import blind_spot_mask, grid_layout, summarize_field, tile_rgb


def test_grid_layout_locates_every_pixel_of_every_tile():
    layout = grid_layout(5, 4, 3, pad=1)
    assert layout.columns == 3 and layout.rows == 2
    for index in range(5):
        top, left = layout.origin(index)
        for r in range(4):
            for c in range(3):
                assert layout.locate(top + r + 0.5, left + c + 0.5) == (index, r, c)
    assert layout.locate(0.5, 0.5) is None  # padding
    assert layout.locate(*[v + 0.5 for v in layout.origin(5)]) is None  # the empty sixth tile


def test_tiles_show_drawn_pixels_and_mute_the_rest():
    images = np.zeros((2, 1, 2, 2), np.uint8)
    images[1, 0, 0, 0] = 1
    layout = grid_layout(2, 2, 2)
    drawn = np.array([[True, False], [False, False]])
    grid = tile_rgb(images, 2, layout, drawn)
    top, left = layout.origin(1)
    assert tuple(grid[top, left]) == (255, 255, 255)
    assert tuple(grid[top, left + 1]) != (0, 0, 0)  # not drawn yet: not black, which would read as a 0


def test_the_blind_spot_is_a_hole_not_the_edge_of_the_reach():
    rank = np.arange(25).reshape(5, 5)
    field = np.zeros((5, 5))
    field[0, :] = 1  # the top row is seen entirely
    field[3, :] = 1  # the row above the target too, but not to its right
    field[3, 3:] = 0
    target = (4, 2)
    mask = blind_spot_mask(field, rank, target)
    assert mask[3, 3] and mask[3, 4]  # hidden with a seen pixel above them
    assert mask[1, 0]  # rows 1-2 are hidden between seen rows: holes too
    assert not mask[4, 0] and not mask[4, 1]  # the target's own row is never a hole
    field[4, :2] = 0
    field[0, 4] = 0
    assert not blind_spot_mask(field, rank, target)[0, 4]  # the top of a column is the edge, not a hole
    summary = summarize_field(field, rank, target)
    assert summary.before == 22 and summary.seen == 7 and summary.blind == 9
    assert summary.nearest_blind == (3, 3) and summary.nearest_blind_distance == pytest.approx(math.sqrt(2))
    assert summary.seen_after == 0


def test_numbers_name_their_units():
    assert format_nll(87.3, 784) == "87.3 nats per image (0.161 bits/dim)"
    assert "more surprising than 63%" in percentile_text(63.2, "test images of X")
    assert "every one" in percentile_text(100.0, "test images of X")
    assert rate_text(math.inf) == "as fast as the device goes" and rate_text(3.16) == "3.2 pixels/s"
