"""``ar-explorer desktop install``: a menu entry and a file association, so that double-clicking a session
file (``*.arsession``) opens the app on it.

It writes, for the current user only, the freedesktop.org files that Linux and BSD desktops read:
``applications/ar-explorer.desktop``, the MIME type ``application/x-ar-explorer-session`` in
``mime/packages/ar-explorer.xml`` and the icon, under ``$XDG_DATA_HOME`` (``~/.local/share``), then asks the
desktop's own tools (``update-mime-database``, ``update-desktop-database``, ``xdg-mime``) to take them in,
where they are installed. ``desktop uninstall`` removes exactly these files; ``desktop show`` prints them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from app.core.errors import ARExplorerError
from app.core.files import atomic_write_bytes, atomic_write_text
from app.core.session_file import MIME_TYPE, SUFFIX

APP_ID = "ar-explorer"
ICON = Path(__file__).resolve().parents[2] / "assets" / "icon.png"
TOOL_TIMEOUT_S = 30

MIME_XML = f"""<?xml version="1.0" encoding="UTF-8"?>
<mime-info xmlns="http://www.freedesktop.org/standards/shared-mime-info">
  <mime-type type="{MIME_TYPE}">
    <comment>AR Explorer session</comment>
    <sub-class-of type="application/json"/>
    <generic-icon name="{APP_ID}"/>
    <glob pattern="*{SUFFIX}"/>
  </mime-type>
</mime-info>
"""


@dataclass(frozen=True)
class DesktopFiles:
    """Where the three files go under one data folder."""

    data_home: Path

    @property
    def entry(self) -> Path:
        return self.data_home / "applications" / f"{APP_ID}.desktop"

    @property
    def mime(self) -> Path:
        return self.data_home / "mime" / "packages" / f"{APP_ID}.xml"

    @property
    def icon(self) -> Path:
        return self.data_home / "icons" / "hicolor" / "256x256" / "apps" / f"{APP_ID}.png"


def data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def launcher_command() -> list[str]:
    """The command that starts this installation of the app: its ``ar-explorer`` script beside the Python
    that runs now (a virtual environment's), else that Python with ``-m app.main``."""
    script = Path(sys.executable).parent / (APP_ID + (".exe" if os.name == "nt" else ""))
    return [str(script)] if script.is_file() else [sys.executable, "-m", "app.main"]


def exec_quote(argument: str) -> str:
    """One argument of a desktop entry's ``Exec`` key, quoted as the Desktop Entry Specification asks (and
    with the backslashes that its string values escape once more)."""
    argument = argument.replace("%", "%%")  # a literal % would read as a field code (%f)
    reserved = set(" \t\n\"'\\><~|&;$*?#()`")
    if argument and not reserved & set(argument):
        return argument
    quoted = "".join("\\" + ch if ch in '"`$\\' else ch for ch in argument)
    return '"' + quoted.replace("\\", "\\\\") + '"'


def desktop_entry(command: list[str]) -> str:
    """The ``.desktop`` file: ``%f`` is the session file double-clicked (nothing when started from the menu,
    which opens the app as usual: ``ar-explorer FILE.arsession`` is the same as ``--session FILE``)."""
    exec_line = " ".join(exec_quote(part) for part in command) + " %f"
    return "\n".join([
        "[Desktop Entry]",
        "Type=Application",
        "Name=AR Explorer",
        "GenericName=Autoregressive model explorer",
        "Comment=See inside autoregressive likelihood models of images, pixel by pixel",
        f"Exec={exec_line}",
        f"Icon={APP_ID}",
        "Terminal=false",
        "Categories=Education;Science;ArtificialIntelligence;",
        f"MimeType={MIME_TYPE};",
        "",
    ])


def install(files: DesktopFiles, command: list[str]) -> list[Path]:
    """Write the entry, the MIME type and the icon; returns the files written."""
    atomic_write_text(files.entry, desktop_entry(command))
    atomic_write_text(files.mime, MIME_XML)
    written = [files.entry, files.mime]
    if ICON.is_file():
        atomic_write_bytes(files.icon, ICON.read_bytes())
        written.append(files.icon)
    return written


def uninstall(files: DesktopFiles) -> list[Path]:
    """Remove the files :func:`install` writes (and nothing else); returns those that were there."""
    removed = []
    for path in (files.entry, files.mime, files.icon):
        if path.is_file():
            path.unlink()
            removed.append(path)
    return removed


def refresh_desktop(files: DesktopFiles, associate: bool) -> list[str]:
    """Run the desktop's tools that are installed; one line for each that ran or is missing."""
    steps = [("update-mime-database", [str(files.data_home / "mime")]),
             ("update-desktop-database", [str(files.entry.parent)])]
    if associate:
        steps.append(("xdg-mime", ["default", files.entry.name, MIME_TYPE]))
    lines = []
    for tool, arguments in steps:
        path = shutil.which(tool)
        if path is None:
            lines.append(f"{tool} is not installed: skipped (the desktop reads the files at its next start)")
            continue
        try:
            result = subprocess.run([path, *arguments], capture_output=True, text=True, timeout=TOOL_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            lines.append(f"{tool} failed: {' '.join(str(exc).split())}")
            continue
        problem = " ".join((result.stderr or result.stdout).split())
        lines.append(f"{tool}: ok" if result.returncode == 0 else f"{tool} exited {result.returncode}: {problem}")
    return lines


def cmd_desktop(args: argparse.Namespace) -> int:
    files = DesktopFiles(Path(args.data_home).expanduser() if args.data_home else data_home())
    if args.action == "show":
        print(f"# {files.entry}\n{desktop_entry(launcher_command())}\n# {files.mime}\n{MIME_XML}", end="")
        return 0
    if sys.platform in ("win32", "darwin"):
        raise ARExplorerError("desktop install writes the freedesktop.org files of Linux and BSD desktops; on "
                              "Windows and macOS see the README's 'Session files' section")
    if args.action == "install":
        for path in install(files, launcher_command()):
            print(f"wrote {path}")
    else:
        removed = uninstall(files)
        print("\n".join(f"removed {p}" for p in removed) or "nothing to remove: the files were not installed")
    if not args.no_refresh:
        for line in refresh_desktop(files, associate=args.action == "install"):
            print(line)
    if args.action == "install":
        print(f"double-click a {SUFFIX} file to open the app on it (or: ar-explorer FILE{SUFFIX})")
    return 0


def register(sub: argparse._SubParsersAction, add_common) -> None:
    parser = sub.add_parser("desktop", help=f"a menu entry, and {SUFFIX} files open the app on a double-click",
                            description=__doc__.split("\n\n")[0])
    add_common(parser)
    parser.add_argument("action", choices=("install", "uninstall", "show"))
    parser.add_argument("--data-home", metavar="DIR", help="instead of $XDG_DATA_HOME (~/.local/share)")
    parser.add_argument("--no-refresh", action="store_true", help="write the files only; run no desktop tool")
    parser.set_defaults(handler=cmd_desktop)


__all__ = ["install", "uninstall", "desktop_entry", "exec_quote", "launcher_command", "DesktopFiles", "MIME_XML",
           "refresh_desktop", "register"]
