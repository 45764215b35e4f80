"""Replace the table between the README's model-table markers with the output of scripts/model_table.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- model-table:begin -->", "<!-- model-table:end -->"


def main() -> int:
    table = subprocess.run([sys.executable, str(ROOT / "scripts" / "model_table.py")], capture_output=True, text=True,
                           check=True).stdout.strip()
    readme = ROOT / "README.md"
    text = readme.read_text()
    if "MODEL_TABLE" in text:
        text = text.replace("MODEL_TABLE", f"{BEGIN}\n{END}", 1)
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{BEGIN}\n{table}\n{END}{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
