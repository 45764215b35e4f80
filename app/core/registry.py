"""The plugin registry: loads plugins one at a time, isolates their failures, keeps a status for each.

Plugins come from the entry-point group ``ar_explorer`` (the built-in ones register there too) and from the
importable modules named in ``AR_EXPLORER_PLUGINS`` (comma-separated). ``AR_EXPLORER_LOAD_PLUGINS``
(comma-separated plugin names) restricts which entry points load; ``AR_EXPLORER_TRACE_PLUGINS=1`` prints every
hook call to stderr, through pluggy's tracer. A plugin that fails to import, or whose hook raises or returns
something invalid, is recorded with the reason and skipped, unless the registry is strict.

Like pytest, the registry refuses to let a hook that cannot be called pass for one: a ``@hookimpl`` function
whose name is no hook (``ar_explorer_model``), an ``ar_explorer_*`` function without ``@hookimpl``, and a
plugin that implements no hook at all each give the plugin the status ``warning`` (fatal when strict).
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import importlib.metadata
import inspect
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from app.core import hookspecs
from app.core.datasets import DatasetSpec
from app.core.errors import PluginError
from app.core.extensions import CommandSpec, ViewSpec
from app.core.model import ModelSpec
from app.core.orderings import PRESETS, Ordering
from app.core.toy_demos import DemoSpec

ENTRY_POINT_GROUP = "ar_explorer"

#: The built-in plugins, loaded by module name when the distribution's entry points are not installed
#: (running from a source tree without ``pip install``).
BUILTIN_PLUGINS: tuple[str, ...] = (
    "plugins.orderings",
    "plugins.datasets",
    "plugins.checkpoints",
    "plugins.made",
    "plugins.pixelcnn",
    "plugins.gated_pixelcnn",
    "plugins.pixelcnnpp",
    "plugins.toy",
    "plugins.toy_datasets",
    "plugins.rnn",
    "plugins.wavenet",
    "plugins.pixelsnail",
    "plugins.attention",
    "plugins.order_agnostic",
    "plugins.conditional",
    "plugins.hierarchy",
    "plugins.colour_datasets",
    "plugins.multiscale",
    "plugins.datasets_56",
    "plugins.views",
    "plugins.commands",
)


@dataclass(frozen=True)
class OrderingSpec:
    """A named ordering preset: ``factory(height, width, seed) -> Ordering``."""

    name: str
    description: str
    factory: Callable[[int, int, int | None], Ordering]
    seeded: bool = False


@dataclass
class PluginStatus:
    """What happened when a plugin was loaded and its hooks were called."""

    name: str
    source: str  # "entry point", "AR_EXPLORER_PLUGINS", "builtin", "registered"
    module: str = ""
    status: str = "ok"  # ok | warning (loaded, but something of it is never called) | partial | failed
    errors: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)  # tracebacks, for a "details" button
    provides: dict[str, list[str]] = field(default_factory=dict)

    @property
    def error(self) -> str:
        return "; ".join(self.errors)

    def fail(self, message: str, details: str = "", partial: bool = False) -> None:
        self.errors.append(message)
        if details:
            self.details.append(details)
        self.status = "partial" if partial and self.status != "failed" else "failed"

    def warn(self, message: str) -> None:
        """Record a problem that leaves what the plugin provides intact (a hook that is never called)."""
        self.errors.append(message)
        if self.status == "ok":
            self.status = "warning"

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "source": self.source,
            "module": self.module,
            "status": self.status,
            "error": self.error or None,
            "provides": self.provides,
        }


@contextlib.contextmanager
def _watch_for_ctrl_c() -> Iterator[list[bool]]:
    """While plugin code runs, note whether the user really pressed Ctrl-C (a SIGINT arrived).

    A ``KeyboardInterrupt`` that a plugin raises itself (at import, say) is a broken plugin, to be reported and
    skipped; one that a SIGINT caused is the user stopping the command. Signals are only seen on the main
    thread: elsewhere every ``KeyboardInterrupt`` is the plugin's own.
    """
    received = [False]
    previous = signal.getsignal(signal.SIGINT) if threading.current_thread() is threading.main_thread() else None
    if previous is None or previous == signal.SIG_IGN:
        yield received
        return

    def note_and_interrupt(signum, frame) -> None:
        received[0] = True
        if callable(previous):
            previous(signum, frame)  # Python's own handler raises KeyboardInterrupt
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, note_and_interrupt)
    try:
        yield received
    finally:
        signal.signal(signal.SIGINT, previous)


def _user_interrupt(exc: BaseException, received: list[bool]) -> bool:
    """Whether ``exc`` is the user's Ctrl-C (to re-raise), not a plugin's own ``KeyboardInterrupt``."""
    return isinstance(exc, KeyboardInterrupt) and received[0]


_HOOKS: dict[str, tuple[str, type | tuple[type, ...]]] = {
    "ar_explorer_models": ("models", ModelSpec),
    "ar_explorer_datasets": ("datasets", DatasetSpec),
    "ar_explorer_orderings": ("orderings", OrderingSpec),
    "ar_explorer_checkpoint_dirs": ("checkpoint_dirs", (str, Path)),
    "ar_explorer_demos": ("demos", DemoSpec),
    "ar_explorer_views": ("views", ViewSpec),
    "ar_explorer_commands": ("commands", CommandSpec),
}


class Registry:
    """Everything the plugins provide, with a status per plugin.

    Parameters
    ----------
    strict
        Raise :class:`PluginError` at the first plugin problem instead of recording it (``--strict-plugins``).
    load_entry_points
        Load the ``ar_explorer`` entry points (and, where none of the built-ins is installed, the built-ins by
        module name).
    extra_modules
        Module names to load besides ``AR_EXPLORER_PLUGINS``.
    """

    def __init__(
        self,
        strict: bool = False,
        load_entry_points: bool = True,
        extra_modules: Iterable[str] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.strict = strict
        self.env = dict(os.environ if env is None else env)
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self._tracing = bool(self.env.get("AR_EXPLORER_TRACE_PLUGINS"))
        self._trace = self.pm.trace.root.get("hook")
        if self._tracing:
            self.pm.trace.root.setwriter(lambda message: print(message, end="", file=sys.stderr, flush=True))
            self.pm.enable_tracing()  # hooks called through pm.hook; refresh() traces its own calls
        self.statuses: dict[str, PluginStatus] = {}
        self.models: dict[str, ModelSpec] = {}
        self.datasets: dict[str, DatasetSpec] = {}
        self.orderings: dict[str, OrderingSpec] = {}
        self.checkpoint_dirs: list[Path] = []
        self.demos: dict[str, DemoSpec] = {}
        self.views: dict[str, ViewSpec] = {}
        self.commands: dict[str, CommandSpec] = {}
        self._owner: dict[tuple[str, str], str] = {}
        if load_entry_points:
            self._load_entry_points()
        modules = [m.strip() for m in self.env.get("AR_EXPLORER_PLUGINS", "").split(",") if m.strip()]
        for module_name in [*modules, *extra_modules]:
            self.load_module(module_name, source="AR_EXPLORER_PLUGINS")
        self.refresh()

    # -- loading -------------------------------------------------------------------------------------------
    def _load_entry_points(self) -> None:
        only = {n.strip() for n in self.env.get("AR_EXPLORER_LOAD_PLUGINS", "").split(",") if n.strip()}
        try:
            entry_points = list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
        except Exception:  # broken metadata of some unrelated distribution
            entry_points = []
        seen_modules = set()
        for ep in sorted(entry_points, key=lambda e: (not e.value.startswith("plugins."), e.name)):
            if only and ep.name not in only:
                continue
            if ep.value in seen_modules:
                continue
            seen_modules.add(ep.value)
            status = PluginStatus(ep.name, "entry point", ep.value)
            self.statuses[ep.name] = status
            with _watch_for_ctrl_c() as received:
                try:
                    plugin = ep.load()
                except BaseException as exc:  # noqa: BLE001 - a plugin's import may raise anything
                    if _user_interrupt(exc, received):
                        raise
                    self._record_failure(status, f"failed to import {ep.value}: {type(exc).__name__}: {exc}")
                    continue
            self._register(plugin, status)
        for module_name in BUILTIN_PLUGINS:
            if module_name not in seen_modules and (not only or module_name.split(".")[-1] in only):
                self.load_module(module_name, source="builtin", name=module_name.split(".")[-1])

    def load_module(self, module_name: str, source: str = "AR_EXPLORER_PLUGINS", name: str | None = None) -> bool:
        """Import ``module_name`` and register it as a plugin; record any failure. Returns success."""
        name = name or module_name
        if name in self.statuses:
            name = module_name
        status = PluginStatus(name, source, module_name)
        self.statuses[name] = status
        with _watch_for_ctrl_c() as received:
            try:
                module = importlib.import_module(module_name)
            except BaseException as exc:  # noqa: BLE001 - a plugin's import may raise anything
                if _user_interrupt(exc, received):
                    raise
                self._record_failure(status, f"failed to import {module_name}: {type(exc).__name__}: {exc}")
                return False
        return self._register(module, status)

    def register(self, plugin: object, name: str) -> None:
        """Register an object or module as a plugin (for tests and embedding) and refresh."""
        status = PluginStatus(name, "registered", getattr(plugin, "__name__", type(plugin).__name__))
        self.statuses[name] = status
        self._register(plugin, status)
        self.refresh()

    def _register(self, plugin: object, status: PluginStatus) -> bool:
        try:
            if self.pm.is_registered(plugin):
                return True
            self.pm.register(plugin, name=status.name)
        except BaseException as exc:  # noqa: BLE001 - pluggy validates hook signatures here
            if isinstance(exc, KeyboardInterrupt):
                raise
            self._record_failure(status, f"cannot be registered: {exc}")
            return False
        for problem in self._uncallable_hooks(plugin):
            self._record_warning(status, problem)
        return True

    def _uncallable_hooks(self, plugin: object) -> list[str]:
        """What in ``plugin`` looks like a hook and would never be called (pytest refuses the same)."""
        callers = self.pm.get_hookcallers(plugin) or []
        implemented = {caller.name for caller in callers}
        problems = [
            f"{caller.name} is not a hook of AR Explorer, so it is never called{_did_you_mean(caller.name)}"
            for caller in sorted(callers, key=lambda c: c.name)
            if not caller.has_spec()
        ]
        for name in _public_functions(plugin):
            if name.startswith("ar_explorer_") and name not in implemented:
                known = "" if name in _HOOKS else f" (and is no hook{_did_you_mean(name, ';')})"
                problems.append(f"{name} is not marked with @hookimpl, so it is never called{known}")
        if not implemented and not problems:
            problems.append(f"implements no hook; the hooks are {', '.join(_HOOKS)}")
        return problems

    def _record_warning(self, status: PluginStatus, message: str) -> None:
        status.warn(message)
        if self.strict:
            raise PluginError(f"plugin {status.name}: {message}")

    def _record_failure(self, status: PluginStatus, message: str, partial: bool = False) -> None:
        message = " ".join(message.split())  # pluggy's and plugins' messages may span lines: a notice is one line
        status.fail(message, traceback.format_exc(), partial=partial)
        if self.strict:
            raise PluginError(f"plugin {status.name}: {message}")

    # -- calling hooks one implementation at a time ---------------------------------------------------------
    def refresh(self) -> None:
        """Call every hook of every plugin, one by one, validating what each returns."""
        self.models.clear()
        self.datasets.clear()
        self.orderings.clear()
        self.checkpoint_dirs.clear()
        self.demos.clear()
        self.views.clear()
        self.commands.clear()
        self._owner.clear()
        for status in self.statuses.values():
            status.provides = {}
        for hook_name, (kind, expected) in _HOOKS.items():
            hook = getattr(self.pm.hook, hook_name)
            for impl in hook.get_hookimpls():  # registration order (pluggy calls them in reverse)
                status = self.statuses.get(impl.plugin_name) or PluginStatus(impl.plugin_name, "registered")
                self.statuses.setdefault(impl.plugin_name, status)
                self._call(impl, status, kind, expected)

    def _call(self, impl: Any, status: PluginStatus, kind: str, expected: type | tuple[type, ...]) -> None:
        hook_name = impl.function.__name__
        if self._tracing:
            # Hooks are called one implementation at a time, not through pm.hook, so pluggy's own
            # monitoring never sees them: trace each call here, in pluggy's format.
            self._trace.root.indent += 1
            self._trace(hook_name, {"plugin": status.name})
        with _watch_for_ctrl_c() as received:
            try:
                result = impl.function()
            except BaseException as exc:  # noqa: BLE001 - a plugin's hook may raise anything
                if _user_interrupt(exc, received):
                    raise
                self._untrace()
                self._record_failure(status, f"{hook_name} raised {type(exc).__name__}: {exc}", True)
                return
        if self._tracing:
            self._trace("finish", hook_name, "-->", _summary(result))
            self._untrace()
        if result is None:
            return
        if not isinstance(result, (list, tuple)):
            self._record_failure(
                status, f"{impl.function.__name__} returned {type(result).__name__}, expected a list", True
            )
            return
        for item in result:
            if not isinstance(item, expected):
                names = expected.__name__ if isinstance(expected, type) else " or ".join(t.__name__ for t in expected)
                self._record_failure(
                    status,
                    f"{impl.function.__name__} returned an item of type {type(item).__name__}, expected {names}",
                    True,
                )
                continue
            self._add(kind, item, status)

    def _untrace(self) -> None:
        if self._tracing:
            self._trace.root.indent -= 1

    def _add(self, kind: str, item: Any, status: PluginStatus) -> None:
        if kind == "checkpoint_dirs":
            path = Path(item)
            if path not in self.checkpoint_dirs:
                self.checkpoint_dirs.append(path)
            status.provides.setdefault(kind, []).append(str(path))
            return
        table: dict[str, Any] = getattr(self, kind)
        name = item.name
        if not isinstance(name, str) or not name:
            self._record_failure(status, f"a {kind[:-1]} without a name", True)
            return
        if name in table:
            owner = self._owner[(kind, name)]
            self._record_failure(
                status, f"{kind[:-1]} {name!r} is already provided by plugin {owner!r}; this one was skipped", True
            )
            return
        table[name] = item
        self._owner[(kind, name)] = status.name
        status.provides.setdefault(kind, []).append(name)

    # -- lookups --------------------------------------------------------------------------------------------
    def model(self, name: str) -> ModelSpec:
        try:
            return self.models[name]
        except KeyError:
            raise PluginError(
                f"no model named {name!r}; available: {', '.join(sorted(self.models)) or 'none'}"
            ) from None

    def dataset(self, name: str) -> DatasetSpec:
        try:
            return self.datasets[name]
        except KeyError:
            raise PluginError(
                f"no dataset named {name!r}; available: {', '.join(sorted(self.datasets)) or 'none'}"
            ) from None

    def demo(self, name: str) -> DemoSpec:
        try:
            return self.demos[name]
        except KeyError:
            raise PluginError(
                f"no demo named {name!r}; available: {', '.join(self.demos) or 'none'}"
            ) from None

    def ordering(self, name: str, height: int, width: int, seed: int | None = None) -> Ordering:
        """A named preset at the given size, or an ordering loaded from a JSON file path."""
        if name in self.orderings:
            return self.orderings[name].factory(height, width, seed)
        if name.startswith("random-") and name[7:].isdigit() and "random" in self.orderings:
            return self.orderings["random"].factory(height, width, int(name[7:]))
        from app.core.errors import OrderingError

        path = Path(name)
        if path.suffix.lower() == ".json" or path.exists():
            ordering = Ordering.load(path)
            if (ordering.height, ordering.width) != (height, width):
                raise OrderingError(
                    f"{path.name} is a {ordering.height}x{ordering.width} ordering; the model's images are "
                    f"{height}x{width}"
                )
            return ordering
        raise OrderingError(
            f"no ordering named {name!r} and no such file; presets: {', '.join(sorted(self.orderings))}"
        )

    def problems(self) -> list[PluginStatus]:
        return [s for s in self.statuses.values() if s.status != "ok"]


def _did_you_mean(name: str, lead: str = ":") -> str:
    close = difflib.get_close_matches(name, list(_HOOKS), n=1, cutoff=0.6)
    return f"{lead} did you mean {close[0]}?" if close else ""


def _public_functions(plugin: object) -> list[str]:
    """The names of the functions a plugin module (or object) has; attributes that raise are skipped."""
    found = []
    for name in dir(plugin):
        if name.startswith("_"):
            continue
        try:
            value = getattr(plugin, name)
        except Exception:  # noqa: BLE001 - a plugin's attribute may raise anything
            continue
        if inspect.isfunction(value) or inspect.ismethod(value):
            found.append(name)
    return found


def _summary(result: Any) -> str:
    """What a hook returned, for the trace: the names of the items (a spec's repr is a page long)."""
    if not isinstance(result, (list, tuple)):
        return repr(result)
    names = [str(item) if isinstance(item, (str, Path)) else str(getattr(item, "name", item)) for item in result]
    return "[" + ", ".join(names) + "]"


def builtin_ordering_specs() -> list[OrderingSpec]:
    """The presets of :mod:`app.core.orderings`, as specs (the built-in orderings plugin returns these)."""
    return [
        OrderingSpec(name, (factory.__doc__ or "").strip().splitlines()[0], factory, seeded=(name == "random"))
        for name, factory in PRESETS.items()
    ]


_DEFAULT: Registry | None = None


def get_registry(strict: bool = False, reload: bool = False) -> Registry:
    """The process-wide registry, built on first use."""
    global _DEFAULT
    if _DEFAULT is None or reload or (strict and not _DEFAULT.strict):
        _DEFAULT = Registry(strict=strict)
    return _DEFAULT


def plugin_module(module: ModuleType | object) -> str:
    return getattr(module, "__name__", type(module).__name__)
