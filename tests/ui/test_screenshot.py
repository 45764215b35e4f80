"""``ar-explorer --screenshot PATH --view V``: opens the window, runs the view's default action, writes a PNG
of the window and returns 0, leaving no thread behind."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PIL import Image  # noqa: E402

from app.ui.workers import running_workers  # noqa: E402


@pytest.mark.parametrize("view", ["sample", "inspect"])
def test_the_screenshot_option_writes_a_png_of_the_window(qapp, tiny_checkpoints, tmp_path, view):
    from app.main import main

    target = tmp_path / "shots" / f"{view}.png"
    code = main(["--screenshot", str(target), "--view", view, "--after", "0.8", "--checkpoint", "tiny-pixelcnn",
                 "--device", "cpu"])
    assert code == 0
    image = Image.open(target)
    assert image.size == (1440, 900)
    colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50, "the window was drawn, not blank"
    assert running_workers() == []


def test_an_unknown_view_is_a_clear_error(qapp, tiny_checkpoints, tmp_path, capsys):
    from app.main import main

    code = main(["--screenshot", str(tmp_path / "x.png"), "--view", "nope", "--after", "0"])
    assert code == 2 and "no view named 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_the_size_option_gives_a_png_of_exactly_that_size(qapp, tiny_checkpoints, tmp_path, capsys):
    """A PNG of exactly the size asked for shows that the view fits: the window did not need to grow."""
    from app.main import main

    target = tmp_path / "score.png"
    code = main(["--screenshot", str(target), "--view", "score", "--after", "0.3", "--checkpoint", "tiny-gated",
                 "--device", "cpu", "--size", "1280x720"])
    assert code == 0 and Image.open(target).size == (1280, 720)
    assert "needed a" not in capsys.readouterr().err


@pytest.mark.parametrize("text", ["1280", "1280x", "axb", "10x10", "1280*720"])
def test_a_bad_size_is_one_line_and_opens_no_window(qapp, tiny_checkpoints, tmp_path, capsys, text):
    from app.main import main

    code = main(["--screenshot", str(tmp_path / "x.png"), "--view", "sample", "--after", "0", "--size", text])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: --size") and "\n" not in err
    assert not (tmp_path / "x.png").exists()
