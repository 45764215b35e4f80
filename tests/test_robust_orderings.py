"""Ordering files from anywhere: a permutation of the model's positions is taken, anything else is refused with
an OrderingError that says what is wrong, in the core and through ``ar-explorer sample --ordering FILE``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from bad_inputs.checks import assert_cli_refused, assert_one_line, run_cli
from bad_inputs.make import Case, orderings, raster_pairs, tiny_checkpoint, write_huge_file
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.errors import OrderingError
from app.core.orderings import MAX_FILE_BYTES, Ordering, validate_order

CASES = orderings(4, 4)
ACCEPTED = [c for c in CASES if c.expect == "converted"]
REFUSED = [c for c in CASES if c.expect == "refused"]


@pytest.mark.parametrize("case", REFUSED, ids=lambda c: c.name)
def test_bad_ordering_files_are_refused_with_the_reason(case: Case, tmp_path, registry) -> None:
    path = case.write(tmp_path)
    with pytest.raises(OrderingError) as caught:
        registry.ordering(str(path), 4, 4)
    assert_one_line(caught.value, OrderingError, case.reason)


@pytest.mark.parametrize("case", ACCEPTED, ids=lambda c: c.name)
def test_good_ordering_files_are_taken(case: Case, tmp_path, registry) -> None:
    path = case.write(tmp_path)
    ordering = registry.ordering(str(path), 4, 4)
    assert (ordering.height, ordering.width) == (4, 4)
    assert sorted(map(tuple, ordering.order.tolist())) == [tuple(p) for p in raster_pairs(4, 4)]


def test_a_huge_file_is_refused_unread(tmp_path) -> None:
    path = write_huge_file(tmp_path / "huge.json", MAX_FILE_BYTES + 1)
    with pytest.raises(OrderingError) as caught:
        Ordering.load(path)
    assert_one_line(caught.value, OrderingError, "refused")


def test_a_folder_or_a_missing_file(tmp_path) -> None:
    for path, reason in ((tmp_path, "folder"), (tmp_path / "nowhere.json", "no ordering file")):
        with pytest.raises(OrderingError) as caught:
            Ordering.load(path)
        assert_one_line(caught.value, OrderingError, reason)


def test_messages_name_the_problem_precisely() -> None:
    pairs = raster_pairs(3, 3)
    pairs[4] = [0, 0]
    with pytest.raises(OrderingError, match=r"1 position\(s\) appear more than once \(\[0, 0\]\).*1 position\(s\) are missing \(\[1, 1\]\)"):
        validate_order(3, 3, pairs)
    with pytest.raises(OrderingError, match=r"position \[3, 0\] \(entry 8\) is outside the 3x3 grid"):
        validate_order(3, 3, raster_pairs(3, 3)[:8] + [[3, 0]])


def test_save_and_load_round_trip(tmp_path) -> None:
    from app.core.orderings import spiral

    original = spiral(5, 7)
    original.save(tmp_path / "spiral.json")
    assert Ordering.load(tmp_path / "spiral.json") == original


# through the CLI -------------------------------------------------------------------------------------------------


@pytest.fixture
def reversed_made(tmp_path):
    """A tiny MADE built with the reversed raster ordering (so that file is the one ordering it takes)."""
    import torch

    from app.core.checkpoints import save_checkpoint
    from app.core.orderings import raster
    from plugins.made import SPEC

    torch.manual_seed(0)
    ordering = raster(4, 4).reversed()
    model = SPEC.create(SPEC.make_config((1, 4, 4), 2, {"hidden": [8]}, ordering))
    return save_checkpoint(model, tmp_path / "made-reversed", {"dataset": "synthetic-digits"}).weights


@pytest.mark.parametrize("case", REFUSED, ids=lambda c: c.name)
def test_cli_sample_refuses_bad_ordering_files(case: Case, tmp_path, capsys, reversed_made) -> None:
    path = case.write(tmp_path)
    out = tmp_path / "samples.png"
    result = run_cli(capsys, ["sample", "--checkpoint", reversed_made, "--ordering", path, "--out", out, "--n", 2])
    assert_cli_refused(result, case.reason)
    assert not out.exists()


def test_cli_sample_takes_a_good_ordering_file(tmp_path, capsys, reversed_made) -> None:
    path = _good_case("reversed.json").write(tmp_path)
    out = tmp_path / "samples.png"
    result = run_cli(capsys, ["sample", "--checkpoint", reversed_made, "--ordering", path, "--out", out, "--n", 2])
    assert result.code == 0, result.err
    assert out.stat().st_size > 0


def test_cli_ordering_the_model_cannot_take(tmp_path, capsys) -> None:
    """A valid ordering that the model was not built with: refused with the reason, not ignored."""
    checkpoint = tiny_checkpoint(tmp_path)
    path = _good_case("reversed.json").write(tmp_path)
    for command in (["sample", "--out", tmp_path / "s.png"], ["score", _image(tmp_path)]):
        result = run_cli(capsys, [*command, "--checkpoint", checkpoint, "--ordering", path])
        assert_cli_refused(result, "raster")


def _good_case(name: str) -> Case:
    return next(c for c in ACCEPTED if c.name == name)


def _image(tmp_path):
    from bad_inputs.make import images

    return next(c for c in images() if c.name == "grey.png").write(tmp_path)


# properties ------------------------------------------------------------------------------------------------------

SETTINGS = settings(max_examples=60, deadline=None)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=30,
)


@st.composite
def near_orderings(draw) -> dict:
    """Mostly-valid orderings with a few things changed: they reach every check of the validation."""
    height, width = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    pairs = raster_pairs(height, width)
    order = [pairs[i] for i in draw(st.permutations(range(len(pairs))))]
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(order) - 1))
        order[i] = draw(st.one_of(st.lists(st.integers(-2, 6), min_size=0, max_size=3), json_values))
    if draw(st.booleans()):
        order = order[: draw(st.integers(0, len(order)))]
    data = {"height": draw(st.one_of(st.just(height), json_values)), "width": width, "order": order}
    return data


def _accepted_or_refused(data: object) -> None:
    try:
        ordering = Ordering.from_dict(data)
    except OrderingError as error:
        assert_one_line(error, OrderingError)
        return
    flat = ordering.order[:, 0] * ordering.width + ordering.order[:, 1]
    assert np.array_equal(np.sort(flat), np.arange(ordering.height * ordering.width))


@SETTINGS
@given(data=st.one_of(json_values, near_orderings()))
def test_property_json_like_data(data) -> None:
    _accepted_or_refused(data)


@SETTINGS
@given(data=near_orderings())
def test_property_files(data, tmp_path_factory) -> None:
    path = tmp_path_factory.mktemp("orderings") / "o.json"
    path.write_text(json.dumps(data))
    try:
        Ordering.load(path)
    except OrderingError as error:
        assert_one_line(error, OrderingError)


@SETTINGS
@given(text=st.text(max_size=200))
def test_property_text_files(text, tmp_path_factory) -> None:
    path = tmp_path_factory.mktemp("orderings") / "o.json"
    path.write_text(text, encoding="utf-8")
    try:
        Ordering.load(path)
    except OrderingError as error:
        assert_one_line(error, OrderingError)


@SETTINGS
@given(height=st.one_of(st.integers(-2, 5), json_values), width=st.integers(1, 5), order=json_values)
def test_property_validate_order(height, width, order) -> None:
    try:
        validate_order(height, width, order)
    except OrderingError as error:
        assert_one_line(error, OrderingError)
