"""Typed hyperparameters: one frozen dataclass per model family, its fields the hyperparameters with their
shipped defaults, types and bounds, written once.

A family's class subclasses :class:`Hparams` and declares each field with :func:`hparam`::

    @dataclass(frozen=True)
    class PixelCNNHparams(Hparams):
        channels: int = hparam(64, ge=1)
        kernel: int = hparam(7, ge=1, odd=True)

:meth:`Hparams.from_hparams` builds it from the plain dict a :class:`~app.core.model.ModelConfig` holds (and a
checkpoint's JSON stores), refusing an unknown key, a wrong type or an out-of-bounds value with a one-line
:class:`~app.core.errors.HyperparameterError`; :meth:`Hparams.defaults` is the dict of the shipped defaults
that the spec's ``default_hparams`` become. Keys that begin with ``kit_`` are the conformance kit's, which
``tiny_hparams`` may carry and models ignore.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import MISSING, dataclass, field
from typing import Any, ClassVar, TypeVar

from app.core.errors import HyperparameterError

#: Keys of this prefix belong to the conformance kit (``kit_shape``, ...): models ignore them.
KIT_PREFIX = "kit_"

H = TypeVar("H", bound="Hparams")


def hparam(
    default: Any = MISSING,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    odd: bool = False,
    choices: Iterable[str] = (),
    min_items: int = 0,
    listed: bool = True,
    absent: Any = MISSING,
    factory: Any = MISSING,
) -> Any:
    """A hyperparameter field of an :class:`Hparams` class.

    Parameters
    ----------
    default
        The shipped value (immutable: a tuple for a list; give ``factory`` for a dict).
    ge, gt, le, lt
        Bounds of a number, or of every item of a tuple of numbers (>=, >, <=, <).
    odd
        A whole number that must be odd (a masked convolution's kernel has a centre).
    choices
        The strings a text field takes (compared without regard to case).
    min_items
        The fewest items of a tuple.
    listed
        Whether the key is one of ``default_hparams`` (the shipped size). Options that most runs leave alone
        (a likelihood's name) are unlisted: taken when given, absent from the defaults.
    absent
        The value for a saved config that does not name the key at all (a checkpoint written before the key
        existed), where that differs from ``default``.
    factory
        Makes the default, for a mutable one (a dict).
    """
    meta = {"ge": ge, "gt": gt, "le": le, "lt": lt, "odd": odd, "choices": tuple(c.lower() for c in choices),
            "min_items": min_items, "listed": listed, "absent": absent}
    if factory is not MISSING:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Hparams:
    """Base class of a model family's hyperparameters (a frozen dataclass of :func:`hparam` fields)."""

    #: Who takes these hyperparameters, for messages (the model's title); the class name where empty.
    owner: ClassVar[str] = ""

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """Every hyperparameter key of the family, listed or not, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """The listed hyperparameters at their shipped values, as JSON values (tuples as lists)."""
        return {f.name: _to_json(_default_of(f)) for f in dataclasses.fields(cls) if f.metadata.get("listed", True)}

    @classmethod
    def from_hparams(cls: type[H], hparams: Mapping[str, Any] | None, owner: str = "") -> H:
        """The typed hyperparameters of a config's dict: its values checked, the others at their defaults.

        Raises
        ------
        HyperparameterError
            For a key the family does not take (naming those it does), a value of the wrong type or out of
            bounds (naming the key, the value and what is allowed).
        """
        owner = owner or cls.owner or cls.__name__
        values = {k: v for k, v in (hparams or {}).items() if not str(k).startswith(KIT_PREFIX)}
        refuse_unknown(values, cls.names(), owner)
        kwargs = {}
        for f in dataclasses.fields(cls):
            if f.name in values:
                kwargs[f.name] = check_value(cls, f.name, values[f.name], owner)
            elif f.metadata.get("absent", MISSING) is not MISSING:
                kwargs[f.name] = f.metadata["absent"]
        return cls(**kwargs)

    @classmethod
    def check(cls, hparams: Mapping[str, Any] | None, owner: str = "") -> None:
        """Refuse what :meth:`from_hparams` refuses, building nothing."""
        cls.from_hparams(hparams, owner)

    def to_dict(self) -> dict[str, Any]:
        """Every hyperparameter as a JSON value."""
        return {f.name: _to_json(getattr(self, f.name)) for f in dataclasses.fields(self)}


def refuse_unknown(hparams: Mapping[str, Any] | None, known: Iterable[str], owner: str) -> None:
    """Refuse keys outside ``known`` (``chanels`` for ``channels``), naming the closest known ones and all.

    Raises
    ------
    HyperparameterError
        With the unknown keys, the closest known ones, and the full list.
    """
    known = sorted(set(known))
    unknown = [key for key in (hparams or {}) if key not in known]
    if not unknown:
        return
    hints = []
    for key in unknown:
        close = difflib.get_close_matches(str(key), known, n=1)
        hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise HyperparameterError(f"{owner} takes no hyperparameter {', '.join(hints)}; it takes: "
                              f"{', '.join(known) or 'none'}")


def check_value(cls: type[Hparams], key: str, value: Any, owner: str) -> Any:
    """``value`` of the field ``key``, converted to its type (a list to a tuple, a whole float to an int).

    Raises
    ------
    HyperparameterError
        Naming the key, the value and what the field takes.
    """
    f = next(f for f in dataclasses.fields(cls) if f.name == key)
    kind = typing.get_type_hints(cls)[key]
    converted = _convert(kind, value, f.metadata)
    if converted is _REFUSED:
        raise HyperparameterError(f"{owner}: hyperparameter {key}={_show(value)} is not allowed; it takes "
                                  f"{describe(kind, f.metadata)}")
    return converted


_REFUSED = object()


def _convert(kind: Any, value: Any, meta: Mapping[str, Any]) -> Any:
    """``value`` as ``kind`` within the bounds of ``meta``, or :data:`_REFUSED`."""
    args = typing.get_args(kind)
    if _is_optional(kind):
        if value is None:
            return None
        kind = next(a for a in args if a is not type(None))
        args = typing.get_args(kind)
    origin = typing.get_origin(kind)
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) < meta.get("min_items", 0):
            return _REFUSED
        items = tuple(_convert(args[0], item, meta) for item in value)
        return _REFUSED if any(item is _REFUSED for item in items) else items
    if kind is dict or origin is dict:
        return dict(value) if isinstance(value, dict) else _REFUSED
    if kind is bool:
        return value if isinstance(value, bool) else _REFUSED
    if kind is str:
        if not isinstance(value, str):
            return _REFUSED
        choices = meta.get("choices", ())
        if choices and value.lower() not in choices:
            return _REFUSED
        return value.lower() if choices else value
    if kind is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # a JSON writer's 64.0
        if not isinstance(value, int) or isinstance(value, bool):
            return _REFUSED
        if meta.get("odd") and value % 2 == 0:
            return _REFUSED
        return value if _within(value, meta) else _REFUSED
    if kind is float:
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            return _REFUSED
        return float(value) if _within(value, meta) else _REFUSED
    raise TypeError(f"a hyperparameter cannot be of type {kind!r}")


def _within(value: float, meta: Mapping[str, Any]) -> bool:
    checks = (("ge", value.__ge__), ("gt", value.__gt__), ("le", value.__le__), ("lt", value.__lt__))
    return all(meta.get(name) is None or bool(test(meta[name])) for name, test in checks)


def describe(kind: Any, meta: Mapping[str, Any], plural: bool = False) -> str:
    """What a field takes, in words: ``an odd whole number >= 1``, ``a number in [0, 1)``."""
    optional = _is_optional(kind)
    if optional:
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
    origin = typing.get_origin(kind)
    if origin is tuple:
        least = meta.get("min_items", 0)
        text = f"a list of {describe(typing.get_args(kind)[0], meta, plural=True)}"
        text += f" (at least {least})" if least else ""
    elif kind is dict or origin is dict:
        text = "a JSON object"
    elif kind is bool:
        text = "true or false"
    elif kind is str:
        choices = meta.get("choices", ())
        text = f"one of {', '.join(choices)}" if choices else "a string"
    else:
        noun = ("odd whole number" if meta.get("odd") else "whole number") if kind is int else "number"
        text = (f"{noun}s" if plural else f"{'an' if noun[0] == 'o' else 'a'} {noun}") + _bounds(meta)
    return text + (" or null" if optional else "")


def _bounds(meta: Mapping[str, Any]) -> str:
    low = ("[", meta["ge"]) if meta.get("ge") is not None else ("(", meta["gt"]) if meta.get("gt") is not None else None
    high = ("]", meta["le"]) if meta.get("le") is not None else (")", meta["lt"]) if meta.get("lt") is not None else None
    if low and high:
        return f" in {low[0]}{low[1]:g}, {high[1]:g}{high[0]}"
    if low:
        return f" {'>=' if low[0] == '[' else '>'} {low[1]:g}"
    if high:
        return f" {'<=' if high[0] == ']' else '<'} {high[1]:g}"
    return ""


def _is_optional(kind: Any) -> bool:
    return (typing.get_origin(kind) in (typing.Union, types.UnionType)) and type(None) in typing.get_args(kind)


def _default_of(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not MISSING else f.default


def _to_json(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_json(v) for k, v in value.items()}
    return value


def _show(value: Any) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


__all__ = ["Hparams", "hparam", "refuse_unknown", "check_value", "describe", "KIT_PREFIX"]
