"""Every command the app shows runs as shown: each parses with the CLI's own parser, those that need no
download or long training run, and no view writes a command line of its own outside ``app.ui.hints``."""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from checkpoint_factory import save_tiny  # noqa: E402

from app.cli.main import build_parser, main  # noqa: E402
from app.core.orderings import spiral  # noqa: E402
from app.ui import hints  # noqa: E402

UI = Path(hints.__file__).resolve().parent


def _arguments(command: str) -> list[str]:
    words = shlex.split(command)
    assert words[0] == "ar-explorer", command
    return words[1:]


def _parses(command: str) -> None:
    try:
        build_parser().parse_args(_arguments(command))
    except SystemExit as exc:  # argparse's way of refusing a command line
        raise AssertionError(f"the app shows a command the CLI refuses: {command}") from exc


def _hint_in(text: str) -> str:
    """The command in a line of text: from ``ar-explorer`` to the end, a closing parenthesis, a semicolon or
    the end of a ``<code>`` element (none of which the commands here contain)."""
    return re.search(r"ar-explorer [^;<)]*", text).group(0).rstrip(". ")


@pytest.mark.parametrize("command", [
    hints.download_command("binarized-mnist"),
    hints.eval_command("made-binarized-mnist"),
    hints.train_command("gated-pixelcnn", "binarized-mnist"),
    hints.train_command("made", "binarized-mnist", "/tmp/my spiral.json"),
    hints.sample_with_ordering_command("order-agnostic-nade-binarized-mnist", "/tmp/my spiral.json"),
    hints.open_session_command("/tmp/my lecture.arsession"),
])
def test_every_hint_parses_as_a_command_line(command):
    _parses(command)


def test_the_saved_ordering_hint_runs_as_shown(make_window, checkpoint_dir, tmp_path, monkeypatch, capsys):
    """It said ``ar-explorer sample --ordering FILE``, which the CLI refuses: --checkpoint is required."""
    save_tiny(checkpoint_dir, "tiny-any", "any-order-attention", shape=(1, 8, 8))
    save_tiny(checkpoint_dir, "small-pixelcnn", "pixelcnn", shape=(1, 8, 8))
    window = make_window("tiny-any")
    view = window.show_view("orderings")
    view.set_ordering(spiral(8, 8))
    path = tmp_path / "my spiral.json"
    assert view.save_to(path)
    command = _hint_in(view.validation.text())
    assert "--checkpoint tiny-any" in command
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(_arguments(command)) == 0, capsys.readouterr().err
    assert (tmp_path / "samples.png").is_file()

    (tmp_path / "samples.png").unlink()  # the CLI never replaces a file without --force
    window.context.load("small-pixelcnn")  # its ordering is fixed: the hint names a model that takes any
    assert view.save_to(path)
    command = _hint_in(view.validation.text())
    assert "--checkpoint tiny-any" in command
    assert main(_arguments(command)) == 0


def test_a_build_time_model_is_told_how_to_train_with_the_ordering(make_window, checkpoint_dir, tmp_path):
    save_tiny(checkpoint_dir, "tiny-made", "made")
    window = make_window("tiny-made")
    view = window.show_view("orderings")
    path = tmp_path / "columns.json"
    view.apply_preset("columns")
    assert view.save_to(path)
    command = _hint_in(view.validation.text())
    assert command.startswith("ar-explorer train --model made --dataset binarized-mnist --ordering")
    _parses(command)


def test_the_hints_of_the_views_parse(make_window, checkpoint_dir):
    save_tiny(checkpoint_dir, "tiny-gated", "gated-pixelcnn")  # no test NLL recorded, no data here
    window = make_window("tiny-gated")
    train = window.show_view("train")
    train.dataset_box.setCurrentIndex(train.dataset_box.findData("binarized-mnist"))
    shown = [train.state.text(), window.toolbar.checkpoints.itemData(0, 3),
             window.views["score"].tools.test_button.toolTip()]
    from app.ui.qt_model_card import NO_CHECKPOINT

    shown += NO_CHECKPOINT.split("<code>")[1:]
    commands = [_hint_in(text) for text in shown if "ar-explorer " in text]
    assert len(commands) >= 5
    for command in commands:
        _parses(command)


def _shown_strings(tree: ast.AST) -> list[tuple[int, str]]:
    """String constants and f-string parts that are not docstrings."""
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def test_no_view_writes_a_command_line_of_its_own():
    """Commands come from app.ui.hints, whose every command is checked above."""
    found = []
    for path in sorted(UI.rglob("*.py")):
        if path.name == "hints.py":
            continue
        for line, text in _shown_strings(ast.parse(path.read_text(encoding="utf-8"))):
            if "ar-explorer " in text:
                found.append(f"{path.relative_to(UI)}:{line}: {text.strip()[:80]}")
    assert found == []
