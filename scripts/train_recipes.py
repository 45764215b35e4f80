"""Train the shipped checkpoints from recipes, several at once on one GPU, then evaluate and shrink them.

Usage (on a GPU machine, from the repository root, no Qt needed)::

    python3 scripts/train_recipes.py scripts/recipes/*.json --data-dir DATA --parallel 6 [--only NAME ...]
        [--resume] [--time-scale 1.0] [--log-dir LOGS]

Each recipe is ``{"name", "model", "dataset", "hparams", "ordering", "epochs", "batch_size", "lr",
"max_minutes", "precision"}``; it runs as ``ar-explorer train ... --out checkpoints/NAME``. With ``--resume``,
a recipe whose checkpoint exists continues from it (the weights; the optimizer restarts unless its
``.optim.safetensors`` is there) when the checkpoint is the recipe's model, dataset and size; against a
checkpoint of another size (say, a smaller one trained on a CPU) a run afresh at the recipe's size trains
under ``runs/fresh/`` and takes the checkpoint's place only if its validation NLL is lower. Afterwards every trained checkpoint is evaluated on its test split (the NLL
is written into its JSON) and stored in float16 when that changes the test NLL by less than 0.01 nats.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def load_recipes(paths: list[str], only: list[str] | None) -> list[dict]:
    recipes = []
    for path in paths:
        for recipe in json.loads(Path(path).read_text()):
            if only and recipe["name"] not in only:
                continue
            recipes.append(recipe)
    return recipes


FRESH = ROOT / "runs" / "fresh"


def trains_aside(recipe: dict, args: argparse.Namespace) -> bool:
    """A run afresh beside a checkpoint it cannot continue trains aside, so as not to replace it by a worse one."""
    exists = (ROOT / "checkpoints" / f"{recipe['name']}.json").exists()
    return bool(args.resume) and exists and not resumable(recipe)[0]


def command_for(recipe: dict, args: argparse.Namespace) -> list[str]:
    out = (FRESH if trains_aside(recipe, args) else ROOT / "checkpoints") / recipe["name"]
    cmd = [
        sys.executable, "-m", "app.cli.main", "train",
        "--model", recipe["model"], "--dataset", recipe["dataset"],
        "--out", str(out), "--device", args.device, "--no-test",
        "--epochs", str(recipe.get("epochs", 1000)),
        "--batch-size", str(recipe.get("batch_size", 128)),
        "--lr", str(recipe.get("lr", 1e-3)),
        "--max-minutes", str(args.minutes or recipe.get("max_minutes", 3.0) * args.time_scale),
        "--precision", recipe.get("precision", "fp32"),
    ]
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    if recipe.get("ordering"):
        cmd += ["--ordering", recipe["ordering"]]
    for key, value in (recipe.get("hparams") or {}).items():
        cmd += ["--hparam", f"{key}={json.dumps(value)}"]
    for flag in recipe.get("extra_args", []):
        cmd.append(str(flag))
    if args.limit:
        cmd += ["--limit", str(args.limit), "--valid-limit", str(args.limit)]
    if args.resume and resumable(recipe)[0]:
        cmd.append("--resume")
    return cmd


def resumable(recipe: dict) -> tuple[bool, str]:
    """Whether the recipe's checkpoint can be continued: same model, dataset and hyperparameters."""
    meta_path = ROOT / "checkpoints" / f"{recipe['name']}.json"
    if not meta_path.exists():
        return False, "no checkpoint yet"
    meta = json.loads(meta_path.read_text())
    saved = (meta.get("config") or {}).get("hparams") or {}
    if meta.get("model") != recipe["model"] or meta.get("dataset") != recipe["dataset"]:
        return False, f"the checkpoint is {meta.get('model')} on {meta.get('dataset')}"
    differ = {k: (saved.get(k), v) for k, v in (recipe.get("hparams") or {}).items() if saved.get(k) != v}
    if differ:
        return False, "its size differs: " + ", ".join(f"{k} {a} -> {b}" for k, (a, b) in differ.items())
    return True, f"{meta.get('epochs', 0):.2f} epochs done"


def run_all(recipes: list[dict], args: argparse.Namespace) -> dict[str, int]:
    log_dir = Path(args.log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    pending = list(recipes)
    running: dict[str, tuple[subprocess.Popen, float]] = {}
    results: dict[str, int] = {}
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", OMP_NUM_THREADS=str(args.threads))
    while pending or running:
        while pending and len(running) < args.parallel:
            recipe = pending.pop(0)
            if args.resume:
                can, why = resumable(recipe)
                print(f"{recipe['name']}: {'resuming' if can else 'training afresh'} ({why})", flush=True)
            if trains_aside(recipe, args):  # a run afresh: what an earlier session left there is not continued
                for suffix in (".safetensors", ".json", ".optim.safetensors"):
                    (FRESH / f"{recipe['name']}{suffix}").unlink(missing_ok=True)
            log = open(log_dir / f"{recipe['name']}.log", "w")
            proc = subprocess.Popen(command_for(recipe, args), stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
            running[recipe["name"]] = (proc, time.time())
            print(f"started {recipe['name']}", flush=True)
        for name, (proc, started) in list(running.items()):
            if proc.poll() is not None:
                results[name] = proc.returncode
                print(f"finished {name}: exit {proc.returncode} after {time.time() - started:.0f} s", flush=True)
                del running[name]
        time.sleep(1.0)
    return results


def adopt_fresh(name: str) -> tuple[bool, str]:
    """Move a run afresh from ``runs/fresh`` over the shipped checkpoint if it validates lower; say what was done."""
    fresh, shipped = FRESH / f"{name}.json", ROOT / "checkpoints" / f"{name}.json"
    if not fresh.exists():
        return False, f"{name}: the run afresh wrote no checkpoint; the shipped one stays"
    new = json.loads(fresh.read_text()).get("valid_nll_nats", float("inf"))
    old = json.loads(shipped.read_text()).get("valid_nll_nats", float("inf")) if shipped.exists() else float("inf")
    if not new < old:
        return False, (f"{name}: the run afresh validates at {new:.2f} nats, the shipped checkpoint at {old:.2f}; "
                       "kept the shipped one")
    for suffix in (".safetensors", ".optim.safetensors", ".json"):  # the JSON last: it names the weights' hash
        if (FRESH / f"{name}{suffix}").exists():
            os.replace(FRESH / f"{name}{suffix}", ROOT / "checkpoints" / f"{name}{suffix}")
    return True, f"{name}: the run afresh validates at {new:.2f} nats (was {old:.2f}); it replaces the shipped checkpoint"


def finalize(names: list[str], args: argparse.Namespace) -> list[dict]:
    """Evaluate each checkpoint on its test split, record the NLL, and keep float16 weights where lossless.

    Whether float16 is lossless is decided on a seeded subset of 1,000 test images (the difference per image
    is tiny and systematic); the weights kept are then evaluated once on the whole split.
    """
    from app.core.checkpoints import save_checkpoint
    from app.core.session import Session

    session = Session(device=args.device, data_dir=args.data_dir)
    rows = []
    skip = {"format", "format_version", "model", "config", "weights_sha256", "weights_dtype", "num_parameters",
            "save_id"}
    for name in names:
        path = ROOT / "checkpoints" / f"{name}.safetensors"
        if not path.exists():
            rows.append({"name": name, "error": "no checkpoint written"})
            continue
        try:
            loaded = session.load(path)
            meta = dict(loaded.info.meta)
            dtype = "float16"
            if meta.get("weights_dtype") != "float16":
                probe = dict(split="test", limit=args.limit, record=False, subset=1000)
                full_precision = session.evaluate(loaded, **probe)["nll_nats"]
                tmp = path.with_name(f"{name}.half-candidate.safetensors")
                save_checkpoint(loaded.model, tmp, {k: v for k, v in meta.items() if k not in skip}, half=True)
                half = session.evaluate(session.load(tmp), **probe)["nll_nats"]
                if abs(half - full_precision) < 0.01:
                    os.replace(tmp, path)
                    os.replace(tmp.with_suffix(".json"), path.with_suffix(".json"))
                    loaded = session.load(path)
                else:
                    tmp.unlink()
                    tmp.with_suffix(".json").unlink()
                    dtype = "float32"
            full = session.evaluate(loaded, split="test", limit=args.limit)
            rows.append({"name": name, "model": loaded.model.spec.name, "dataset": full["dataset"],
                         "test_nll_nats": round(full["nll_nats"], 3), "stderr": round(full["nll_nats_stderr"], 3),
                         "bits_per_dim": round(full["bits_per_dim"], 5), "epochs": round(float(meta.get("epochs", 0)), 2),
                         "wall_time_s": round(float(meta.get("wall_time_s", 0)), 1), "weights": dtype,
                         "size_mb": round(path.stat().st_size / 2**20, 2)})
        except Exception as exc:  # report and go on with the others
            rows.append({"name": name, "error": f"{type(exc).__name__}: {exc}"})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("recipes", nargs="+")
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--parallel", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads per training process")
    parser.add_argument("--time-scale", type=float, default=1.0, help="multiplies each recipe's max_minutes")
    parser.add_argument("--minutes", type=float, default=0.0, help="every recipe's time budget (instead of its own)")
    parser.add_argument("--limit", type=int, default=0, help="train/validate/test on at most this many images (trials)")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--log-dir", default="runs/logs")
    parser.add_argument("--skip-train", action="store_true")
    args = parser.parse_args()
    recipes = load_recipes(args.recipes, args.only)
    if not args.skip_train:
        aside = [r["name"] for r in recipes if trains_aside(r, args)]
        results = run_all(recipes, args)
        print(json.dumps(results), flush=True)
        unchanged = set()
        for name in aside:
            adopted, message = adopt_fresh(name)
            print(message, flush=True)
            if not adopted:
                unchanged.add(name)
        recipes = [r for r in recipes if r["name"] not in unchanged]  # evaluated already
    rows = finalize([r["name"] for r in recipes], args)
    Path(args.log_dir).mkdir(parents=True, exist_ok=True)
    Path(args.log_dir, "summary.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
