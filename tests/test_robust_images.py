"""Image files from anywhere: every size and mode converted faithfully with notes, everything else refused with
an ImageError of one line; never a traceback, a hang, a warning on the terminal, or gigabytes of memory."""

from __future__ import annotations

import io
import os
import time
import tracemalloc
import warnings

import numpy as np
import pytest
from bad_inputs.checks import assert_one_line
from bad_inputs.make import Case, encode, images
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from app.core import images as images_module
from app.core.errors import ImageError
from app.core.images import convert_image, load_image

CASES = images()
CONVERTED = [c for c in CASES if c.expect == "converted"]
REFUSED = [c for c in CASES if c.expect == "refused"]
TARGETS = [((1, 28, 28), 2), ((1, 28, 28), 256), ((3, 8, 8), 4)]
SECONDS_PER_FILE = 5.0  # the 32529x20 strip took 20 s before images were reduced before padding


def _check_converted(result, shape, k) -> None:
    assert result.values.shape == shape
    assert result.values.dtype == np.uint8
    assert int(result.values.max()) < k
    assert result.notes, "a conversion must say what it did"
    for note in result.notes:
        assert note.strip() and "\n" not in note


@pytest.mark.parametrize("case", CONVERTED, ids=lambda c: c.name)
def test_every_size_and_mode_is_converted_with_notes(case: Case, tmp_path) -> None:
    path = case.write(tmp_path)
    for shape, k in TARGETS:
        start = time.perf_counter()
        result = load_image(path, shape, k)
        assert time.perf_counter() - start < SECONDS_PER_FILE
        _check_converted(result, shape, k)
    from_bytes = load_image(case.data, (1, 28, 28), 2)
    assert np.array_equal(from_bytes.values, load_image(path, (1, 28, 28), 2).values)


@pytest.mark.parametrize("case", REFUSED, ids=lambda c: c.name)
def test_bad_files_are_refused_in_one_line(case: Case, tmp_path) -> None:
    path = case.write(tmp_path)
    for source in (path, case.data):
        start = time.perf_counter()
        with pytest.raises(ImageError) as caught:
            load_image(source, (1, 28, 28), 2)
        assert time.perf_counter() - start < SECONDS_PER_FILE
        assert_one_line(caught.value, ImageError, case.reason)


def _case(name: str) -> Case:
    return next(c for c in CASES if c.name == name)


def _binary(name: str, **kwargs) -> np.ndarray:
    return load_image(_case(name).data, (1, 28, 28), 2, **kwargs).values[0]


def test_dark_ink_on_paper_becomes_the_models_light_on_dark() -> None:
    values = _binary("grey.png")
    assert values[14, 14] == 1 and values[0, 0] == 0 and values[27, 27] == 0
    assert 0 < values.mean() < 0.3
    kept = load_image(_case("grey.png").data, (1, 28, 28), 2, invert="no").values[0]
    assert np.array_equal(kept, 1 - values)


@pytest.mark.parametrize("name", ["grey16.png", "int32.tiff", "float.tiff", "bitmap.bmp", "grey-alpha.png"])
def test_other_depths_and_formats_give_the_same_image(name: str) -> None:
    assert np.array_equal(_binary(name), _binary("grey.png"))


def test_transparent_background_is_composited_not_read_as_black() -> None:
    result = load_image(_case("rgba-ink.png").data, (1, 28, 28), 2)
    assert np.array_equal(result.values[0], _binary("grey.png"))
    assert any("transparent" in note for note in result.notes)


def test_nan_and_infinite_pixels_are_replaced_and_said() -> None:
    result = load_image(_case("float-nan.tiff").data, (1, 8, 8), 256)
    assert any("nan" in note.lower() for note in result.notes)
    assert not any("nan, nan" in note for note in result.notes)
    # The finite ramp survives: the bottom-right pixel is the brightest, the values span the range.
    assert result.values[0, -1, -1] == 255 and result.values.max() == 255 and len(np.unique(result.values)) > 30


def test_exif_orientation_is_applied() -> None:
    values = _binary("exif-rotated.jpg")
    rows, cols = np.nonzero(values)
    # The upright image holds a vertical stroke; rotated by its EXIF tag, the stroke lies horizontally.
    assert np.ptp(cols) > 2 * np.ptp(rows)
    upright = load_image(encode(Image.open(io.BytesIO(_case("exif-rotated.jpg").data))), (1, 28, 28), 2)
    rows, cols = np.nonzero(upright.values[0])
    assert np.ptp(rows) > 2 * np.ptp(cols)


def test_animation_uses_the_first_frame_and_says_so() -> None:
    result = load_image(_case("animated.gif").data, (1, 28, 28), 2)
    assert any("first of 3 frames" in note for note in result.notes)
    assert np.array_equal(result.values[0], _binary("grey.png"))


@pytest.mark.parametrize("name", ["strip-1x1000.png", "strip-1000x1.png", "large-3000x2000.png"])
def test_odd_aspect_ratios_are_padded_to_a_square(name: str) -> None:
    result = load_image(_case(name).data, (1, 28, 28), 2)
    assert any("padded" in note for note in result.notes)


def test_a_long_strip_is_reduced_before_it_is_padded() -> None:
    """Regression: a 32529x20 GIF was padded to a 32529x32529 float square (20 s, gigabytes)."""
    data = _case("strip-32529x20.gif").data
    tracemalloc.start()
    try:
        start = time.perf_counter()
        result = load_image(data, (1, 28, 28), 2)
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < SECONDS_PER_FILE
    assert peak < 200 * 2**20, f"{peak / 2**20:.0f} MB of numpy memory for a 650 kB image"
    assert any("reduced from 32529x20" in note for note in result.notes)


@pytest.mark.parametrize("mode", ["La", "RGBa", "PA", "HSV", "LAB", "YCbCr", "RGBX", "I;16B", "CMYK", "1", "F"])
def test_exotic_modes_in_memory_convert(mode: str) -> None:
    """convert_image is public (the drawing canvas and the GUI call it): no mode may crash it."""
    image = Image.new(mode, (6, 9))
    for shape, k in TARGETS:
        _check_converted(convert_image(image, shape, k), shape, k)


def test_decoder_warnings_stay_inside() -> None:
    """A corrupt TIFF makes Pillow warn; the CLI must still print one line, so the warnings are silenced."""
    full = encode(Image.fromarray(np.zeros((20, 20), dtype=np.uint8)), "TIFF")
    noisy = None
    for cut in range(len(full) - 1, 8, -1):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            try:
                Image.open(io.BytesIO(full[:cut])).load()
            except Exception:  # noqa: BLE001 - only looking for a file that warns
                pass
        if seen:
            noisy = full[:cut]
            break
    assert noisy is not None, "no truncation of the TIFF made Pillow warn"
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        try:
            load_image(noisy, (1, 28, 28), 2)
        except ImageError:
            pass
    assert not seen, [str(w.message) for w in seen]


def test_eps_never_reaches_ghostscript(monkeypatch) -> None:
    import subprocess

    def refuse(*args, **kwargs):
        raise AssertionError(f"a subprocess was started: {args}")

    for name in ("Popen", "run", "call", "check_call", "check_output"):
        monkeypatch.setattr(subprocess, name, refuse)
    monkeypatch.setattr("shutil.which", lambda name, *a, **k: f"/usr/bin/{name}")  # as if Ghostscript were there
    with pytest.raises(ImageError) as caught:
        load_image(_case("drawing.eps").data, (1, 28, 28), 2)
    assert_one_line(caught.value, ImageError, "ghostscript")


def test_paths_that_are_not_image_files(tmp_path) -> None:
    for source, reason in ((tmp_path, "folder"), (tmp_path / "missing.png", "no file")):
        with pytest.raises(ImageError) as caught:
            load_image(source, (1, 28, 28), 2)
        assert_one_line(caught.value, ImageError, reason)


def test_a_file_too_large_is_refused_unread(tmp_path, monkeypatch) -> None:
    huge = tmp_path / "huge.png"
    with open(huge, "wb") as handle:
        handle.truncate(images_module.MAX_FILE_BYTES + 1)  # sparse: no disk used

    def must_not_read(*args, **kwargs):
        raise AssertionError("the file was read")

    monkeypatch.setattr(type(huge), "read_bytes", must_not_read)
    with pytest.raises(ImageError) as caught:
        load_image(huge, (1, 28, 28), 2)
    assert_one_line(caught.value, ImageError, "refused")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file(tmp_path) -> None:
    path = _case("grey.png").write(tmp_path)
    path.chmod(0)
    with pytest.raises(ImageError) as caught:
        load_image(path, (1, 28, 28), 2)
    assert_one_line(caught.value, ImageError, "permission")


# properties ------------------------------------------------------------------------------------------------------

MODES = ["1", "L", "P", "RGB", "RGBA", "LA", "I;16", "I", "F", "CMYK"]
FORMATS = {"1": ["PNG", "BMP", "TIFF"], "L": ["PNG", "JPEG", "WEBP", "GIF"], "P": ["PNG", "GIF", "BMP"],
           "RGB": ["PNG", "JPEG", "WEBP", "TIFF", "PPM"], "RGBA": ["PNG", "WEBP", "TIFF"], "LA": ["PNG", "TIFF"],
           "I;16": ["PNG", "TIFF"], "I": ["TIFF"], "F": ["TIFF"], "CMYK": ["JPEG", "TIFF"]}
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def encoded_images(draw) -> bytes:
    mode = draw(st.sampled_from(MODES))
    width = draw(st.integers(1, 64))
    height = draw(st.integers(1, 64))
    seed = draw(st.integers(0, 2**16))
    array = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    image = Image.fromarray(array)
    image = image.convert("L").convert("I;16") if mode == "I;16" else image.convert(mode)
    return encode(image, draw(st.sampled_from(FORMATS[mode])))


def _only_success_or_image_error(data: bytes, shape=(1, 28, 28), k: int = 2) -> None:
    start = time.perf_counter()
    try:
        result = load_image(data, shape, k)
    except ImageError as error:
        assert_one_line(error, ImageError)
    else:
        _check_converted(result, shape, k)
    assert time.perf_counter() - start < SECONDS_PER_FILE


@SETTINGS
@given(data=encoded_images(), target=st.sampled_from(TARGETS))
def test_property_any_size_mode_and_format_converts(data: bytes, target) -> None:
    shape, k = target
    _check_converted(load_image(data, shape, k), shape, k)


@SETTINGS
@given(data=encoded_images(), cut=st.floats(0, 1), flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=6))
def test_property_truncated_or_bit_flipped_images(data: bytes, cut: float, flips) -> None:
    damaged = bytearray(data[: max(1, int(len(data) * cut))] if cut < 0.95 else data)
    for where, value in flips:
        damaged[min(len(damaged) - 1, int(where * len(damaged)))] = value
    _only_success_or_image_error(bytes(damaged))


@SETTINGS
@given(data=st.binary(max_size=2048))
def test_property_random_bytes(data: bytes) -> None:
    _only_success_or_image_error(data)
