"""How the app behaves while a sampling run is on screen: repaint rate and event-loop latency (offscreen Qt).

``python benchmarks/app_responsiveness.py [--checkpoint NAME] [--modes cached,naive] [--n 16] [--seconds 10]
[--device cpu] [--json]``

For each sampling mode the Sample view runs to the end (or for ``--seconds``) at full speed while a 10 ms
timer measures how late the event loop serves it (what a user feels as lag), and the view's repaints are
counted (the view polls the worker's latest frame at display rate; it must neither stall nor flood). Skips
cleanly (exit status 0, one line) where PySide6 or the app's UI is not installed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def _skip(reason: str, as_json: bool) -> int:
    print(json.dumps({"skipped": reason}) if as_json else f"skipped: {reason}")
    return 0


def measure(window, view, mode: str, n: int, seconds: float) -> dict:
    """Run the Sample view in ``mode`` and measure the event loop while it runs."""
    from PySide6.QtCore import QElapsedTimer, QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    controls = view.controls
    index = controls.mode.findData(mode)
    if index < 0:
        return {"mode": mode, "skipped": f"the model has no {mode!r} sampler"}
    controls.mode.setCurrentIndex(index)
    controls.count.setValue(n)
    controls.settings_changed.emit()
    for _ in range(5):  # let the view take the settings in before the run starts
        app.processEvents()
    repaints: list[float] = []
    original = view._render

    def counting(frame, *args, **kwargs):
        repaints.append(time.perf_counter())
        return original(frame, *args, **kwargs)

    view._render = counting
    lateness: list[float] = []
    clock = QElapsedTimer()
    probe = QTimer()
    probe.setInterval(10)

    def tick() -> None:
        lateness.append(max(0.0, clock.restart() - 10.0))

    probe.timeout.connect(tick)
    clock.start()
    probe.start()
    start = time.perf_counter()
    view.run_to_end()
    while time.perf_counter() - start < seconds and view.worker is not None and not view.worker.completed:
        app.processEvents()
        time.sleep(0.001)
    worker = view.worker
    elapsed = time.perf_counter() - start
    latest = worker.latest if worker is not None else None
    steps = latest.step.index + 1 if latest is not None else 0
    total = latest.step.total if latest is not None else 0
    view.stop()
    probe.stop()
    view._render = original
    for _ in range(5):
        app.processEvents()
    gaps = sorted(lateness)
    return {
        "mode": mode,
        "images": n,
        "steps_done": steps,
        "steps_total": total,
        "finished": bool(worker is not None and worker.completed),
        "seconds": elapsed,
        "steps_per_s": steps / elapsed if elapsed else 0.0,
        "repaints_per_s": len(repaints) / elapsed if elapsed else 0.0,
        "event_loop_lateness_ms": {
            "median": statistics.median(gaps) if gaps else None,
            "p95": gaps[int(0.95 * (len(gaps) - 1))] if gaps else None,
            "max": gaps[-1] if gaps else None,
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="default: the app's default checkpoint")
    parser.add_argument("--modes", default="cached,naive")
    parser.add_argument("--n", type=int, default=16, help="images per run")
    parser.add_argument("--seconds", type=float, default=10.0, help="longest run per mode")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    try:
        import PySide6  # noqa: F401

        from app.ui.launch import application, build
        from app.ui.preferences import Preferences
    except ImportError as exc:
        return _skip(f"the app's UI is not available here ({exc})", args.json)
    application()
    preferences = Preferences(Path(tempfile.mkdtemp()) / "ui.ini")
    namespace = argparse.Namespace(checkpoint=args.checkpoint, device=args.device, scale=None, screenshot=None,
                                   strict_plugins=False)
    window, context = build(namespace, preferences)
    window.resize(1280, 800)
    window.show()
    view = window.show_view("sample")
    if view is None or context.loaded is None:
        window.close()
        return _skip("no Sample view or no checkpoint to sample from", args.json)
    report = {"checkpoint": context.loaded.name, "device": args.device, "runs": []}
    for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
        report["runs"].append(measure(window, view, mode, args.n, args.seconds))
    window.close()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{report['checkpoint']} on {args.device}, {args.n} images per run")
        for run in report["runs"]:
            if "skipped" in run:
                print(f"  {run['mode']:<8} skipped: {run['skipped']}")
                continue
            late = run["event_loop_lateness_ms"]
            print(f"  {run['mode']:<8} {run['steps_done']}/{run['steps_total']} steps in {run['seconds']:.1f} s "
                  f"({run['steps_per_s']:.0f} steps/s), {run['repaints_per_s']:.0f} repaints/s, event loop late by "
                  f"{late['median']:.1f} ms median, {late['p95']:.1f} ms p95, {late['max']:.1f} ms max")
    return 0


if __name__ == "__main__":
    sys.exit(main())
