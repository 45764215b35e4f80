"""Print the README's table of shipped checkpoints from their JSON records (the numbers `eval` measured).

Usage: ``python scripts/model_table.py`` (from the repository root).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "assets" / "screenshots" / "models"  # made by scripts/make_screenshots.py
sys.path.insert(0, str(ROOT))

from app.core.checkpoints import list_checkpoints  # noqa: E402
from app.core.registry import Registry  # noqa: E402


def trained_how(meta: dict) -> str:
    device = str(meta.get("device", "?"))
    where = "H200 GPU" if "H200" in device else ("CPU" if device.startswith("CPU") else device)
    minutes = float(meta.get("wall_time_s", 0)) / 60
    epochs = float(meta.get("epochs", 0))
    return f"{where}, {minutes:.1f} min to the best epoch ({epochs:.1f} epochs)"


def main() -> int:
    registry = Registry()
    rows = []
    for info in sorted(list_checkpoints(registry), key=lambda c: (c.dataset, c.model, c.name)):
        if info.weights.parent != ROOT / "checkpoints":
            continue
        meta = info.meta
        spec = registry.models.get(info.model)
        title = spec.title if spec else info.model
        paper = spec.paper_nll if spec and spec.paper_nll else ""
        nll = meta.get("test_nll_nats")
        if nll is None:
            result = "not evaluated"
        else:
            result = f"{nll:.2f} ± {meta.get('test_nll_stderr', float('nan')):.2f} ({meta.get('test_bits_per_dim', float('nan')):.4f})"
        ordering = ""
        config_ordering = (meta.get("config") or {}).get("ordering")
        if spec is not None and spec.orderings == "build" and config_ordering:
            ordering = f", {config_ordering.get('name', 'custom')} order"
        masks = int(((meta.get("config") or {}).get("hparams") or {}).get("num_masks", 1))
        if masks > 1:
            ordering += f", {masks} masks"
        params = meta.get("num_parameters", 0)
        title = title.replace("|", "\\|")  # a '|' inside a cell would split the Markdown table
        shot = SCREENSHOTS / f"{info.name}.png"
        seen = f"[screenshot]({shot.relative_to(ROOT).as_posix()})" if shot.is_file() else ""
        rows.append(
            f"| `{info.name}` | {title}{ordering} | `{info.dataset}` | {result} | {paper} | {params / 1e6:.2f} M | {trained_how(meta)} | {seen} |"
        )
    print("| checkpoint | model | dataset | test NLL, nats/image (bits/dim) | paper | parameters | trained | in the app |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
