"""Export for slides: a grid as a pixel-exact PNG as large as it is on screen, a plot as PNG and as SVG, the
clipboard, and File > Export figure listing the figures of the view on screen."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PIL import Image  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QGuiApplication, QImage, QPainter  # noqa: E402
from PySide6.QtSvg import QSvgRenderer  # noqa: E402
from PySide6.QtWidgets import QMenu  # noqa: E402

from app.ui.export import as_figure, figures_in, pixel_factor, save_png, save_svg  # noqa: E402
from app.ui.views.qt_sample_controls import SPEED_STEPS  # noqa: E402


def finished_run(window, wait_for):
    view = window.show_view("sample")
    view.controls.count.setValue(4)
    view.controls.speed.setValue(SPEED_STEPS + 1)
    view.run_to_end()
    wait_for(lambda: view.frame is not None and view.frame.step.done and not view.worker.isRunning())
    return view


def test_a_grid_saves_pixel_exact_at_its_size_on_screen(make_window, tiny_checkpoints, wait_for, tmp_path):
    window = make_window("small-pixelcnn")
    view = finished_run(window, wait_for)
    figure = as_figure(view.grid)
    assert (figure.name, figure.kind, figure.formats) == ("sample grid", "image", ("png",))
    factor = pixel_factor(view.grid)
    shown = view.grid.item.sceneBoundingRect()
    assert factor > 1 and abs(factor * view.grid.image.shape[1] - shown.width()) <= factor
    saved = np.asarray(Image.open(save_png(figure, tmp_path / "grid.png")).convert("RGB"))
    h, w = view.grid.image.shape[:2]
    assert saved.shape == (h * factor, w * factor, 3)
    np.testing.assert_array_equal(saved[::factor, ::factor], view.grid.image)  # every block one model pixel
    np.testing.assert_array_equal(saved[factor - 1::factor, factor - 1::factor], view.grid.image)


def test_the_export_grows_with_the_grid_on_screen(make_window, tiny_checkpoints, wait_for):
    window = make_window("small-pixelcnn")
    view = finished_run(window, wait_for)
    window.resize(900, 650)
    wait_for(lambda: True, 100)
    small = pixel_factor(view.grid)
    window.resize(1800, 1300)
    wait_for(lambda: pixel_factor(view.grid) > small, 3000)


def test_a_plot_saves_as_png_and_as_svg_with_its_text_as_text(make_window, tiny_checkpoints, wait_for, tmp_path):
    window = make_window("small-pixelcnn")
    view = finished_run(window, wait_for)
    figure = as_figure(view.plot)
    assert figure.kind == "plot" and figure.formats == ("png", "svg")
    assert figure.name == "NLL of each sample under the model, nats per image"
    png = Image.open(save_png(figure, tmp_path / "plot.png"))
    assert png.size == (view.plot.width(), view.plot.height())
    path = save_svg(figure, tmp_path / "plot.svg")
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg") and root.get("viewBox") == f"0 0 {view.plot.width()} {view.plot.height()}"
    texts = "".join(t.text or "" for t in root.iter() if t.tag.endswith("text"))
    assert "nats" in texts, "axis labels are vector text, not a picture"
    renderer = QSvgRenderer(str(path))
    assert renderer.isValid()
    image = QImage(png.size[0], png.size[1], QImage.Format.Format_RGB32)
    image.fill(Qt.GlobalColor.white)
    painter = QPainter(image)
    renderer.render(painter)
    painter.end()
    drawn = np.asarray(Image.fromqimage(image).convert("L"), dtype=float)
    shown = np.asarray(png.convert("L"), dtype=float)
    # the SVG draws what the screen shows: bars, lines and text at the same places and sizes (at 72 dpi instead
    # of the screen's, the bars came out at three quarters of their height)
    assert np.abs(drawn - shown).mean() < 4.0


def test_a_picture_is_not_saved_as_svg(make_window, tiny_checkpoints, tmp_path):
    window = make_window("small-pixelcnn")
    with pytest.raises(ValueError, match="sample grid is a picture: save it as PNG"):
        save_svg(as_figure(window.views["sample"].grid), tmp_path / "x.svg")
    assert not (tmp_path / "x.svg").exists()


def test_copy_puts_the_figure_on_the_clipboard(make_window, tiny_checkpoints, wait_for):
    window = make_window("small-pixelcnn")
    view = finished_run(window, wait_for)
    assert window.exporter.copy(as_figure(view.grid))
    copied = QGuiApplication.clipboard().image()
    factor = pixel_factor(view.grid)
    assert (copied.width(), copied.height()) == (view.grid.image.shape[1] * factor, view.grid.image.shape[0] * factor)
    assert any("copied sample grid to the clipboard" in n.message for n in window.context.notices)


def test_the_export_menu_lists_the_figures_of_the_view_on_screen(make_window, tiny_checkpoints, wait_for, tmp_path):
    window = make_window("small-pixelcnn")
    assert [f.name for f in figures_in(window.views["sample"])] == ["sample grid", "distribution plot"]
    finished_run(window, wait_for)
    names = [f.name for f in figures_in(window.views["sample"])]
    assert names[0] == "sample grid" and "NLL of each sample under the model, nats per image" in names
    menu = QMenu()
    window.exporter.fill_menu(menu)
    entries = {a.text(): [b.text() for b in a.menu().actions()] for a in menu.actions()}
    assert entries["sample grid"] == ["Save as PNG…", "Copy to clipboard"]
    assert entries["NLL of each sample under the model, nats per image"] == ["Save as PNG…", "Save as SVG…",
                                                                            "Copy to clipboard"]
    window.show_view("score")
    window.exporter.fill_menu(menu)
    assert {"your image", "per-pixel NLL map"} <= {a.text() for a in menu.actions()}


def test_saving_goes_by_the_suffix_and_a_bad_path_is_one_notice(make_window, tiny_checkpoints, wait_for, tmp_path):
    window = make_window("small-pixelcnn")
    view = finished_run(window, wait_for)
    assert window.exporter.save(as_figure(view.plot), tmp_path / "curve.svg")
    assert (tmp_path / "curve.svg").read_text().lstrip().startswith("<?xml")
    assert window.exporter.save(as_figure(view.grid), tmp_path / "grid")  # no suffix: PNG
    assert (tmp_path / "grid.png").read_bytes()[:4] == b"\x89PNG"
    assert not window.exporter.save(as_figure(view.grid), tmp_path / "missing-folder" / "g.png")
    assert window.context.notices[-1].level == "error" and "was not saved" in window.context.notices[-1].message


def test_plots_have_an_export_menu_on_right_click(make_window, tiny_checkpoints):
    window = make_window("small-pixelcnn")
    plot = window.views["sample"].plot
    assert plot.contextMenuPolicy() == Qt.ContextMenuPolicy.CustomContextMenu
