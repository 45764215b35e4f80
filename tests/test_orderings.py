import json

import numpy as np
import pytest

from app.core import orderings as o
from app.core.errors import OrderingError


@pytest.mark.parametrize("name", sorted(o.PRESETS))
@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (5, 5), (28, 28), (7, 12)])
def test_every_preset_is_a_permutation(name, shape):
    ordering = o.PRESETS[name](*shape, 3)
    flat = ordering.flat
    assert sorted(flat.tolist()) == list(range(shape[0] * shape[1]))
    assert ordering.rank[tuple(ordering.order[5 % len(flat)])] == 5 % len(flat)


def test_raster_and_columns():
    assert o.raster(2, 3).flat.tolist() == [0, 1, 2, 3, 4, 5]
    assert o.columns(2, 3).order.tolist() == [[0, 0], [1, 0], [0, 1], [1, 1], [0, 2], [1, 2]]


def test_zigzag_snakes():
    assert o.zigzag(2, 3).order.tolist() == [[0, 0], [0, 1], [0, 2], [1, 2], [1, 1], [1, 0]]


def test_even_then_odd_puts_even_raster_indices_first():
    flat = o.even_then_odd(4, 4).flat
    assert all(p % 2 == 0 for p in flat[:8]) and all(p % 2 == 1 for p in flat[8:])


def test_top_bottom_to_middle_alternates_rows():
    rows = o.top_bottom_to_middle(4, 2).order[:, 0].tolist()
    assert rows == [0, 0, 3, 3, 1, 1, 2, 2]


def test_hilbert_visits_neighbours():
    order = o.hilbert(8, 8).order
    steps = np.abs(np.diff(order, axis=0)).sum(1)
    assert np.all(steps == 1)


def test_spiral_starts_in_the_centre_and_centre_last_ends_there():
    s = o.spiral(5, 5)
    assert s.order[0].tolist() == [2, 2]
    assert o.centre_last(5, 5).order[-1].tolist() == [2, 2]


def test_random_is_reproducible_and_seeded():
    assert o.random(6, 6, 1) == o.random(6, 6, 1)
    assert o.random(6, 6, 1) != o.random(6, 6, 2)


def test_json_round_trip(tmp_path):
    ordering = o.spiral(6, 4)
    path = tmp_path / "spiral.json"
    ordering.save(path)
    data = json.loads(path.read_text())
    assert set(data) >= {"height", "width", "order"}
    loaded = o.Ordering.load(path)
    assert loaded == ordering and loaded.name == "spiral"


@pytest.mark.parametrize(
    "order, message",
    [
        ([[0, 0], [0, 1], [1, 0], [1, 0]], "more than once"),
        ([[0, 0], [0, 1], [1, 0]], "missing"),
        ([[0, 0], [0, 1], [1, 0], [2, 0]], "outside"),
        ([[0, 0, 0]], "pairs"),
        ([], "empty"),
    ],
)
def test_invalid_orders_say_what_is_wrong(order, message):
    with pytest.raises(OrderingError, match=message):
        o.Ordering(2, 2, np.array(order))


@pytest.mark.parametrize(
    "data",
    [
        [1, 2],
        {"height": 2, "width": 2},
        {"height": 0, "width": 2, "order": []},
        {"height": 2, "width": 2, "order": "raster"},
        {"height": 2, "width": 2, "order": [[0, 0], [0, "1"], [1, 0], [1, 1]]},
        {"height": True, "width": 2, "order": []},
    ],
)
def test_malformed_json_is_refused(data):
    with pytest.raises(OrderingError):
        o.Ordering.from_dict(data)


def test_bad_file_is_refused(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    with pytest.raises(OrderingError, match="not valid JSON"):
        o.Ordering.load(path)
    with pytest.raises(OrderingError, match="no ordering file"):
        o.Ordering.load(tmp_path / "missing.json")


def test_transforms():
    r = o.raster(2, 3)
    assert r.reversed().flat.tolist() == [5, 4, 3, 2, 1, 0]
    assert r.transposed().height == 3 and r.transposed().order[1].tolist() == [1, 0]
    assert r.flipped("horizontal").order[0].tolist() == [0, 2]
    assert r.flipped("vertical").order[0].tolist() == [1, 0]


def test_painted_then_fill():
    p = o.painted(3, 3, [(1, 1), (0, 0), (1, 1), (9, 9)])
    assert p.order[:2].tolist() == [[1, 1], [0, 0]]
    assert len(p.flat) == 9


def test_known_first_moves_known_positions_to_the_front():
    known = np.zeros((3, 3), bool)
    known[2] = True
    k = o.known_first(o.raster(3, 3), known)
    assert {tuple(p) for p in k.order[:3].tolist()} == {(2, 0), (2, 1), (2, 2)}
    assert k.order[3:].tolist() == o.raster(3, 3).order[:6].tolist()
    with pytest.raises(OrderingError):
        o.known_first(o.raster(3, 3), np.zeros((2, 2), bool))
