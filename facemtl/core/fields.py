"""Typed, bounded dataclass fields: the checks every config runs, and JSON read into them.

A config may come from a user's recipe or from the header of a weights file someone sent, so it
is untrusted input. Each field declares its type (its annotation) and, in its metadata, its
allowed values and range (:func:`option`); :func:`check_fields` checks an instance against both,
and :func:`from_json` builds a config from plain JSON values, refusing unknown keys, a list where
an object belongs, a string where a list belongs. Every error names the field. Torch-free, so a
recipe or a weights header is checked before anything is imported or allocated.
"""

from __future__ import annotations

import math
import types
from dataclasses import MISSING, field, fields, is_dataclass, replace
from typing import Any, Union, get_args, get_origin, get_type_hints


def option(
    default: Any = None,
    help: str = "",
    *,
    choices: tuple[Any, ...] | None = None,
    low: float | None = None,
    high: float | None = None,
    above: float | None = None,
    items: tuple[int, int] | None = None,
    factory: Any = None,
    flag: str | None = None,
) -> Any:
    """A config field: its default, its help text and its allowed values — ``choices``, a closed
    range ``[low, high]``, an open lower bound ``above`` (applied to every number in the value) and
    ``items``, the (fewest, most) entries of a tuple or dict. ``flag``: the command-line flag where it
    is not the field's name (a bool whose default is True: the flag that turns it off)."""
    meta = {"help": help, "choices": choices, "low": low, "high": high, "above": above, "items": items, "flag": flag}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    """A dataclass's resolved field types (annotations are strings under postponed evaluation)."""
    if cls not in _HINTS:
        _HINTS[cls] = get_type_hints(cls)
    return _HINTS[cls]


def _type_name(tp: Any) -> str:
    if get_origin(tp) in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp) if a is not type(None))
    origin = get_origin(tp)
    if origin is tuple:
        return "a list"
    if origin is dict:
        return "an object"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _numbers(value: Any) -> list[float]:
    """Every int or float inside a value (tuples and dict values, nested), bools excluded."""
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [value]
    if isinstance(value, tuple):
        return [n for v in value for n in _numbers(v)]
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    return []


def check_value(value: Any, tp: Any, name: str) -> None:
    """``value`` is of the declared type ``tp`` (ints are numbers, bools are neither, numbers are
    finite); a ValueError names ``name`` otherwise."""
    if tp is Any:
        return
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                check_value(value, a, name)
                return
            except ValueError as e:
                errors.append(str(e))
        raise ValueError(errors[0] if len(errors) == 1 else f"{name} must be {_type_name(tp)}; got {_describe(value)}")
    if origin is tuple:
        if not isinstance(value, tuple):
            raise ValueError(f"{name} must be {_type_name(tp)}; got {_describe(value)}")
        if args and args[-1] is Ellipsis:
            for i, v in enumerate(value):
                check_value(v, args[0], f"{name}[{i}]")
        elif args:
            if len(value) != len(args):
                raise ValueError(f"{name} must have {len(args)} entries; got {len(value)}")
            for i, (v, a) in enumerate(zip(value, args, strict=True)):
                check_value(v, a, f"{name}[{i}]")
        return
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{name} must be {_type_name(tp)}; got {_describe(value)}")
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError(f"{name} keys must be strings; got {_describe(k)}")
            check_value(v, args[1], f"{name}.{k}")
        return
    if tp is bool:
        ok = isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number; got {value}")
    elif isinstance(tp, type):
        ok = isinstance(value, tp)
    else:  # a typing construct this checker does not know: nothing to check
        ok = True
    if not ok:
        raise ValueError(f"{name} must be {_type_name(tp)}; got {_describe(value)}")


def check_fields(obj: Any, section: str = "") -> None:
    """Check every field of a dataclass instance against its type, choices, range and size; the
    error names the field (``section`` + its name)."""
    hints = _hints(type(obj))
    for f in fields(obj):
        value, meta, name = getattr(obj, f.name), f.metadata, section + f.name
        check_value(value, hints[f.name], name)
        choices = meta.get("choices")
        if choices is not None and value is not None and value not in choices:
            raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}; got {_describe(value)}")
        items = meta.get("items")
        if items is not None and isinstance(value, (tuple, dict)) and not items[0] <= len(value) <= items[1]:
            raise ValueError(f"{name} must have {items[0]} to {items[1]} entries; got {len(value)}")
        low, high, above = meta.get("low"), meta.get("high"), meta.get("above")
        for v in _numbers(value):
            if low is not None and v < low:
                raise ValueError(f"{name} must be ≥ {low}; got {_describe(value)}")
            if above is not None and v <= above:
                raise ValueError(f"{name} must be > {above}; got {_describe(value)}")
            if high is not None and v > high:
                raise ValueError(f"{name} must be ≤ {high}; got {_describe(value)}")


def replace_fields(obj: Any, what: str, **changes: Any) -> Any:
    """``dataclasses.replace`` that names unknown fields (``what``: how the error calls the
    config) instead of a TypeError; the dataclass's own checks then judge the values."""
    known = {f.name for f in fields(obj)}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise ValueError(f"unknown {what} field(s) {unknown}; known: {', '.join(sorted(known))}")
    return replace(obj, **changes)


def _convert(value: Any, tp: Any, name: str) -> Any:
    """A JSON value as the declared type: lists become tuples, objects nested dataclasses,
    integers of float fields floats. Scalars are left as they are, for :func:`check_fields` to judge."""
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        if value is None:
            return None
        options = [a for a in args if a is not type(None)]
        return _convert(value, options[0], name) if len(options) == 1 else value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{name} must be a list; got {_describe(value)}")
        if args and args[-1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{name}[{i}]") for i, v in enumerate(value))
        if args and len(value) != len(args):
            raise ValueError(f"{name} must have {len(args)} entries; got {len(value)}")
        return tuple(_convert(v, a, f"{name}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=False)))
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{name} must be an object; got {_describe(value)}")
        return {k: _convert(v, args[1], f"{name}.{k}") for k, v in value.items()}
    if isinstance(tp, type) and is_dataclass(tp):
        if isinstance(value, tp):
            return value
        parse = getattr(tp, "parse", None)  # a dataclass with a text form (a training source)
        if isinstance(value, str) and parse is not None:
            return parse(value)
        if not isinstance(value, dict):
            what = "a KIND:PATH string or an object" if parse is not None else "an object"
            raise ValueError(f"{name} must be {what}; got {_describe(value)}")
        return from_json(tp, value, f"{name}.")
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def from_json(cls: Any, data: Any, section: str = "") -> Any:
    """``cls`` built from plain JSON values: an object with only ``cls``'s fields (every required
    one present), each converted to its declared type; the dataclass's own checks then run."""
    where = section.rstrip(".") or getattr(cls, "LABEL", cls.__name__)
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be an object; got {_describe(data)}")
    known = {f.name: f for f in fields(cls) if f.init}
    unknown = sorted(str(k) for k in data if k not in known)
    if unknown:
        raise ValueError(f"unknown {where} key(s): {unknown}; known: {', '.join(known)}")
    missing = [n for n, f in known.items() if n not in data and f.default is MISSING and f.default_factory is MISSING]
    if missing:
        raise ValueError(f"{where}: missing key(s) {missing}")
    hints = _hints(cls)
    return cls(**{k: _convert(v, hints[k], section + k) for k, v in data.items()})
