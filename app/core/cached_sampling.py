"""Cached sampling: the programs, engines and sampler behind the sampler mode ``cached``.

Naive sampling re-runs the whole network for every pixel. But in raster order, every layer's activation at a
position depends only on pixels before it, so once the pixels before position p are drawn, every layer's
activation *at p* is final and never changes again (Ramachandran et al., 2017, "Fast Generation for
Convolutional Autoregressive Models"; the idea of Fast WaveNet). A cached program keeps every layer's
activations and, at each step, computes only the new position. Programs come from two places:

* a model that declares its network as a :class:`~app.core.cache_program.CacheProgram` of the core's masked
  layers (:meth:`ARModel.cache_program <app.core.model.ARModel.cache_program>`) runs on the engine of
  :mod:`app.core.cached_engine`, with no code of its own for caching (PixelCNN does, and so may a plugin);
* a family whose network the engine does not cover registers a hand-written :class:`CachedProgram`
  (:func:`register_family`): Gated PixelCNN's row-wise program.

The conditionals are those of the naive sampler up to float rounding, so with the same seed (one uniform per
dimension, drawn by the inverse CDF) both draw the same images.

Every position-dependent index is a small tensor on the model's device, advanced by the step itself, so the
per-step update has no host synchronisation and no Python integer that changes from step to step. Engines
(``AR_EXPLORER_CACHED_ENGINE``, default ``auto``):

* ``eager``: the update as PyTorch operations, one by one (the CPU and MPS always use it);
* ``graph`` (``auto`` on CUDA): a whole image row of steps captured once as a CUDA graph per model and batch
  size, then replayed for every row;
* ``compile``: the step and the row update compiled by ``torch.compile`` (fused element-wise kernels), then
  captured as ``graph``;
* ``triton``: all of a step in one fused kernel, for a program that has one (:meth:`CachedProgram.fused_row`:
  the binary Gated PixelCNN's), captured as ``graph``; other programs fall back to ``graph``.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from app.core.cached_engine import CachedProgram, LayerProgram
from app.core.errors import ModelError
from app.core.orderings import Ordering
from app.core.samplers import NaiveSampler, Sampler

if TYPE_CHECKING:
    from app.core.model import ARModel

ENGINES = ("auto", "eager", "graph", "compile", "triton")
ENGINE_VARIABLE = "AR_EXPLORER_CACHED_ENGINE"


def default_engine() -> str:
    """The engine named by ``AR_EXPLORER_CACHED_ENGINE`` (``auto`` unless set)."""
    name = os.environ.get(ENGINE_VARIABLE, "auto").strip().lower() or "auto"
    if name not in ENGINES:
        raise ModelError(f"{ENGINE_VARIABLE}={name!r}: choose one of {', '.join(ENGINES)}")
    return name


def resolve_engine(engine: str, device: torch.device) -> str:
    """``auto`` is ``graph`` on CUDA and ``eager`` elsewhere; graph engines fall back to eager off CUDA."""
    if engine not in ENGINES:
        raise ModelError(f"unknown cached-sampling engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if device.type != "cuda":
        return "eager"
    return "graph" if engine == "auto" else engine


#: The families the cached programs know, each a model class and the program that runs it, in the order they
#: registered. Each family's own module registers it (:func:`register_family`), so that this engine never
#: imports the models it serves.
_FAMILIES: list[tuple[type[ARModel], type[CachedProgram]]] = []


def register_family(family: type[ARModel], program: type[CachedProgram]) -> None:
    """Run the models of ``family`` (and its subclasses that keep its forward pass) with ``program``."""
    if all(known is not family for known, _ in _FAMILIES):
        _FAMILIES.append((family, program))


def _family_of(model: ARModel) -> tuple[type[ARModel], type[CachedProgram]] | None:
    # The most derived family first, should one family subclass another.
    matches = [(family, program) for family, program in _FAMILIES if isinstance(model, family)]
    return max(matches, key=lambda match: len(match[0].__mro__), default=None)


def build_program(model: ARModel, batch: int, canvas: Tensor | None = None) -> CachedProgram:
    """The cached program of ``model`` for ``batch`` images (on ``canvas``, if given): the engine's run of
    the model's declared :meth:`~app.core.model.ARModel.cache_program`, else its family's program."""
    declared = model.cache_program()
    found = None if declared is not None else _family_of(model)
    if declared is None and found is None:
        raise ModelError(f"no cached sampler for {type(model).__name__}")
    with torch.inference_mode(False), torch.no_grad():
        if declared is not None:
            return LayerProgram(model, batch, canvas, declared)
        return found[1](model, batch, canvas)


def supports_cached(model: ARModel) -> bool:
    """Whether ``model`` declares a cache program, or is one of the registered families with its forward pass.

    A subclass that changes ``forward`` (another conditioning, another layer) is not: it samples naively.
    A Gated PixelCNN subclass may still opt in by defining ``condition_features(cond, (H, W))``, with the
    promise that its forward pass is the Gated PixelCNN's given those features as the condition (each layer's
    ``class_bias`` maps them to a bias, per image or per position: an image condition, super-resolution).
    """
    if model.cache_program() is not None:
        return True
    found = _family_of(model)
    if found is None:
        return False
    family, program = found
    spatial = program.spatial_conditions and callable(getattr(model, "condition_features", None))
    return type(model).forward is family.forward or spatial


# -- engines: how the per-row update is run ----------------------------------------------------------------------

_SHARED: weakref.WeakKeyDictionary[ARModel, OrderedDict[tuple, CachedProgram]] = weakref.WeakKeyDictionary()
_SHARED_LOCK = threading.Lock()
#: How many programs (batch sizes) a model keeps, and captured graphs (temperatures) a program keeps: each
#: holds device memory, and a temperature slider or a changing batch size must not pile them up.
KEEP_PROGRAMS = 4
KEEP_GRAPHS = 4


def shared_program(model: ARModel, batch: int) -> CachedProgram:
    """The program kept with ``model`` for ``batch`` images (CUDA graphs are captured once, then replayed)."""
    key = (batch, str(model.device), model._dtype())
    with _SHARED_LOCK:
        programs = _SHARED.setdefault(model, OrderedDict())
        if key not in programs:
            programs[key] = build_program(model, batch)
            while len(programs) > KEEP_PROGRAMS:
                programs.popitem(last=False)
        programs.move_to_end(key)
        return programs[key]


def _row_function(program: CachedProgram, engine: str, temperature: float, with_known: bool) -> Callable[[], None]:
    """The function that runs one row: eager, or replaying a CUDA graph captured on first use."""
    if engine == "eager":
        return lambda: program.run_row(temperature, with_known)
    if engine == "triton" and (with_known or not program.fused_supported()):
        engine = "graph"  # what the fused step does not cover
    key = (engine, temperature, with_known)
    graph = program.graphs.get(key)
    if graph is not None:
        program.graphs.move_to_end(key)
    else:
        if engine == "compile":
            row = _compiled_row(program, temperature, with_known)
        elif engine == "triton":
            row = program.fused_row(temperature)
        else:
            row = lambda: program.run_row(temperature, with_known)  # noqa: E731
        graph = _capture(program, row)
        program.graphs[key] = graph
        while len(program.graphs) > KEEP_GRAPHS:
            program.graphs.popitem(last=False)
    return graph.replay


def _compiled_row(program: CachedProgram, temperature: float, with_known: bool) -> Callable[[], None]:
    """A row whose step and row update are compiled by ``torch.compile`` (fused kernels, no graph breaks)."""
    step = torch.compile(lambda: program.draw_step(temperature, with_known), dynamic=False, fullgraph=True)
    update = torch.compile(program.row_update, dynamic=False, fullgraph=True)

    def row() -> None:
        update()
        for _ in range(program.steps_per_row):
            step()

    return row


def _capture(program: CachedProgram, row: Callable[[], None]) -> torch.cuda.CUDAGraph:
    """Warm ``row`` up on a side stream (compiling it if needed), then capture it as a CUDA graph.

    The warm-up runs two rows: the caller resets the program afterwards.
    """
    stream = torch.cuda.Stream(device=program.device)
    stream.wait_stream(torch.cuda.current_stream(program.device))
    with torch.cuda.stream(stream):
        for _ in range(2):
            row()
    torch.cuda.current_stream(program.device).wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        row()
    return graph


# -- the sampler -----------------------------------------------------------------------------------------------


class CachedSampler(Sampler):
    """The cached sampler of a model with a cache program (see the module's docstring).

    Step by step (:meth:`probs`, :meth:`commit`: the live view) it runs eagerly on its own caches.
    :meth:`sample_to_end` (headless sampling) runs whole rows with ``engine``: ``eager``, or on CUDA
    ``graph`` (a CUDA graph per row, captured once per model and batch size) or ``compile``.
    """

    def __init__(
        self,
        model: ARModel,
        x: Tensor,
        cond: Tensor | None = None,
        ordering: Ordering | None = None,
        engine: str | None = None,
    ) -> None:
        super().__init__(model, x, cond, ordering)
        if not self.ordering.is_raster():
            raise ModelError("cached sampling follows the raster order")
        self.engine = resolve_engine(engine or default_engine(), model.device)
        self._program: CachedProgram | None = None
        self._next = 0  # the first step whose activations are not computed yet

    def _own_program(self) -> CachedProgram:
        if self._program is None:
            self._program = build_program(self.model, self.x.shape[0], self.x)
            self._program.reset(self.x, self.cond)
        return self._program

    def probs(self, step: int) -> Tensor:
        program = self._own_program()
        if step + 1 < self._next:
            raise ModelError("the cached sampler only goes forward; start a new run to go back")
        for index in range(min(self._next, step), step + 1):
            program.step.fill_(index)
            if index % program.steps_per_row == 0:
                program.row_update()
            probs = program.compute()
        self._next = step + 1
        self.network_calls += 1
        return probs

    def commit(self, step: int, values: Tensor) -> None:
        program = self._own_program()
        program.step.fill_(step)
        program.commit(values.reshape(values.shape[0], 1))

    def sample_to_end(
        self, uniforms: Tensor, temperature: float, known: Tensor | None = None, known_values: Tensor | None = None
    ) -> None:
        """Draw every step with ``uniforms`` ``(B, D)`` (one per dimension, inverse CDF), writing ``self.x``.

        Equivalent to running :meth:`probs`, the draw and :meth:`commit` for every step, with no host
        synchronisation until the end (where non-finite probabilities raise :class:`ModelError`).
        """
        shared = self.engine != "eager"
        program = shared_program(self.model, self.x.shape[0]) if shared else self._own_program()
        with_known = known is not None
        with program.lock:
            program.reset(self.x, self.cond)
            if shared:
                _row_function(program, self.engine, float(temperature), with_known)  # captured once, then kept
                program.reset(self.x, self.cond)
            program.uniforms.copy_(uniforms)
            if with_known:
                program.known.copy_(known.to(torch.bool))
                program.known_values.copy_(known_values)
            row = _row_function(program, self.engine, float(temperature), with_known)
            for _ in range(program.height):
                row()
            self.x.copy_(program.canvas)
            finite = bool(program.finite & (program.nonfinite == 0).all())
        self._next = len(self.plan)
        self.network_calls += len(self.plan)
        if not finite:
            raise ModelError(f"{self.model.spec.title} returned NaN or infinite probabilities while sampling")


def make_cached_sampler(
    model: ARModel,
    x: Tensor,
    cond: Tensor | None = None,
    ordering: Ordering | None = None,
    engine: str | None = None,
) -> Sampler:
    """The cached sampler of ``model``; naive re-evaluation for a model with no cache program (a family's
    subclass that changes the forward pass, a model that declares none)."""
    if not supports_cached(model):
        return NaiveSampler(model, x, cond, ordering)
    return CachedSampler(model, x, cond, ordering, engine)

