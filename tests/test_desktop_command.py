"""``ar-explorer desktop install``: the menu entry and the MIME type that make a double-clicked session file
open the app, written for the current user only, quoted as the Desktop Entry Specification asks, and removed
exactly by ``uninstall``."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from app.cli.desktop_command import DesktopFiles, desktop_entry, exec_quote, launcher_command, refresh_desktop
from app.cli.main import main, session_shorthand
from app.core.session_file import MIME_TYPE

pytestmark = pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="freedesktop.org files")


def read_entry(path: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read(path)
    return parser["Desktop Entry"]


def exec_arguments(value: str) -> list[str]:
    """Split an Exec value as the Desktop Entry Specification reads it: the string escapes of every value
    first, then the quoting of Exec (in double quotes, a backslash escapes ", `, $ and itself)."""
    text, i = [], 0
    while i < len(value):  # string level: \\ is one backslash
        if value[i] == "\\" and value[i + 1:i + 2] == "\\":
            text.append("\\")
            i += 2
        else:
            text.append(value[i])
            i += 1
    arguments, current, quoted, chars = [], None, False, iter("".join(text))
    for ch in chars:
        if quoted:
            if ch == "\\":
                current += next(chars)
            elif ch == '"':
                quoted = False
            else:
                current += ch
        elif ch == '"':
            quoted, current = True, current or ""
        elif ch == " ":
            if current is not None:
                arguments.append(current)
            current = None
        else:
            current = (current or "") + ch
    if current is not None:
        arguments.append(current)
    return arguments


def test_install_writes_an_entry_a_mime_type_and_an_icon(tmp_path, capsys):
    assert main(["desktop", "install", "--data-home", str(tmp_path), "--no-refresh"]) == 0
    files = DesktopFiles(tmp_path)
    entry = read_entry(files.entry)
    assert entry["Type"] == "Application" and entry["MimeType"] == f"{MIME_TYPE};"
    arguments = exec_arguments(entry["Exec"])
    assert arguments[-1] == "%f" and Path(arguments[0]).is_file(), "it starts this installation of the app"
    mime = ET.parse(files.mime).getroot()
    ns = {"m": "http://www.freedesktop.org/standards/shared-mime-info"}
    kind = mime.find("m:mime-type", ns)
    assert kind.get("type") == MIME_TYPE and kind.find("m:glob", ns).get("pattern") == "*.arsession"
    assert files.icon.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = capsys.readouterr().out
    assert f"wrote {files.entry}" in out and "double-click a .arsession file" in out


def test_uninstall_removes_exactly_what_install_wrote(tmp_path, capsys):
    files = DesktopFiles(tmp_path)
    other = files.entry.parent / "someone-else.desktop"
    assert main(["desktop", "install", "--data-home", str(tmp_path), "--no-refresh"]) == 0
    other.write_text("[Desktop Entry]\n")
    assert main(["desktop", "uninstall", "--data-home", str(tmp_path), "--no-refresh"]) == 0
    assert not files.entry.exists() and not files.mime.exists() and not files.icon.exists()
    assert other.exists()
    assert main(["desktop", "uninstall", "--data-home", str(tmp_path), "--no-refresh"]) == 0
    assert "nothing to remove" in capsys.readouterr().out


@pytest.mark.parametrize("argument", ["/usr/bin/ar-explorer", "/home/ann/my venv/bin/ar-explorer",
                                      '/odd/"quoted" $HOME `x` back\\slash/python', "/100%/python"])
def test_exec_arguments_are_quoted_so_a_desktop_reads_them_back(argument):
    value = exec_quote(argument)
    assert exec_arguments(value) == [argument.replace("%", "%%")]  # %% is how a desktop reads a literal %
    assert " " not in value or value.startswith('"')


def test_the_entry_starts_the_app_with_no_file_and_with_a_session_file():
    entry = desktop_entry(["/x/ar-explorer"])
    assert "Exec=/x/ar-explorer %f\n" in entry
    # %f is dropped when started from the menu, and is the file when one is double-clicked
    assert session_shorthand(["/x/lecture.arsession"]) == ["--session", "/x/lecture.arsession"]
    assert session_shorthand([]) == []
    assert session_shorthand(["--session", "a.arsession"]) == ["--session", "a.arsession"]
    assert session_shorthand(["sample", "--out", "x.arsession"], {"sample"}) == ["sample", "--out", "x.arsession"]


def test_the_launcher_is_the_script_beside_this_python():
    command = launcher_command()
    assert Path(command[0]).is_file()
    assert command[0].endswith("ar-explorer") or command[1:] == ["-m", "app.main"]


def test_missing_desktop_tools_are_skipped_with_a_line_each(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools-here"))
    lines = refresh_desktop(DesktopFiles(tmp_path), associate=True)
    assert len(lines) == 3 and all("is not installed: skipped" in line for line in lines)


@pytest.mark.skipif(shutil.which("update-mime-database") is None, reason="needs shared-mime-info")
def test_the_desktop_s_own_tool_accepts_the_mime_type(tmp_path):
    files = DesktopFiles(tmp_path)
    assert main(["desktop", "install", "--data-home", str(tmp_path), "--no-refresh"]) == 0
    lines = refresh_desktop(files, associate=False)
    assert lines[0] == "update-mime-database: ok", lines
    compiled = tmp_path / "mime" / "application" / "x-ar-explorer-session.xml"
    assert compiled.is_file(), "shared-mime-info compiled the type"
    globs = (tmp_path / "mime" / "globs2").read_text()
    assert f"{MIME_TYPE}:*.arsession" in globs


def test_show_prints_the_files_and_writes_nothing(tmp_path, capsys):
    assert main(["desktop", "show", "--data-home", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "[Desktop Entry]" in out and "<mime-info" in out and not any(tmp_path.iterdir())


def test_the_installed_command_opens_the_app_on_a_session_file(tmp_path):
    """What a double-click runs: the Exec line with the file for %f (here with a screenshot, to end)."""
    from app.core.session_file import CheckpointRef, SamplingSettings, SessionState, save_session

    pytest.importorskip("PySide6")
    session = save_session(SessionState(checkpoint=CheckpointRef("not-on-this-machine"), view="sample",
                                        sampling=SamplingSettings(seed=3, images=1)), tmp_path / "demo.arsession")
    arguments = exec_arguments(read_entry_text(desktop_entry(launcher_command())))
    shot = tmp_path / "shot.png"
    command = [*arguments[:-1], "--screenshot", str(shot), "--after", "0.2", str(session)]
    env = {"QT_QPA_PLATFORM": "offscreen", "AR_EXPLORER_SETTINGS": str(tmp_path / "ui.ini"),
           "AR_EXPLORER_CHECKPOINTS": str(tmp_path / "none"), "PATH": "/usr/bin:/bin",
           "HOME": str(tmp_path)}
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert shot.is_file() and "error" not in result.stderr.lower()


def read_entry_text(text: str) -> str:
    line = next(line for line in text.splitlines() if line.startswith("Exec="))
    return line[len("Exec="):]
