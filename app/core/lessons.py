"""The lessons of the lecture, each measured on checkpoints: does every demo show what it is there to show?

Each lesson is a figure, a target and a verdict. Figures come from two sources:

* **samples**, drawn here with fixed seeds (documented in each result) and read by the digit classifier
  (:mod:`app.core.classifier`): the class-conditional model draws the digit asked for, super-resolution keeps
  the digit of its 7x7 condition, multiscale samples read as digits, the colour stage agrees with its grey one;
* **test NLLs recorded by** ``ar-explorer eval`` on a checkpoint's full test split, accepted only where the
  record describes the weights on disk (its SHA-256): orderings reach about the same NLL, each model reaches
  the quality a lecture needs. Re-measuring them all would take an hour on a CPU; ``eval`` does it per model.

A lesson that cannot be measured (no such checkpoint, no recorded NLL, no test data) fails, with the reason:
a lecturer running this before class must not read a missing figure as a pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from app.core.checkpoints import CheckpointInfo
from app.core.classifier import DigitClassifier, classify
from app.core.conditions import derive_condition
from app.core.errors import ARExplorerError
from app.core.sampling import sample
from app.core.scoring import score

#: The five orderings of the lecture's masked-attention demo.
LECTURE_ORDERINGS = ("random", "even-then-odd", "raster", "columns", "top-bottom-to-middle")
#: The seed of every sample drawn here (the k-th lesson that samples adds nothing to it: each is its own run).
SEED = 0


@dataclass
class LessonResult:
    """One line of the report."""

    lesson: str
    checkpoints: list[str]
    figure: str
    target: str
    passed: bool
    detail: str = ""
    value: float | None = None
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class LessonContext:
    """What the lessons measure with: the session (registry, device, data), the classifier, the checkpoints."""

    session: object  # app.core.session.Session (not imported: the session imports much of the core)
    classifier: DigitClassifier | None
    checkpoints: list[CheckpointInfo]
    samples_per_label: int = 10
    superres_images: int = 100
    multiscale_samples: int = 32
    hierarchy_samples: int = 8
    progress: Callable[[str], None] = lambda message: None
    only: frozenset[str] = frozenset()  # checkpoint names to report on (empty: all)

    def wanted(self, *names: str) -> bool:
        """Whether a lesson over these checkpoints is asked for."""
        return not self.only or bool(self.only & set(names))

    def by_model(self, *names: str, dataset: str | None = None) -> list[CheckpointInfo]:
        return [c for c in self.checkpoints if c.model in names and (dataset is None or c.dataset == dataset)]

    def by_condition(self, kind: str, derive: str | None = None) -> list[CheckpointInfo]:
        out = []
        for info in self.checkpoints:
            condition = ((info.meta.get("config") or {}).get("condition")) or {}
            if condition.get("kind") == kind and (derive is None or condition.get("derive") == derive):
                out.append(info)
        return out


# -- recorded test NLLs -------------------------------------------------------------------------------------------


def recorded_test_nll(info: CheckpointInfo) -> tuple[float | None, str]:
    """The test NLL ``eval`` recorded on the full test split (nats per image), or None and why not."""
    nll = info.meta.get("test_nll_nats")
    if nll is None or not isinstance(nll, (int, float)) or not math.isfinite(float(nll)):
        return None, f"{info.name} has no recorded test NLL (run: ar-explorer eval --checkpoint {info.name})"
    return float(nll), ""


def _ordering_name(info: CheckpointInfo) -> str:
    name = str(((info.meta.get("config") or {}).get("ordering") or {}).get("name") or "raster")
    for preset in LECTURE_ORDERINGS:
        if name == preset or name.startswith(preset + "-"):
            return preset
    return name


def _num_dims(info: CheckpointInfo) -> int:
    shape = (info.meta.get("config") or {}).get("shape") or [1, 28, 28]
    return int(np.prod(shape))


def orderings_lesson(ctx: LessonContext, model: str, title: str, ceiling: float | None, spread: float = 4.0) -> LessonResult:
    """The lecture's point about orderings: each reaches about the same NLL (within ``spread`` nats)."""
    found: dict[str, CheckpointInfo] = {}
    for info in ctx.by_model(model, dataset="binarized-mnist"):
        hparams = (info.meta.get("config") or {}).get("hparams") or {}
        if int(hparams.get("num_masks", 1)) != 1:
            continue  # an ensemble is another model, not another ordering
        order = _ordering_name(info)
        if order in LECTURE_ORDERINGS and order not in found:
            found[order] = info
    target = f"each <= {ceiling:g} nats, within {spread:g} of each other" if ceiling else f"within {spread:g} nats of each other"
    missing = [o for o in LECTURE_ORDERINGS if o not in found]
    names = [found[o].name for o in LECTURE_ORDERINGS if o in found]
    if missing:
        return LessonResult(f"Orderings: {title}", names, "not measured", target, False,
                            f"no {model} checkpoint on binarized-mnist for: {', '.join(missing)}")
    nlls, problems = {}, []
    for order, info in found.items():
        nll, why = recorded_test_nll(info)
        if nll is None:
            problems.append(why)
        else:
            nlls[order] = nll
    if problems:
        return LessonResult(f"Orderings: {title}", names, "not measured", target, False, "; ".join(problems))
    low, high = min(nlls.values()), max(nlls.values())
    passed = high - low <= spread and (ceiling is None or high <= ceiling)
    figure = f"{low:.1f} to {high:.1f} nats (spread {high - low:.1f})"
    detail = ", ".join(f"{o} {nlls[o]:.1f}" for o in LECTURE_ORDERINGS) + " nats/image, binarized-mnist test (recorded by eval)"
    return LessonResult(f"Orderings: {title}", names, figure, target, passed, detail, high - low, {"nll_nats": nlls})


#: Model quality: (lesson, model names, dataset, ceiling, unit) with unit "nats" or "bits/dim".
QUALITY_TARGETS = (
    ("Quality: masked attention (raster)", ("attention",), "binarized-mnist", 85.0, "nats", "raster"),
    ("Quality: PixelSNAIL", ("pixelsnail",), "binarized-mnist", 81.0, "nats", None),
    ("Quality: WaveNet", ("wavenet", "wavenet-location"), "binarized-mnist", 82.0, "nats", None),
    ("Quality: RNN", ("rnn", "rnn-location"), "binarized-mnist", 88.0, "nats", None),
    ("Quality: PixelCNN++", ("pixelcnn++",), "mnist", 1.0, "bits/dim", None),
)


def quality_lessons(ctx: LessonContext) -> list[LessonResult]:
    out = []
    for lesson, models, dataset, ceiling, unit, ordering in QUALITY_TARGETS:
        infos = [i for i in ctx.by_model(*models, dataset=dataset) if ordering is None or _ordering_name(i) == ordering]
        target = f"<= {ceiling:g} {'nats/image' if unit == 'nats' else unit} on {dataset} test"
        if not infos:
            out.append(LessonResult(lesson, [], "not measured", target, False, f"no {'/'.join(models)} checkpoint on {dataset}"))
            continue
        for info in infos:
            nll, why = recorded_test_nll(info)
            if nll is None:
                out.append(LessonResult(lesson, [info.name], "not measured", target, False, why))
                continue
            bpd = nll / (_num_dims(info) * math.log(2))
            value = nll if unit == "nats" else bpd
            figure = f"{nll:.2f} nats ({bpd:.4f} bits/dim)"
            out.append(LessonResult(lesson, [info.name], figure, target, value <= ceiling,
                                    f"{dataset} test split, recorded by eval", value))
    return out


# -- samples read by the classifier ---------------------------------------------------------------------------------


def _need_classifier(ctx: LessonContext) -> None:
    if ctx.classifier is None:
        raise ARExplorerError("these lessons need the digit classifier (checkpoints/measuring/)")


def class_conditional_lesson(ctx: LessonContext, info: CheckpointInfo, target: float = 0.9) -> LessonResult:
    """``samples_per_label`` samples of each label at T = 1, seed ``SEED``: how many read as their label?"""
    _need_classifier(ctx)
    loaded = ctx.session.load(info.weights)
    model = loaded.model
    classes = int(model.config.condition.num_classes)
    n = ctx.samples_per_label
    labels = np.repeat(np.arange(classes), n)
    ctx.progress(f"sampling {len(labels)} images from {info.name}")
    cond = torch.as_tensor(labels, dtype=torch.long, device=model.device)
    images = sample(model, len(labels), temperature=1.0, seed=SEED, cond=cond).cpu().numpy()
    read = classify(ctx.classifier, images, model.num_values)
    agree = read.labels == labels
    per_label = {int(k): float(agree[labels == k].mean()) for k in range(classes)}
    rate = float(agree.mean())
    worst = min(per_label, key=per_label.get)
    detail = (f"{n} samples of each label 0-{classes - 1}, T = 1, seed {SEED}; weakest label {worst} "
              f"({100 * per_label[worst]:.0f}%)")
    return LessonResult("Class-conditional: draws the digit asked for", [info.name],
                        f"{100 * rate:.0f}% read as their label", f">= {100 * target:.0f}%", rate >= target, detail,
                        rate, {"per_label": per_label})


def superres_lesson(ctx: LessonContext, info: CheckpointInfo, target: float = 0.9) -> LessonResult:
    """One sample per condition derived from ``superres_images`` seeded random test digits: same digit?"""
    _need_classifier(ctx)
    title = "Super-resolution: keeps the digit of its 7x7"
    loaded = ctx.session.load(info.weights)
    model, dataset = loaded.model, loaded.dataset
    if dataset is None or not dataset.has_labels:
        return LessonResult(title, [info.name], "not measured", f">= {100 * target:.0f}%", False,
                            f"{info.name} was trained on {info.dataset}, which has no labels to check against")
    try:
        test = ctx.session.split(dataset, "test")
    except ARExplorerError as exc:
        return LessonResult(title, [info.name], "not measured", f">= {100 * target:.0f}%", False, str(exc))
    pick = np.sort(np.random.default_rng(SEED).choice(len(test.images), min(ctx.superres_images, len(test.images)), replace=False))
    x = torch.as_tensor(test.images[pick], dtype=torch.float32)
    cond = derive_condition(model.config.condition, x, None, model.num_values).to(model.device)
    ctx.progress(f"sampling {len(pick)} images from {info.name}")
    images = sample(model, len(pick), temperature=1.0, seed=SEED, cond=cond).cpu().numpy()
    read = classify(ctx.classifier, images, model.num_values)
    rate = float((read.labels == test.labels[pick]).mean())
    again = derive_condition(model.config.condition, torch.as_tensor(images, dtype=torch.float32), None, model.num_values)
    miss = float((again.cpu() - cond.cpu()).abs().float().mean())
    detail = (f"{len(pick)} seeded random {dataset.name} test digits (seed {SEED}), one sample each at T = 1; the "
              f"samples, downsampled again, miss their 7x7 by {miss:.2f} on-pixels per block on average")
    return LessonResult(title, [info.name], f"{100 * rate:.0f}% keep the digit", f">= {100 * target:.0f}%",
                        rate >= target, detail, rate, {"block_miss": miss})


def multiscale_lesson(ctx: LessonContext, info: CheckpointInfo, within: float = 0.10,
                      confident: float = 0.9, share: float = 0.8) -> list[LessonResult]:
    """NLL within ``within`` of a Gated PixelCNN on the same data, and samples that read as digits."""
    out = []
    target = f"<= {100 * (1 + within):.0f}% of the Gated PixelCNN's on {info.dataset}"
    nll, why = recorded_test_nll(info)
    references = [r for r in ctx.by_model("gated-pixelcnn", dataset=info.dataset) if recorded_test_nll(r)[0] is not None]
    if nll is None:
        out.append(LessonResult("Multiscale: NLL close to Gated PixelCNN", [info.name], "not measured", target, False, why))
    elif not references:
        out.append(LessonResult("Multiscale: NLL close to Gated PixelCNN", [info.name], "not measured", target, False,
                                f"no Gated PixelCNN checkpoint on {info.dataset} to compare with"))
    else:
        ref = min(references, key=lambda r: recorded_test_nll(r)[0])
        ref_nll = recorded_test_nll(ref)[0]
        ratio = nll / ref_nll
        out.append(LessonResult("Multiscale: NLL close to Gated PixelCNN", [info.name, ref.name],
                                f"{nll:.2f} vs {ref_nll:.2f} nats ({100 * ratio:.0f}%)", target,
                                ratio <= 1 + within, f"{info.dataset} test split, recorded by eval", ratio))
    _need_classifier(ctx)
    loaded = ctx.session.load(info.weights)
    model = loaded.model
    ctx.progress(f"sampling {ctx.multiscale_samples} images from {info.name}")
    images = sample(model, ctx.multiscale_samples, temperature=1.0, seed=SEED).cpu().numpy()
    read = classify(ctx.classifier, images, model.num_values)
    rate = float((read.confidence >= confident).mean())
    out.append(LessonResult("Multiscale: samples read as digits", [info.name],
                            f"{100 * rate:.0f}% read with p >= {confident:g}", f">= {100 * share:.0f}%", rate >= share,
                            f"{ctx.multiscale_samples} samples, T = 1, seed {SEED}; the classifier's confidence in its "
                            f"reading (mean {read.confidence.mean():.2f})", rate))
    return out


def hierarchy_lesson(ctx: LessonContext, info: CheckpointInfo) -> LessonResult:
    """The colour stage, given sampled grey images, draws colour images whose grey is exactly that image."""
    title = "Hierarchy: colour agrees with its grey stage"
    spec = ((info.meta.get("config") or {}).get("condition")) or {}
    grey_dataset = f"{info.dataset}-grey"
    greys = [g for g in ctx.checkpoints if g.dataset == grey_dataset]
    if not greys:
        return LessonResult(title, [info.name], "not measured", "100% agree, NLLs add up", False,
                            f"no grey-stage checkpoint trained on {grey_dataset}")
    grey_info = greys[0]
    colour = ctx.session.load(info.weights).model
    grey = ctx.session.load(grey_info.weights).model
    n = ctx.hierarchy_samples
    ctx.progress(f"sampling {n} grey images from {grey_info.name}, then their colours from {info.name}")
    grey_images = sample(grey, n, temperature=1.0, seed=SEED)
    cond = grey_images.to(colour.device).float()
    colour_images = sample(colour, n, temperature=1.0, seed=SEED + 1, cond=cond)
    condition = colour.config.condition
    again = derive_condition(condition, colour_images.float(), None, colour.num_values)
    agree = float((again.cpu().round() == cond.cpu().round()).flatten(1).all(1).float().mean())
    grey_nll = score(grey, grey_images.cpu().numpy()).nll_nats
    colour_nll = score(colour, colour_images.cpu().numpy(), cond).nll_nats
    total = grey_nll + colour_nll
    figure = f"{100 * agree:.0f}% agree; {grey_nll.mean():.1f} + {colour_nll.mean():.1f} = {total.mean():.1f} nats"
    detail = (f"{n} samples (seeds {SEED}, {SEED + 1}); condition '{spec.get('derive')}'; the colour stage gives no "
              f"mass to colours of another grey, so the two NLLs add up to the exact NLL per colour image")
    return LessonResult(title, [grey_info.name, info.name], figure, "100% agree", agree == 1.0, detail, agree)


# -- all of them ---------------------------------------------------------------------------------------------------


def run_lessons(ctx: LessonContext) -> Iterable[LessonResult]:
    """Every lesson, in the lecture's order (one result per line); with ``ctx.only``, those that involve the
    checkpoints named there (a lesson that samples is only run if it is asked for)."""

    def missing(lesson: str, target: str, why: str) -> Iterable[LessonResult]:
        if not ctx.only:
            yield LessonResult(lesson, [], "not measured", target, False, why)

    def sampled(infos: list[CheckpointInfo], run, lesson: str, target: str, why: str) -> Iterable[LessonResult]:
        if not infos:
            yield from missing(lesson, target, why)
        for info in infos:
            if ctx.wanted(info.name):
                result = run(ctx, info)
                yield from (result if isinstance(result, list) else [result])

    yield from sampled(ctx.by_condition("class"), class_conditional_lesson,
                       "Class-conditional: draws the digit asked for", ">= 90%", "no class-conditional checkpoint")
    yield from sampled(ctx.by_condition("image", "downsample"), superres_lesson,
                       "Super-resolution: keeps the digit of its 7x7", ">= 90%", "no super-resolution checkpoint")
    cheap = [orderings_lesson(ctx, "attention", "masked attention, five orderings", 88.0),
             orderings_lesson(ctx, "made", "MADE, five orderings", None), *quality_lessons(ctx)]
    yield from (r for r in cheap if ctx.wanted(*r.checkpoints) or (not ctx.only))
    yield from sampled([c for c in ctx.by_model("multiscale-pixelcnn") if _num_dims(c) == 784], multiscale_lesson,
                       "Multiscale: NLL close to Gated PixelCNN", "<= 110%", "no 28x28 multiscale checkpoint")
    yield from sampled(ctx.by_condition("image", "grey"), hierarchy_lesson,
                       "Hierarchy: colour agrees with its grey stage", "100% agree", "no colour-stage checkpoint")


__all__ = ["LessonResult", "LessonContext", "run_lessons", "LECTURE_ORDERINGS", "SEED", "QUALITY_TARGETS"]
