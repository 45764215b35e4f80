"""The core never imports Qt: it imports and works with PySide6 and pyqtgraph made unimportable, and the
import-linter contracts in pyproject.toml hold. Lint (ruff) runs as part of the suite."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

BLOCK_QT = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('PySide6', 'pyqtgraph', 'shiboken6', 'superqt', 'qtpy'):
            raise ImportError(f'{name} is blocked in this test')
sys.meta_path.insert(0, _Block())
"""


def run_python(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK_QT + code, *args], capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_core_cli_and_plugins_work_without_qt(tmp_path):
    code = f"""
import importlib, pkgutil, app.core, app.testing, app.cli, plugins
for package in (app.core, app.testing, app.cli, plugins):
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + '.'):
        importlib.import_module(info.name)
from app.cli.main import main
assert main(['models']) == 0
assert main(['sample', '--checkpoint', 'made-binarized-mnist', '--n', '1', '--out', r'{tmp_path / "s.png"}']) == 0
assert 'PySide6' not in sys.modules and 'pyqtgraph' not in sys.modules
print('headless ok')
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "headless ok" in result.stdout


def test_app_without_qt_says_how_to_get_it():
    result = run_python("from app.main import main; raise SystemExit(main([]))")
    assert result.returncode != 0 and "PySide6" in result.stderr and "Traceback" not in result.stderr


def test_import_linter_contracts_hold():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("import-linter is not installed")
    result = subprocess.run([exe], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def test_ruff_is_clean():
    exe = shutil.which("ruff", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("ruff is not installed")
    result = subprocess.run([exe, "check", "app", "plugins", "tests", "benchmarks", "scripts"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]


def test_the_cli_alone_never_opens_the_app(capsys):
    """Only the entry point above both layers (app.main) hands the CLI a way to open the app."""
    from app.cli.main import EXIT_ERROR, main

    assert main([]) == EXIT_ERROR
    assert "the desktop app opens from the ar-explorer command" in capsys.readouterr().err
