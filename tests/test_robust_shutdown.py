"""The app shuts down cleanly mid-work: stopping a worker aborts the forward pass under way at its next layer,
and closing the window during any long forward pass ends the process within a second or two, with exit
status 0 (it aborted with "QThread: Destroyed while thread is still running", exit 134)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from bad_inputs.make import SLOW_PLUGIN
from torch import nn

pytestmark = pytest.mark.skipif(importlib.util.find_spec("PySide6") is None, reason="needs PySide6")
ROOT = Path(__file__).resolve().parents[1]


class Sleepy(nn.Module):
    """A layer that takes a while."""

    def forward(self, x):
        time.sleep(0.2)
        return x + 1


def _qt_app():
    # A QApplication, not a bare QCoreApplication: the GUI tests that run later in this process need one.
    from PySide6.QtWidgets import QApplication

    return QApplication.instance() or QApplication([])


def test_stopping_a_worker_aborts_its_forward_pass_at_the_next_layer() -> None:
    from app.ui.workers import JobWorker, running_workers

    _qt_app()
    model = nn.Sequential(*[Sleepy() for _ in range(50)])  # 10 s in all
    started, results = threading.Event(), []
    worker = JobWorker()
    worker.done.connect(results.append)

    def job():
        started.set()
        with torch.no_grad():
            return model(torch.zeros(1))

    worker.submit(job)
    assert started.wait(10)
    time.sleep(0.3)
    begun = time.monotonic()
    assert worker.stop_and_wait(5000)
    assert time.monotonic() - begun < 1.0
    assert worker not in running_workers() and not results
    assert not torch.nn.modules.module._global_forward_pre_hooks, "the abort hook outlived the abort"
    # Work on other threads is never touched, during an abort or after it.
    assert float(model[:2](torch.zeros(1))) == 2.0


def _write_app_runner(folder: Path) -> Path:
    """A launcher that prints when the window closes, so that the time from closing to exiting is measured."""
    runner = folder / "run_app.py"
    runner.write_text(
        "import sys, time\n"
        "import app.ui.screenshot as shot\n"
        "close = shot.QtMainWindow.close\n"
        "def closing(self):\n"
        "    print(f'closing at {time.monotonic()}', file=sys.stderr, flush=True)\n"
        "    return close(self)\n"
        "shot.QtMainWindow.close = closing\n"
        "from app.main import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    return runner


@pytest.mark.slow
@pytest.mark.parametrize("hparams", [{"channels": 64, "layers": 60}, {"stall": 60.0}],
                         ids=["slow-layers", "one-long-call"])
def test_closing_the_app_during_a_long_forward_pass_exits_cleanly(hparams, tmp_path) -> None:
    from app.core.checkpoints import save_checkpoint

    (tmp_path / "slow_pixelcnn.py").write_text(SLOW_PLUGIN)
    sys.path.insert(0, str(tmp_path))
    try:
        import slow_pixelcnn

        model = slow_pixelcnn.SPEC.create(slow_pixelcnn.SPEC.make_config((1, 28, 28), 2, hparams))
        checkpoint = save_checkpoint(model, tmp_path / "slow", {"dataset": "synthetic-digits"}).weights
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("slow_pixelcnn", None)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", AR_EXPLORER_PLUGINS="slow_pixelcnn",
               PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]), AR_EXPLORER_SETTINGS=str(tmp_path / "ui.ini"))
    argv = [sys.executable, str(_write_app_runner(tmp_path)), "--screenshot", str(tmp_path / "shot.png"),
            "--view", "sample", "--after", "2", "--checkpoint", str(checkpoint), "--device", "cpu"]
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    ended = time.monotonic()
    assert result.returncode == 0, result.stderr[-2000:]
    assert "QThread" not in result.stderr and "Traceback" not in result.stderr
    closing = [line for line in result.stderr.splitlines() if line.startswith("closing at ")]
    assert closing, result.stderr[-2000:]
    # From the window's close to the end of the process (interpreter shutdown included, on a busy machine):
    # it waited for the whole forward pass before, and aborted.
    assert ended - float(closing[-1].split()[-1]) < 6.0
    assert (tmp_path / "shot.png").stat().st_size > 0
