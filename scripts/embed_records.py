"""Copy each checkpoint's record (dataset, binarization, test NLL, training history) from its JSON into the
weights' own safetensors header, so that a copy of the ``.safetensors`` file alone keeps it.

``ar-explorer eval`` does this whenever it records a result; this script brings checkpoints recorded before
that up to date (the tensors' bytes are left as they are). Usage::

    python scripts/embed_records.py [FOLDER_OR_FILE ...]      # default: checkpoints/
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(paths: list[str]) -> int:
    from app.core.checkpoints import read_header, read_info, update_metadata

    targets: list[Path] = []
    for path in [Path(p) for p in paths] or [ROOT / "checkpoints"]:
        targets += sorted(path.glob("*.safetensors")) if path.is_dir() else [path]
    for weights in targets:
        if ".fisher-decoder" in weights.name or weights.name.endswith(".optim.safetensors"):
            continue
        info = read_info(weights)
        embedded = json.loads((read_header(weights).get("__metadata__") or {}).get("ar_explorer_record", "{}"))
        wanted = {k: v for k, v in info.meta.items() if k != "weights_sha256"}
        if embedded == wanted:
            print(f"{weights.name}: up to date")
            continue
        update_metadata(info, {})
        print(f"{weights.name}: record embedded (test NLL {info.test_nll_nats})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
