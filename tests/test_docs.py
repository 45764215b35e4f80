"""docs/plugins.md stays in step with the hookspecs, and its example plugin works as documented."""

import inspect
import json
import re
import sys
from pathlib import Path

import pytest

from app.core import hookspecs
from app.core.errors import HyperparameterError

DOC = (Path(__file__).resolve().parent.parent / "docs" / "plugins.md").read_text()


def hooks():
    return {name: fn for name, fn in vars(hookspecs).items() if name.startswith("ar_explorer_") and callable(fn)}


def test_every_hook_is_documented_with_its_signature_and_docstring():
    for name, fn in hooks().items():
        signature = f"{name}{inspect.signature(fn)}"
        assert f"### `{signature}`" in DOC, f"docs/plugins.md lacks a section '### `{signature}`'"
        first_line = fn.__doc__.strip().splitlines()[0]
        assert first_line in DOC.replace("\n", " "), f"the docstring of {name} is not quoted in the docs"


def test_no_undocumented_hook_sections():
    documented = set(re.findall(r"### `(ar_explorer_\w+)\(", DOC))
    assert documented == set(hooks())


def test_every_hook_has_a_one_line_docstring_saying_what_to_return():
    for fn in hooks().values():
        assert fn.__doc__ and fn.__doc__.strip().startswith("Return")


def test_the_example_plugin_loads_conforms_and_trains(tmp_path, monkeypatch):
    code = re.search(r"Save this as `fvsbn.py`:\n\n```python\n(.*?)```", DOC, re.S).group(1)
    (tmp_path / "fvsbn.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("fvsbn", None)
    from app.core.registry import Registry
    from app.testing import check_model

    registry = Registry(env={"AR_EXPLORER_PLUGINS": "fvsbn"})
    assert registry.statuses["fvsbn"].status == "ok"
    report = check_model(registry.model("fvsbn"))
    assert report.passed, str(report)


def test_the_cached_sampling_example_samples_from_the_cache_and_conforms():
    code = re.search(r"## Cached sampling for free.*?```python\n(.*?)```", DOC, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "plugins.md: cached sampling", "exec"), namespace)  # its last line compares the samplers
    from app.core.cached_sampling import CachedSampler
    from app.core.sampling import prepare_run
    from app.testing import check_model

    model = namespace["model"]
    assert isinstance(prepare_run(model, 2, mode="cached").sampler, CachedSampler)
    report = check_model(namespace["SPEC"], checks=["purity", "autoregressive", "cache-program"])
    assert report.passed, str(report)


# the reference: every object a plugin meets, with every attribute it has ----------------------------------------


def section(heading: str) -> str:
    """The text under ``### heading`` (up to the next heading of its level or above); an object's section is
    headed by its name in backticks."""
    match = re.search(rf"^### {re.escape(heading)}\n(.*?)(?=^##)", DOC + "\n## end", re.S | re.M)
    assert match, f"docs/plugins.md lacks a section '### {heading}'"
    return match.group(1)


def _documented(text: str, name: str) -> bool:
    return re.search(rf"`{re.escape(name)}[`(\s]", text) is not None


def _public(names) -> set[str]:
    return {n for n in names if not n.startswith("_")}


def _members(cls) -> set[str]:
    import dataclasses

    fields = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
    return _public(set(vars(cls)) | set(getattr(cls, "__annotations__", {})) | fields)


def _assert_all_documented(title: str, names: set[str]) -> None:
    text = section(f"`{title}`")
    missing = sorted(n for n in names if not _documented(text, n))
    assert not missing, f"the section on {title} does not name: {', '.join(missing)}"


def test_model_spec_and_model_config_are_documented_field_by_field():
    from app.core.model import ModelConfig, ModelSpec

    _assert_all_documented("ModelSpec", _members(ModelSpec))
    _assert_all_documented("ModelConfig", _members(ModelConfig))


def test_armodel_is_documented_member_by_member():
    import torch

    from app.core.model import ARModel
    from app.core.orderings import raster

    class Plain(ARModel):
        pass

    from app.core.likelihoods import Bernoulli
    from app.core.model import ModelConfig

    instance = Plain(ModelConfig((1, 2, 2), 2), Bernoulli())
    set_in_init = _public(vars(instance)) - _public(vars(torch.nn.Module()))
    assert set_in_init == {"config", "likelihood", "ordering"}
    _assert_all_documented("ARModel", _members(ARModel) | set_in_init)
    assert instance.ordering == raster(2, 2)


def test_normalize_maps_as_documented():
    import torch

    from app.core.likelihoods import Categorical
    from app.core.model import ARModel, ModelConfig

    text = section("`ARModel`")
    assert "`x * 2 / (K - 1) - 1`" in text and "K = 4: `-1, -1/3, 1/3, 1`" in text
    model = ARModel(ModelConfig((1, 1, 4), 4), Categorical(4))
    assert torch.allclose(model.normalize(torch.arange(4.0)), torch.tensor([-1, -1 / 3, 1 / 3, 1]))


def test_likelihood_heads_are_documented_method_by_method():
    from app.core import likelihoods

    _assert_all_documented("Likelihood", _members(likelihoods.Likelihood))
    heads = [c for c in vars(likelihoods).values() if isinstance(c, type) and issubclass(c, likelihoods.Likelihood)]
    _assert_all_documented("Likelihood", {c.__name__ for c in heads if c is not likelihoods.Likelihood})
    assert '`Bernoulli(inputs="probs")`' in section("`Likelihood`")


def test_the_documented_head_example_is_a_normalised_head():
    import torch

    code = re.search(r"For example a binomial head.*?```python\n(.*?)```", DOC, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "docs/plugins.md", "exec"), namespace)
    head = namespace["Binomial"](5)
    params = torch.randn(3, 7, 1) * 3
    logp = head.log_probs_all(params)
    assert logp.shape == (3, 7, 5)
    assert torch.allclose(logp.exp().sum(-1), torch.ones(3, 7), atol=1e-5)
    assert head.validate(params) is None


def test_the_sampler_interface_and_every_mode_are_documented():
    import torch

    from app.core.likelihoods import Bernoulli
    from app.core.model import ARModel, ModelConfig, ModelSpec
    from app.core.registry import Registry
    from app.core.sampling import NaiveSampler, Sampler

    class Plain(ARModel):
        def __init__(self, config):
            super().__init__(config, Bernoulli())

        def forward(self, x, cond=None, ordering=None):
            return torch.zeros(*x.shape, 1)

    model = ModelSpec("plain", "Plain", "", Plain).create(ModelConfig((1, 2, 2), 2))
    instance = NaiveSampler(model, torch.zeros(1, 1, 2, 2), None, None)
    _assert_all_documented("Sampler", _members(Sampler) | _public(vars(instance)))
    modes = {"naive", "auto", "own"} | {m for s in Registry().models.values() for m in s.sampler_modes}
    text = section("`Sampler`")
    missing = sorted(m for m in modes if f"| `{m}` |" not in text and f"`{m}` (" not in text)
    assert not missing, f"sampler modes not documented: {missing}"


def test_the_kits_keys_are_documented():
    from app.testing.instances import KIT_KEYS

    source = "".join(p.read_text() for p in (Path(__file__).parent.parent / "app" / "testing").glob("*.py"))
    read = {f"kit_{key}" for key in re.findall(r'kit_setting\(spec, "(\w+)"', source)}
    assert read == set(KIT_KEYS)
    text = section("`tiny_hparams` and the kit's keys").replace("\n", " ")
    assert all(f"| `{key}` |" in text for key in KIT_KEYS)
    assert "paper_nll" in section("`ModelSpec`") and "nats per image on the standard binarized MNIST" in DOC.replace("\n", " ")


def test_the_checkpoint_folder_is_where_the_docs_say(monkeypatch, tmp_path):
    from app.core.checkpoints import user_checkpoint_dir

    text = section("The checkpoint folder").replace("\n", " ")
    monkeypatch.setenv("AR_EXPLORER_CHECKPOINTS", str(tmp_path / "mine"))
    assert user_checkpoint_dir() == tmp_path / "mine" and "`$AR_EXPLORER_CHECKPOINTS`" in text
    monkeypatch.delenv("AR_EXPLORER_CHECKPOINTS")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert user_checkpoint_dir() == tmp_path / "xdg" / "ar-explorer" / "checkpoints"
    assert "`$XDG_DATA_HOME/ar-explorer/checkpoints`" in text
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert user_checkpoint_dir() == tmp_path / ".local" / "share" / "ar-explorer" / "checkpoints"
    assert "`~/.local/share/ar-explorer/checkpoints`" in text


def test_the_exit_codes_of_check_are_the_documented_ones(monkeypatch, capsys):
    from app.cli.main import EXIT_ERROR, EXIT_INTERRUPTED, main
    from app.core import registry

    def plugins(modules: str) -> None:
        monkeypatch.setenv("AR_EXPLORER_PLUGINS", modules)
        monkeypatch.setattr(registry, "_DEFAULT", None)  # the CLI's registry is built once per process

    table = dict(re.findall(r"^\| `(\d+)` \| (.*) \|$", section("`ar-explorer check` and its exit codes"), re.M))
    assert set(table) == {"0", "1", "2", "130"}
    assert (EXIT_ERROR, EXIT_INTERRUPTED) == (2, 130)
    assert main(["check", "histogram"]) == 0
    plugins("example_plugins.mask_bug")
    assert main(["check", "leaky-fvsbn"]) == 1
    assert "[FAIL] autoregressive-real-size: position 400 (row 14, col 8) sees" in capsys.readouterr().out
    assert main(["check", "no-such-model"]) == EXIT_ERROR
    plugins("example_plugins.misspelt_hook")
    assert main(["--strict-plugins", "check", "histogram"]) == EXIT_ERROR
    assert "ar_explorer_model is not a hook" in capsys.readouterr().err


def test_every_documented_check_runs_in_the_documented_order():
    from app.testing import ALL_CHECKS

    text = DOC[DOC.index("## The conformance kit") : DOC.index("## Reference")]
    documented = re.findall(r"^- \*\*([\w-]+)\*\*:", text, re.M)
    assert documented == list(ALL_CHECKS)


def test_the_quoted_plugin_warning_is_the_registrys():
    from app.core.registry import Registry

    registry = Registry(env={"AR_EXPLORER_PLUGINS": "example_plugins.misspelt_hook"})
    error = registry.statuses["example_plugins.misspelt_hook"].error
    assert f'"{error}"' in " ".join(DOC.split())


def test_the_documented_typed_hyperparameters_refuse_as_the_table_says():
    code = re.search(r"#### Typed hyperparameters.*?```python\n(.*?)```", DOC, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "docs/plugins.md", "exec"), namespace)
    cls = namespace["ConvHparams"]
    text = re.search(r"^#### Typed hyperparameters\n(.*?)(?=^##)", DOC, re.S | re.M).group(1)
    table = re.findall(r"^\| `(\w+)=(.*?)` \| `(.*?)` \|$", text, re.M)
    assert len(table) == 4
    for key, value, message in table:
        with pytest.raises(HyperparameterError) as info:
            cls.from_hparams({key: json.loads(value)}, "Conv")
        assert str(info.value).startswith(message.removesuffix("..."))
