"""Plugins written in an afternoon: every failure is reported with the plugin's name and the reason, the rest of
the app works, ``--strict-plugins`` makes failures fatal, misbehaving models give ModelError messages, and the
conformance kit tells the author what is wrong."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from bad_inputs.checks import assert_cli_refused, assert_one_line, run_cli
from bad_inputs.make import (
    MASK_SEES_ITSELF,
    MASK_SEES_THE_NEXT,
    PluginCase,
    broken_plugins,
    images,
    misbehaving_models,
    misbehaving_samplers,
    plugin_source,
)

from app.core.errors import ModelError, PluginError
from app.core.registry import Registry

BROKEN = broken_plugins()
MISBEHAVING = misbehaving_models()
SAMPLERS = misbehaving_samplers()


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """A folder on sys.path for plugin modules; the modules are forgotten afterwards."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    yield folder
    # Only the plugins written here: a library module imported lazily meanwhile (torch's, on an optimizer's
    # first step) registers itself once per process and must not be imported twice.
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(folder)):
            del sys.modules[name]


def _install(plugin_dir, monkeypatch, modules: dict[str, str]) -> None:
    for module, source in modules.items():
        (plugin_dir / f"{module}.py").write_text(source)
    monkeypatch.setenv("AR_EXPLORER_PLUGINS", ",".join(modules))


@pytest.mark.parametrize("case", BROKEN, ids=lambda c: c.module)
def test_a_broken_plugin_is_reported_and_the_rest_works(case: PluginCase, plugin_dir, monkeypatch) -> None:
    _install(plugin_dir, monkeypatch, {case.module: case.source, "good_plugin": plugin_source()})
    registry = Registry()
    problems = {status.name: status for status in registry.problems()}
    assert set(problems) == {case.module}, {n: s.error for n, s in problems.items()}
    assert case.problem in problems[case.module].error.lower()
    assert "\n" not in problems[case.module].error
    assert {"made", "pixelcnn", "gated-pixelcnn", "tiny-fvsbn"} <= set(registry.models)
    assert registry.statuses["good_plugin"].status == "ok"


def test_a_name_already_taken_keeps_the_first_owner(plugin_dir, monkeypatch) -> None:
    from plugins.made import SPEC

    case = next(c for c in BROKEN if c.module == "bad_duplicate")
    _install(plugin_dir, monkeypatch, {case.module: case.source})
    registry = Registry()
    assert registry.models["made"] is SPEC
    assert "'made'" in registry.statuses["bad_duplicate"].error


def test_all_broken_plugins_at_once(plugin_dir, monkeypatch, capsys) -> None:
    _install(plugin_dir, monkeypatch, {c.module: c.source for c in BROKEN} | {"good_plugin": plugin_source()})
    result = run_cli(capsys, ["models", "--json"])
    assert result.code == 0, result.err
    listing = json.loads(result.out)
    reported = {p["name"]: p for p in listing["plugins"] if p["status"] != "ok"}
    assert set(reported) == {c.module for c in BROKEN}
    for case in BROKEN:
        assert reported[case.module]["status"] in ("failed", "partial")
        assert case.problem in reported[case.module]["error"].lower()
    assert {"made", "tiny-fvsbn"} <= {m["name"] for m in listing["models"]}
    text = run_cli(capsys, ["models"])
    assert text.code == 0 and all(c.module in text.out for c in BROKEN)


def test_a_plugin_that_raises_keyboard_interrupt_is_broken_not_an_interruption(plugin_dir, monkeypatch, capsys,
                                                                               tmp_path) -> None:
    """A plugin raising KeyboardInterrupt at import ended every command with exit 130, "interrupted"."""
    from bad_inputs.make import tiny_checkpoint

    case = next(c for c in BROKEN if c.module == "bad_interrupt")
    _install(plugin_dir, monkeypatch, {case.module: case.source})
    image = next(c for c in images() if c.name == "grey.png").write(tmp_path)
    result = run_cli(capsys, ["score", image, "--checkpoint", tiny_checkpoint(tmp_path)])
    assert result.code == 0, result.err
    assert "warning: plugin bad_interrupt: failed to import bad_interrupt: KeyboardInterrupt" in result.err
    assert_cli_refused(run_cli(capsys, ["models", "--strict-plugins"]), "keyboardinterrupt")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT as POSIX sends it")
def test_a_real_ctrl_c_while_a_plugin_loads_still_interrupts(plugin_dir, monkeypatch) -> None:
    """The user's own Ctrl-C (a SIGINT) during a slow plugin import is not mistaken for a broken plugin."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach the main thread only")
    source = "import os, signal, time\nos.kill(os.getpid(), signal.SIGINT)\ntime.sleep(5)\n"
    _install(plugin_dir, monkeypatch, {"slow_to_load": source})
    with pytest.raises(KeyboardInterrupt):
        Registry()


@pytest.mark.parametrize("case", BROKEN[:5], ids=lambda c: c.module)
def test_strict_plugins_makes_a_failure_fatal(case: PluginCase, plugin_dir, monkeypatch, capsys) -> None:
    _install(plugin_dir, monkeypatch, {case.module: case.source})
    with pytest.raises(PluginError) as caught:
        Registry(strict=True)
    assert_one_line(caught.value, PluginError, case.module)
    for argv in (["models", "--strict-plugins"], ["--strict-plugins", "models", "--json"]):
        assert_cli_refused(run_cli(capsys, argv), f"plugin {case.module}")


def test_without_strict_a_command_warns_and_works(plugin_dir, monkeypatch, capsys, tmp_path) -> None:
    from bad_inputs.make import tiny_checkpoint

    case = next(c for c in BROKEN if c.module == "bad_hook_raises")
    _install(plugin_dir, monkeypatch, {case.module: case.source})
    result = run_cli(capsys, ["sample", "--checkpoint", tiny_checkpoint(tmp_path), "--out", tmp_path / "s.png", "--n", 2])
    assert result.code == 0, result.err
    assert f"warning: plugin {case.module}" in result.err and (tmp_path / "s.png").exists()


# models that misbehave when used ---------------------------------------------------------------------------------


def _model(plugin_dir, monkeypatch, module: str):
    source, _ = MISBEHAVING[module]
    _install(plugin_dir, monkeypatch, {module: source})
    registry = Registry()
    assert not registry.problems()
    spec = next(s for s in registry.models.values() if s.name.startswith("tiny-"))
    return registry, spec.create(spec.make_config((1, 2, 3), 2, tiny=True))


@pytest.mark.parametrize("module", list(MISBEHAVING))
def test_misbehaving_models_give_model_errors(module: str, plugin_dir, monkeypatch) -> None:
    from app.core.sampling import sample, sample_steps
    from app.core.scoring import conditional_at, receptive_field, score

    _, model = _model(plugin_dir, monkeypatch, module)
    reason = MISBEHAVING[module][1]
    x = torch.zeros(1, 1, 2, 3)
    for use in (
        lambda: score(model, np.zeros((2, 1, 2, 3), dtype=np.uint8)),
        lambda: sample(model, 2),
        lambda: next(iter(sample_steps(model, 2))),
        lambda: conditional_at(model, x, (0, 1, 1)),
        lambda: receptive_field(model, x, (0, 1, 1)),
    ):
        with pytest.raises(ModelError) as caught:
            use()
        assert_one_line(caught.value, ModelError, reason)


@pytest.mark.parametrize("module", list(MISBEHAVING))
def test_misbehaving_models_through_the_cli(module: str, plugin_dir, monkeypatch, capsys, tmp_path) -> None:
    from app.core.checkpoints import save_checkpoint

    _, model = _model(plugin_dir, monkeypatch, module)
    checkpoint = save_checkpoint(model, tmp_path / module, {"dataset": "synthetic-digits"}).weights
    image = next(c for c in images() if c.name == "grey.png").write(tmp_path)
    reason = MISBEHAVING[module][1]
    out = tmp_path / "s.png"
    for argv in (["score", image, "--checkpoint", checkpoint], ["sample", "--checkpoint", checkpoint, "--out", out]):
        assert_cli_refused(run_cli(capsys, argv), reason)
    assert not out.exists()


@pytest.mark.parametrize("module", list(SAMPLERS))
def test_a_plugins_own_sampler_that_misbehaves(module: str, plugin_dir, monkeypatch, capsys, tmp_path) -> None:
    from app.core.checkpoints import save_checkpoint
    from app.core.sampling import sample, sample_steps

    source, reason = SAMPLERS[module]
    _install(plugin_dir, monkeypatch, {module: source})
    registry = Registry()
    spec = next(s for s in registry.models.values() if s.name.startswith("tiny-"))
    model = spec.create(spec.make_config((1, 2, 3), 2, tiny=True))
    assert sample(model, 2, mode="naive").shape == (2, 1, 2, 3)  # the model itself is sound
    for use in (lambda: sample(model, 2, mode="cached"), lambda: list(sample_steps(model, 2, mode="cached"))):
        with pytest.raises(ModelError) as caught:
            use()
        assert_one_line(caught.value, ModelError, reason)
    checkpoint = save_checkpoint(model, tmp_path / module, {"dataset": "synthetic-digits"}).weights
    out = tmp_path / "s.png"
    result = run_cli(capsys, ["sample", "--checkpoint", checkpoint, "--mode", "cached", "--out", out])
    assert_cli_refused(result, reason)
    assert not out.exists()


def test_a_build_that_returns_no_model(plugin_dir, monkeypatch, capsys, tmp_path, tiny_binarized) -> None:
    source = plugin_source("tiny-nothing").replace("build=Tiny,", "build=lambda config: object(),")
    _install(plugin_dir, monkeypatch, {"no_model": source})
    result = run_cli(capsys, ["train", "--model", "tiny-nothing", "--dataset", "binarized-mnist", "--data-dir",
                              tiny_binarized, "--out", tmp_path / "m", "--limit", 16, "--epochs", 0.1])
    assert_cli_refused(result, "not an armodel")


# the conformance kit -----------------------------------------------------------------------------------------------


def _spec(plugin_dir, monkeypatch, module: str, source: str):
    _install(plugin_dir, monkeypatch, {module: source})
    registry = Registry()
    return next(s for s in registry.models.values() if s.name.startswith("tiny-"))


def test_the_kit_passes_a_correct_plugin(plugin_dir, monkeypatch) -> None:
    from app.testing import check_model

    report = check_model(_spec(plugin_dir, monkeypatch, "good_plugin", plugin_source()))
    assert report.passed, str(report)


@pytest.mark.parametrize(
    "mask, message",
    [(MASK_SEES_ITSELF, "position 0 (row 0, col 0) sees position 0 (row 0, col 0)"),
     (MASK_SEES_THE_NEXT, "position 0 (row 0, col 0) sees position 1 (row 0, col 1)")],
    ids=["sees-itself", "sees-the-next"],
)
def test_the_kit_finds_a_mask_bug_and_says_where(mask: str, message: str, plugin_dir, monkeypatch, capsys) -> None:
    from app.testing import check_model

    spec = _spec(plugin_dir, monkeypatch, "leaky_plugin", plugin_source("tiny-leaky", mask=mask))
    report = check_model(spec)
    failure = next(r for r in report.results if r.name == "autoregressive")
    assert not failure.passed and message in failure.message, failure.message
    assert "which is not before it" in failure.message
    result = run_cli(capsys, ["check", "tiny-leaky"])
    assert result.code != 0 and "[FAIL] autoregressive" in result.out and "Traceback" not in result.err


@pytest.mark.parametrize("module", ["model_raises", "model_nan", "model_shape"])
def test_the_kit_reports_a_broken_forward(module: str, plugin_dir, monkeypatch) -> None:
    from app.testing import check_model

    source, reason = MISBEHAVING[module]
    report = check_model(_spec(plugin_dir, monkeypatch, module, source))
    assert not report.passed
    assert all(not r.passed and "\n" not in r.message for r in report.results)
    assert any(reason in r.message.lower() for r in report.results), str(report)
