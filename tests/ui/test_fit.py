"""Every view fits a 1280x720 laptop at 100% and a 1920x1080 projector at 200% without the window growing or
the view scrolling; beyond that a view scrolls instead of pushing the window off the screen; what is sized in
pixels grows with the scale; F11 leaves only the view on a full screen."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from event_loop import pump  # noqa: E402
from PySide6.QtWidgets import QLabel, QPushButton, QWidget  # noqa: E402

from app.ui.qt_flow_layout import QtFlowLayout  # noqa: E402

SCREENS = [((1280, 720), 1.0), ((1366, 768), 1.0), ((1920, 1080), 2.0)]


def _show_each_view(window, size):
    window.resize(*size)
    for name in window.views:
        window.show_view(name)
        pump(20)
        yield name, window.tabs.page(window.tabs.currentIndex())


@pytest.mark.parametrize(("size", "scale"), SCREENS, ids=["1280x720@100%", "1366x768@100%", "1920x1080@200%"])
def test_every_view_fits_without_growing_the_window_or_scrolling(make_window, tiny_checkpoints, size, scale):
    window = make_window("tiny-gated", scale=scale)
    for name, page in _show_each_view(window, size):
        assert (window.width(), window.height()) == size, f"the {name} view made the window grow"
        need, room = page.view.minimumSizeHint(), page.viewport().size()
        assert not page.needs_scrolling(), f"the {name} view needs {need.toTuple()}, has {room.toTuple()}"


def test_at_250_percent_a_view_scrolls_rather_than_widen_the_window(make_window, tiny_checkpoints):
    window = make_window("tiny-gated", scale=2.5)
    for name, _ in _show_each_view(window, (1920, 1080)):
        assert (window.width(), window.height()) == (1920, 1080), f"the {name} view made the window grow"


def test_the_tabs_speak_in_views(make_window, tiny_checkpoints):
    window = make_window("tiny-gated")
    view = window.show_view("score")
    assert window.tabs.currentWidget() is view
    assert window.tabs.tabText(window.tabs.indexOf(view)) == "Score"
    window.tabs.setCurrentWidget(window.views["inspect"])
    assert window.tabs.currentWidget() is window.views["inspect"]


def test_pictures_and_their_lines_grow_with_the_scale(make_window, tiny_checkpoints):
    window = make_window("tiny-gated", scale=1.0)
    grid = window.views["sample"].grid
    small = grid.minimumSize().width()
    grid.set_markers("probe", [(1, 1)], "#ffffff", width=2.0)
    window.context.set_scale(2.0)
    pump(10)
    assert grid.minimumSize().width() == 2 * small  # the application font reached it: no call from the view
    assert grid._markers["probe"].opts["pen"].widthF() == pytest.approx(4.0)
    chart = window.views["score"].results.pixel_plot
    assert chart.minimumHeight() >= 2 * 140


def test_the_digit_grid_on_a_projector_at_200_percent_is_larger_than_on_a_laptop(make_window, tiny_checkpoints):
    """The grid must not shrink to make room for the larger text: on a 1920x1080 projector at 200% it is at
    least as large as on a 1280x720 laptop at 100%."""
    sizes = []
    for size, scale in (((1280, 720), 1.0), ((1920, 1080), 2.0)):
        window = make_window("tiny-gated", scale=scale)
        window.resize(*size)
        grid = window.show_view("sample").grid
        pump(30)
        sizes.append(min(grid.width(), grid.height()))
        window.close()
    assert sizes[1] >= sizes[0], sizes


def test_the_model_description_gives_way_on_a_short_window(make_window, tiny_checkpoints):
    window = make_window("tiny-gated", scale=2.0)
    window.resize(1920, 1080)  # 540 lines at 100%
    pump(10)
    card = window.card
    assert not card.description.isVisible() and card.description.text() in card.title.toolTip()
    window.context.set_scale(1.0)
    pump(10)
    assert card.description.isVisible()
    describe = next(a for a in window.findChildren(type(window.presentation_action))
                    if a.text() == "Show the model description")
    describe.setChecked(False)
    window.context.load("tiny-pixelcnn")  # a new model keeps the user's choice
    assert not card.description.isVisible()


def test_presentation_mode_leaves_only_the_view_and_comes_back(make_window, tiny_checkpoints):
    window = make_window("tiny-gated")
    view = window.show_view("sample")
    assert window.presentation_action.shortcut().toString() == "F11"
    chrome = [window.menuBar(), window.toolbar, window.card, window.tabs.tabBar(), window.statusBar()]
    assert all(widget.isVisible() for widget in chrome)
    window.presentation_action.trigger()
    pump(20)
    assert window.isFullScreen() and window.presentation.active
    assert not any(widget.isVisible() for widget in chrome) and not window.notice_dock.isVisible()
    assert view.isVisible()
    assert window.presentation_action in window.actions()  # F11 still works with the menu bar hidden
    window.presentation_action.trigger()
    pump(20)
    assert not window.isFullScreen() and all(widget.isVisible() for widget in chrome)


def test_a_flow_layout_wraps_its_widgets_onto_more_rows(qtbot):
    holder = QWidget()
    qtbot.addWidget(holder)
    layout = QtFlowLayout(holder)
    buttons = [QPushButton(f"button {i}") for i in range(8)]
    for button in buttons:
        layout.addWidget(button)
    layout.addWidget(QLabel("a label"))
    widest = max(b.sizeHint().width() for b in buttons)
    assert layout.minimumSize().width() <= widest + 1  # never wider than its widest widget
    one_row = layout.heightForWidth(layout.sizeHint().width())
    assert layout.heightForWidth(widest + 10) > 3 * one_row  # narrow: one widget a row
    holder.resize(widest + 10, layout.heightForWidth(widest + 10))
    layout.setGeometry(holder.rect())
    tops = {b.geometry().top() for b in buttons}
    assert len(tops) == len(buttons)


@pytest.mark.parametrize("scale", [1.75, 2.0, 2.5])
def test_the_score_views_chart_is_not_crushed_and_no_text_prints_over_it(make_window, tiny_checkpoints, wait_for,
                                                                        scale):
    """At 175% and above the conditional's chart was squeezed to a sliver and the labels above it overlapped it."""
    window = make_window("tiny-pixelcnn", scale=scale)
    window.resize(1920, 1080)
    view = window.show_view("score")
    view.canvas.stroke([(8, 8), (9, 9), (10, 10)], finished=True)
    wait_for(lambda: view.result is not None and view.results.pixel_text.text() != "")
    pump(50)
    results, chart = view.results, view.results.pixel_plot
    assert chart.height() >= chart.minimumHeight() >= 140 * scale
    chart_box = chart.geometry()
    for label in (results.nll, results.bpd, results.data, results.rank, results.pixel_text, results.notes):
        if not label.isVisible() or not label.text():
            continue
        assert label.height() >= label.heightForWidth(label.width()), f"{label.text()[:30]!r} is cut"
        assert not label.geometry().intersects(chart_box), f"{label.text()[:30]!r} overlaps the chart"


def test_a_chart_too_short_for_its_axis_label_hides_the_label(make_window, tiny_checkpoints, wait_for):
    """A label longer than its axis would run past it and over the tick labels."""
    window = make_window("tiny-pixelcnn", scale=2.0)
    window.resize(1920, 1080)
    view = window.show_view("score")
    view.canvas.stroke([(8, 8), (9, 9)], finished=True)
    wait_for(lambda: view.results.pixel_text.text() != "")
    pump(50)
    chart = view.results.pixel_plot
    axis = chart.plot_item.getAxis("left")
    assert axis.label.isVisible() == chart.left_label_fits()
    chart.setFixedHeight(200)  # shorter than the label at 200%
    pump(50)
    assert not chart.left_label_fits() and not axis.label.isVisible()
    chart.setFixedHeight(900)
    pump(50)
    assert chart.left_label_fits() and axis.label.isVisible()


@pytest.mark.parametrize(("size", "scale"), [((1280, 720), 1.0), ((1920, 1080), 2.0)], ids=["1280x720", "200%"])
def test_the_sample_views_chart_is_not_crushed_beside_the_grid(make_window, tiny_checkpoints, size, scale, qtbot):
    """The grid is square: the first split gives it its height and the chart the rest of the width (left to
    size hints, the chart had a fifth of the width at 200%, its title and axis cut off)."""
    window = make_window("tiny-gated", scale=scale)
    window.resize(*size)
    view = window.show_view("sample")
    # The model card gives way to a short window a few events later; the split follows the room it leaves.
    qtbot.waitUntil(lambda: view.splitter.sizes()[0] <= view.splitter.height() + 2, timeout=3000)
    grid_width, chart_width = view.splitter.sizes()
    assert chart_width >= 0.35 * view.splitter.width(), (grid_width, chart_width)
    # A divider the user drags stays where it was put.
    view.splitter.moveSplitter(0, 1)  # as far left as the grid allows
    pump(5)
    dragged = view.splitter.sizes()[0]
    assert dragged < grid_width
    window.resize(size[0] - 40, size[1] - 40)
    pump(40)
    assert view.splitter.sizes()[0] <= dragged + 5  # Qt scales it with the window; no square split comes back


def test_plot_legends_grow_with_the_scale(qapp):
    """Legends kept the size they were made with: on a projector at 200% they were half the size of the axes."""
    from app.ui.views.qt_toy_plots import QtNllCurves

    curves = QtNllCurves()
    sizes = []
    for scale in (1.0, 2.0):
        curves.set_scale(scale)
        label = curves.legend.items[0][1]
        sizes.append(float(label.opts["size"].rstrip("pt")))
        assert f"font-size:{label.opts['size']}" in label.item.toHtml().replace(" ", "")  # drawn at that size
    assert sizes[1] >= 1.8 * sizes[0], sizes


def test_text_drawn_on_plots_grows_with_the_scale(qapp):
    """Text placed on a chart ("test images: 81.5", the toy's "never in the training data") kept Qt's default
    size while the axes beside it doubled on a projector."""
    from app.ui.qt_distribution_plot import QtDistributionPlot
    from app.ui.views.qt_toy_plots import QtDensityPlot1D

    plot, density = QtDistributionPlot(), QtDensityPlot1D()
    sizes = []
    for scale in (1.0, 2.0):
        plot.set_scale(scale)
        density.set_scale(scale)
        sizes.append((plot._reference.label.textItem.font().pointSizeF(), density.band_label.textItem.font().pointSizeF()))
    assert sizes[1][0] >= 1.8 * sizes[0][0] and sizes[1][1] >= 1.8 * sizes[0][1], sizes
