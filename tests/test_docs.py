"""docs/plugins.md stays in step with the hookspecs, and its example plugin works as documented."""

import inspect
import re
import sys
from pathlib import Path

from app.core import hookspecs

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
