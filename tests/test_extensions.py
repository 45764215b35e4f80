"""One extension mechanism: the built-in views and commands register through the same hooks as a plugin's
(``ar_explorer_views``, ``ar_explorer_commands``), a plugin's command runs beside them, one whose registration
fails is a warning, and the built-in plugins are the same in ``pyproject.toml`` and ``BUILTIN_PLUGINS``."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.registry import BUILTIN_PLUGINS, Registry

ROOT = Path(__file__).resolve().parent.parent


def test_the_built_in_views_and_commands_come_through_the_hooks():
    registry = Registry()
    assert list(registry.views) == ["sample", "score", "inspect", "toy", "orderings", "complete", "stages", "fisher",
                                    "train"]
    assert list(registry.commands) == ["core", "data", "bench", "complete", "fisher", "lessons", "desktop"]
    owners = {registry._owner[("views", "sample")], registry._owner[("commands", "core")]}
    assert all(registry.statuses[name].module in ("plugins.views", "plugins.commands") for name in owners)


def test_every_built_in_command_is_in_the_parser():
    from app.cli.main import _command_names, build_parser

    names = _command_names(build_parser(Registry()))
    assert names == {"models", "check", "train", "sample", "score", "eval", "data", "bench", "complete", "fisher",
                     "fisher-decoder", "lessons", "desktop"}


def test_a_plugins_command_runs_and_a_broken_one_is_a_warning(monkeypatch, capsys):
    from app.cli.main import main
    from app.core import registry

    monkeypatch.setenv("AR_EXPLORER_PLUGINS", "example_plugins.extra_command")
    monkeypatch.setattr(registry, "_DEFAULT", None)
    assert main(["hello", "lecture"]) == 0
    out, err = capsys.readouterr()
    assert out == "hello, lecture\n"
    assert "warning: the commands 'broken' (a broken one) were not added: RuntimeError: this command is unfinished" in err
    assert main(["data", "list"]) == 0  # the built-in commands are all still there


def test_entry_points_and_builtin_plugins_agree():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    entry_points = project["project"]["entry-points"]["ar_explorer"]
    assert list(entry_points.values()) == list(BUILTIN_PLUGINS), (
        "pyproject.toml's ar_explorer entry points and registry.BUILTIN_PLUGINS list other modules (or another order)"
    )
    on_disk = {f"plugins.{p.stem}" for p in (ROOT / "plugins").glob("*.py")}
    assert set(BUILTIN_PLUGINS) <= on_disk
