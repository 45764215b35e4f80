"""docs/ui-views.md stays in step with the code, as docs/plugins.md does: its table of built-in views is the
views plugin's list, every public member of ``AppContext`` is in its table, and every method a view may define
is one the window looks for (and the other way round)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("PySide6")

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "ui-views.md").read_text(encoding="utf-8")


def section(heading: str) -> str:
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## )", DOC + "\n## end", re.S | re.M)
    assert match, f"docs/ui-views.md lacks a section '## {heading}'"
    return match.group(1)


def table_rows(text: str) -> list[list[str]]:
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in text.splitlines()
            if line.startswith("|")]
    return rows[2:]  # past the header and its rule


def test_the_table_of_built_in_views_is_the_views_plugins_list():
    from plugins.views import VIEWS

    rows = [(name.strip("`"), title, factory.strip("`")) for name, title, factory, _ in
            table_rows(section("The built-in views"))]
    assert rows == [(v.name, v.title, v.factory) for v in VIEWS]
    assert f"The {len(VIEWS)} built-in views" in DOC.replace("nine", "9")


def test_every_public_member_of_the_app_context_is_documented():
    from PySide6.QtCore import QObject

    from app.core.session import Session
    from app.ui.context import AppContext
    from app.ui.preferences import Preferences

    context = AppContext(Session(device="cpu"), Preferences.scratch())
    members = {n for n in set(vars(AppContext)) | set(vars(context)) if not n.startswith("_")}
    members -= set(vars(QObject)) | {"staticMetaObject"}
    text = section("What the widget receives: `AppContext` (`app/ui/context.py`)")
    missing = sorted(n for n in members if not re.search(rf"`context\.{n}[`(]", text))
    assert not missing, f"docs/ui-views.md does not name these members of AppContext: {', '.join(missing)}"


def test_the_methods_a_view_may_define_are_those_the_window_looks_for():
    text = section("What the widget may define")
    documented = {re.match(r"`(\w+)\(", row[0]).group(1) for row in table_rows(text)}
    # the modules that treat every tab as a view (export.py looks at plots, not views)
    source = "".join((ROOT / "app" / "ui" / name).read_text() for name in ("qt_main_window.py", "screenshot.py",
                                                                          "session_io.py"))
    looked_for = set(re.findall(r"(?:getattr|hasattr)\(widget, \"(\w+)\"", source))
    assert documented == looked_for
