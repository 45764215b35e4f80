"""Replace the table between the README's lessons markers with a report of ``ar-explorer lessons --json``.

``python scripts/update_readme_lessons.py REPORT.json`` (made by ``ar-explorer lessons --json > REPORT.json``):
the README then shows, lesson by lesson, the figure measured on the shipped checkpoints beside its target.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- lessons:begin -->", "<!-- lessons:end -->"


def table(report: dict) -> str:
    rows = ["| lesson | checkpoints | measured | target | |", "| --- | --- | --- | --- | --- |"]
    for lesson in report["lessons"]:
        names = ", ".join(f"`{n}`" for n in lesson["checkpoints"]) or "none shipped"
        mark = "pass" if lesson["passed"] else "**fails**"
        figure = lesson["figure"].replace("|", "\\|")
        rows.append(f"| {lesson['lesson']} | {names} | {figure} | {lesson['target']} | {mark} |")
    rows.append("")
    rows.append(f"{report['passed']} of {report['passed'] + report['failed']} lessons pass.")
    return "\n".join(rows)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    report = json.loads(Path(argv[0]).read_text())
    readme = ROOT / "README.md"
    text = readme.read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{BEGIN}\n{table(report)}\n{END}{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
