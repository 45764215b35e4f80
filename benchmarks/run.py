"""Run the benchmark suite: ``python benchmarks/run.py [--device D] [--json] [--out FILE] [bench options]``.

The same as ``ar-explorer bench``: sampling time (naive against cached) at batch 1, 16 and 256, scoring
latency of one image and training throughput of every model, as a table (or JSON with ``--json``). With
``--out FILE`` the JSON is also written to FILE. Options: ``ar-explorer bench --help``.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.cli.bench_command import format_table  # noqa: E402
from app.cli.main import main  # noqa: E402


def run(argv: list[str]) -> int:
    out = None
    if "--out" in argv:
        at = argv.index("--out")
        out = Path(argv[at + 1])
        del argv[at : at + 2]
    as_json = "--json" in argv
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        code = main(["bench", *[a for a in argv if a != "--json"], "--json"])
    if code:
        print(captured.getvalue())
        return code
    report = json.loads(captured.getvalue())
    print(json.dumps(report, indent=2) if as_json else format_table(report))
    if out is not None:
        out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"figures written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
