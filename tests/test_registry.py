import sys
import textwrap

import pytest

from app.core.errors import PluginError
from app.core.registry import Registry

BUILTIN_MODELS = {"made", "pixelcnn", "gated-pixelcnn"}


def write_plugin(tmp_path, monkeypatch, name, body):
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(body))
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop(name, None)


def test_builtins_load_through_the_entry_point_group():
    registry = Registry()
    assert BUILTIN_MODELS <= set(registry.models)
    assert {"binarized-mnist", "mnist", "mnist-threshold", "synthetic-digits"} <= set(registry.datasets)
    assert {"raster", "columns", "random", "even-then-odd", "top-bottom-to-middle", "zigzag", "hilbert"} <= set(
        registry.orderings
    )
    sources = {s.source for s in registry.statuses.values() if s.module.startswith("plugins.")}
    assert sources == {"entry point"}
    assert registry.problems() == []


def test_plugin_that_raises_on_import_is_recorded_and_skipped(tmp_path, monkeypatch):
    write_plugin(tmp_path, monkeypatch, "broken_plugin", "raise RuntimeError('boom at import')\n")
    registry = Registry(env={"AR_EXPLORER_PLUGINS": "broken_plugin"})
    status = registry.statuses["broken_plugin"]
    assert status.status == "failed" and "boom at import" in status.error
    assert BUILTIN_MODELS <= set(registry.models)


def test_missing_module_is_recorded():
    registry = Registry(env={"AR_EXPLORER_PLUGINS": "no_such_module_anywhere"})
    assert "No module named" in registry.statuses["no_such_module_anywhere"].error


def test_strict_makes_failures_fatal(tmp_path, monkeypatch):
    write_plugin(tmp_path, monkeypatch, "broken_plugin2", "import nonexistent_dependency\n")
    with pytest.raises(PluginError, match="broken_plugin2"):
        Registry(strict=True, env={"AR_EXPLORER_PLUGINS": "broken_plugin2"})


def test_hook_that_raises_or_returns_junk_is_isolated(tmp_path, monkeypatch):
    write_plugin(
        tmp_path,
        monkeypatch,
        "junk_plugin",
        """
        from app.core import hookimpl

        @hookimpl
        def ar_explorer_models():
            raise ValueError("models hook exploded")

        @hookimpl
        def ar_explorer_datasets():
            return "not a list"

        @hookimpl
        def ar_explorer_orderings():
            return [42]
        """,
    )
    registry = Registry(env={"AR_EXPLORER_PLUGINS": "junk_plugin"})
    status = registry.statuses["junk_plugin"]
    assert status.status == "partial"
    assert any("models hook exploded" in e for e in status.errors)
    assert any("expected a list" in e for e in status.errors)
    assert any("expected OrderingSpec" in e for e in status.errors)
    assert BUILTIN_MODELS <= set(registry.models)


def test_duplicate_name_is_refused_with_the_owner(tmp_path, monkeypatch):
    write_plugin(
        tmp_path,
        monkeypatch,
        "dup_plugin",
        """
        import dataclasses
        from app.core import hookimpl
        from plugins.pixelcnn import SPEC

        @hookimpl
        def ar_explorer_models():
            return [dataclasses.replace(SPEC, title="Impostor")]
        """,
    )
    registry = Registry(env={"AR_EXPLORER_PLUGINS": "dup_plugin"})
    assert registry.models["pixelcnn"].title == "PixelCNN"
    assert "already provided by plugin 'pixelcnn'" in registry.statuses["dup_plugin"].error


def test_load_plugins_restricts_entry_points():
    registry = Registry(env={"AR_EXPLORER_LOAD_PLUGINS": "pixelcnn,builtin_orderings"})
    assert "pixelcnn" in registry.models and "made" not in registry.models


def test_ordering_lookup_by_name_and_file(tmp_path):
    registry = Registry()
    assert registry.ordering("zigzag", 3, 3).name == "zigzag"
    assert registry.ordering("random-5", 3, 3) == registry.ordering("random", 3, 3, 5)
    from app.core.orderings import spiral

    path = tmp_path / "s.json"
    spiral(3, 3).save(path)
    assert registry.ordering(str(path), 3, 3) == spiral(3, 3)
    from app.core.errors import OrderingError

    with pytest.raises(OrderingError, match="4x4"):
        registry.ordering(str(path), 4, 4)
    with pytest.raises(OrderingError, match="no ordering named"):
        registry.ordering("nonsense", 3, 3)


# hooks that are never called ------------------------------------------------------------------------------------


def _example_registry(*modules, **kwargs):
    return Registry(env={"AR_EXPLORER_PLUGINS": ",".join(f"example_plugins.{m}" for m in modules)}, **kwargs)


def test_a_misspelt_hook_is_a_warning_that_names_it():
    registry = _example_registry("misspelt_hook")
    status = registry.statuses["example_plugins.misspelt_hook"]
    assert status.status == "warning"
    assert status.error == (
        "ar_explorer_model is not a hook of AR Explorer, so it is never called: did you mean ar_explorer_models?"
    )
    assert "misspelt" not in registry.models
    assert status in registry.problems() and BUILTIN_MODELS <= set(registry.models)


def test_a_hook_function_without_hookimpl_is_a_warning():
    status = _example_registry("unmarked_hook").statuses["example_plugins.unmarked_hook"]
    assert status.status == "warning"
    assert "ar_explorer_models is not marked with @hookimpl, so it is never called" in status.error


def test_a_plugin_that_implements_no_hook_is_a_warning(tmp_path, monkeypatch):
    write_plugin(tmp_path, monkeypatch, "hookless_plugin", "def helper():\n    return 1\n")
    status = Registry(env={"AR_EXPLORER_PLUGINS": "hookless_plugin"}).statuses["hookless_plugin"]
    assert status.status == "warning" and "implements no hook" in status.error


def test_a_misspelt_hook_is_fatal_under_strict_plugins():
    with pytest.raises(PluginError, match="ar_explorer_model is not a hook"):
        _example_registry("misspelt_hook", strict=True)


def test_strict_plugins_exits_2_and_names_the_misspelt_hook(monkeypatch, capsys):
    from app.cli.main import main

    monkeypatch.setenv("AR_EXPLORER_PLUGINS", "example_plugins.misspelt_hook")
    assert main(["--strict-plugins", "models"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: plugin example_plugins.misspelt_hook: ar_explorer_model is not a hook")
    assert len(err.splitlines()) == 1
    assert main(["models"]) == 0  # without --strict-plugins: a warning, and everything else works
    assert "WARNING" in capsys.readouterr().out


def test_tracing_prints_every_hook_call_with_its_plugin_and_what_it_returned(capsys):
    Registry(env={"AR_EXPLORER_TRACE_PLUGINS": "1", "AR_EXPLORER_LOAD_PLUGINS": "pixelcnn,builtin_orderings"})
    err = capsys.readouterr().err
    assert "ar_explorer_models [hook]\n      plugin: pixelcnn\n" in err
    assert "finish ar_explorer_models --> [pixelcnn] [hook]" in err
    assert "finish ar_explorer_orderings --> [raster, columns," in err


def test_no_trace_without_the_variable(capsys):
    Registry(env={"AR_EXPLORER_LOAD_PLUGINS": "pixelcnn"})
    assert "[hook]" not in capsys.readouterr().err
