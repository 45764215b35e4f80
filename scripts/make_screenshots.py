"""Make the README's screenshots of every shipped checkpoint with the app's own screenshot option.

Usage: ``QT_QPA_PLATFORM=offscreen python scripts/make_screenshots.py [--after SECONDS] [NAME ...]``.
Each checkpoint is opened in the view that shows it sampling (Sample; Stages for multiscale and hierarchy
models; the 1-D / 2-D demos for the toy models) and captured after ``--after`` seconds into
``assets/screenshots/models/NAME.png``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def view_for(model: str) -> str:
    if model in ("histogram", "dmol", "ar2d"):
        return "toy"
    if model in ("multiscale-pixelcnn", "colour-given-grey-pixelcnn"):
        return "stages"
    return "sample"


def main() -> int:
    from app.core.checkpoints import list_checkpoints
    from app.core.registry import Registry

    parser = argparse.ArgumentParser()
    parser.add_argument("names", nargs="*")
    parser.add_argument("--after", type=float, default=14.0)
    args = parser.parse_args()
    out_dir = ROOT / "assets" / "screenshots" / "models"
    out_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    for info in list_checkpoints(Registry()):
        if info.weights.parent != ROOT / "checkpoints" or (args.names and info.name not in args.names):
            continue
        target = out_dir / f"{info.name}.png"
        command = [sys.executable, "-m", "app.main", "--screenshot", str(target), "--view", view_for(info.model),
                   "--checkpoint", info.name, "--after", str(args.after)]
        result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
        status = "ok" if result.returncode == 0 and target.exists() else f"failed: {result.stderr.strip()[-300:]}"
        print(f"{info.name}: {status}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
