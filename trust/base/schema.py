"""Typed records for every experiment: a frozen, validated :class:`Config` (the one place where bad values
are rejected) and a frozen :class:`Result` with a JSON round-trip.

Both are dataclasses read field by field through their type hints, so nothing downstream indexes a
result by string: the CLI builds its flags from a ``Config``'s fields (:func:`param` carries the help
text, the choices and the bounds), and ``Result.to_json``/``Result.from_json`` are the only place where
NumPy values meet JSON. JSON has no NaN or infinity; a non-finite number is written as the string
``"nan"``, ``"inf"`` or ``"-inf"``, and only in a field that declares *why* it can be undefined
(:func:`value` with ``undefined=``): ``to_json`` lists those reasons under ``"undefined"``, and a
non-finite number anywhere else is a bug, reported as one.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field, fields
from typing import Any, Union

import numpy as np

from trust.base.errors import TrustError

_MISSING = dataclasses.MISSING
NO_SEED = "no seed gave a finite value here (every seed dead, diverged or not measured)"
# results.json's layout: 2 (trust 0.4) records the format and the result's type and holds the derived fields; a
# result without "format" is of layout 1 (trust ≤ 0.3), whose derived fields are computed when it is read.
FORMAT = 2


def param(
    default,
    help: str = "",
    *,
    flag: str | None = None,
    choices=None,
    minimum: float | None = None,
    maximum: float | None = None,
    increasing: bool = False,
):
    """A :class:`Config` field: its default, the CLI help, an optional flag name other than ``--field-name``,
    the allowed ``choices`` (for a tuple field: for each entry), inclusive ``minimum``/``maximum`` and, for a
    tuple field, whether its entries must be strictly ``increasing`` (a grid: sorted, no repeats)."""
    return field(
        default=default,
        metadata={
            "help": help,
            "flag": flag,
            "choices": tuple(choices) if choices is not None else None,
            "minimum": minimum,
            "maximum": maximum,
            "increasing": increasing,
        },
    )


def value(
    undefined: str | None = None,
    bulk: bool = False,
    default=_MISSING,
    empty: bool = False,
    derived: bool = False,
    axes: tuple[str, ...] | None = None,
):
    """A :class:`Result` field that may hold NaN/inf — ``undefined`` says when and why — or a ``bulk`` array
    kept out of the JSON (stored in ``arrays.npz``); ``empty``: an array field that defaults to an empty array
    (a measurement not taken); ``derived``: computed from the other fields by the experiment's ``combine``
    (:meth:`Result.derive`), and computed again when a stored result predates it; ``axes``: the names of an
    array's axes, whose coordinates the record's (or its result's) ``coordinates()`` gives."""
    metadata = {"undefined": undefined, "bulk": bulk, "derived": derived, "axes": axes}
    if empty:
        return field(default_factory=lambda: np.empty(0), metadata=metadata)
    if derived:
        return field(default=None, metadata=metadata)
    return field(default=default, metadata=metadata)


def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_tuple_field(hint) -> bool:
    return typing.get_origin(hint) is tuple


@dataclass(frozen=True)
class Config:
    """Base of every experiment's config (subclass as a frozen dataclass).

    ``__post_init__`` checks every field against its :func:`param` metadata — numbers finite and within
    ``[minimum, maximum]``, names among ``choices`` — and then the cross-field rules in :meth:`validate`;
    any failure is a :class:`TrustError` whose one-line message the CLI prints."""

    def __post_init__(self):
        hints = _hints(type(self))
        for f in fields(self):
            items = getattr(self, f.name)
            tuple_field = _is_tuple_field(hints[f.name])
            for item in items if tuple_field else (items,):
                _check_field(f, item, in_tuple=tuple_field)
            if f.metadata.get("increasing") and any(b <= a for a, b in zip(items, items[1:])):
                raise TrustError(f"{f.name} must be strictly increasing (sorted, no repeats), got {items}")
        self.validate()

    def validate(self) -> None:
        """Cross-field rules of a subclass (raise :class:`TrustError`)."""

    @classmethod
    def from_dict(cls, d: dict):
        """Build from a dict (CLI arguments or a stored ``config.json``, in the current layout or an older one:
        :meth:`upgrade`); other keys are ignored, JSON lists become tuples and a nested config (a field typed
        as a :class:`Config`) is built from its own dict, so ``from_dict(c.to_dict()) == c``."""
        d = cls.upgrade(d)
        hints = _hints(cls)
        return cls(**{f.name: _config_value(hints[f.name], d[f.name]) for f in fields(cls) if f.name in d})

    @classmethod
    def upgrade(cls, d: dict) -> dict:
        """A stored config of an older layout in the current one (a subclass whose fields moved overrides it;
        a dict already in the current layout comes back unchanged)."""
        return d

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _is_config(hint) -> bool:
    return isinstance(hint, type) and issubclass(hint, Config)


def _config_value(hint, item):
    if _is_config(hint):
        return item if isinstance(item, hint) else hint.from_dict(item)
    return tuple(item) if _is_tuple_field(hint) else item


def _check_field(f, item, in_tuple: bool) -> None:
    meta = f.metadata
    name = f"{f.name} ({meta['flag']})" if meta.get("flag") else f.name  # the flag the user typed, when it differs
    where = f"{name} entries" if in_tuple else name
    if isinstance(item, float) and not math.isfinite(item):
        raise TrustError(f"{where} must be finite, got {item}")
    if meta.get("choices") is not None and item not in meta["choices"]:
        raise TrustError(f"unknown {name} {item!r}; choose one of {', '.join(map(str, meta['choices']))}")
    if meta.get("minimum") is not None and item < meta["minimum"]:
        raise TrustError(f"{where} must be ≥ {meta['minimum']:g}, got {item}")
    if meta.get("maximum") is not None and item > meta["maximum"]:
        raise TrustError(f"{where} must be ≤ {meta['maximum']:g}, got {item}")


# ---------------------------------------------------------------------------------------------- results


def _encode_number(x, path: str, reasons: dict[str, str], reason: str | None):
    x = float(x)
    if math.isfinite(x):
        return x
    if reason is None:
        raise RuntimeError(
            f"internal error (a bug in trust): {path} is {x} but declares no reason to be undefined; please report it"
        )
    reasons.setdefault(path, reason)
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def _encode(obj, path: str, reasons: dict[str, str], reason: str | None):
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {
            f.name: _encode(getattr(obj, f.name), f"{path}.{f.name}".lstrip("."), reasons, f.metadata.get("undefined"))
            for f in fields(obj)
            if not f.metadata.get("bulk")
        }
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind == "f":
            return _encode(obj.tolist(), path, reasons, reason)
        return obj.tolist()
    if isinstance(obj, dict):
        return {str(k): _encode(v, f"{path}.{k}", reasons, reason) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [
            _encode(v, f"{path}[{i}]" if dataclasses.is_dataclass(v) else path, reasons, reason)
            for i, v in enumerate(obj)
        ]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return _encode_number(obj, path, reasons, reason)
    return obj


def _number(x):
    return float(x) if isinstance(x, str) else x


def _numbers(obj):
    return [_numbers(v) for v in obj] if isinstance(obj, list) else _number(obj)


def _decode(hint, obj):
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        if obj is None and type(None) in args:
            return None
        return _decode(next(a for a in args if a is not type(None)), obj)
    if _is_config(hint):
        return hint.from_dict(obj)
    if dataclasses.is_dataclass(hint):
        return _decode_record(hint, obj, {})
    if hint is np.ndarray:
        return np.asarray(_numbers(obj))
    if hint is float:
        return float(_number(obj))
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], v) for v in obj)
        return tuple(_decode(a, v) for a, v in zip(args, obj))
    if origin is list:
        return [_decode(args[0], v) for v in obj]
    if origin is dict:
        return {k: _decode(args[1], v) for k, v in obj.items()}
    return obj


def _decode_record(cls, obj: dict, arrays: dict, prefix: str = ""):
    hints = _hints(cls)
    kwargs = {}
    for f in fields(cls):
        if f.metadata.get("bulk"):
            kwargs[f.name] = np.asarray(arrays[prefix + f.name])
        elif f.name in obj:
            kwargs[f.name] = _decode(hints[f.name], obj[f.name])
    return cls(**kwargs)


@dataclass(frozen=True, eq=False)
class Result:
    """Base of every experiment's result (subclass as a frozen dataclass with ``eq=False``).

    Fields are NumPy arrays, numbers, strings, tuples, dicts and nested frozen dataclasses: the stored values, and
    nothing else; figures, report rows and summaries are views of them (:mod:`trust.views`)."""

    def to_json(self) -> dict:
        """JSON-ready fields (bulk arrays left out), ``"undefined"``: why each non-finite value is so, and the
        layout (``"format"``) and ``"result"`` type (:func:`type_name`) a reader needs to rebuild it."""
        reasons: dict[str, str] = {}
        out = _encode(self, "", reasons, None)
        labels = {k: v for k, v in axes_of(self).items() if not v["bulk"]}
        return {**out, "undefined": reasons, "axes": labels, "format": FORMAT, "result": type_name(type(self))}

    def arrays(self) -> dict[str, np.ndarray]:
        """The bulk arrays, by field name (what ``arrays.npz`` holds), and ``__axes__``: their axes' names and
        coordinates as a JSON string (:func:`axes_of`), when they declare them."""
        bulk = {f.name: np.asarray(getattr(self, f.name)) for f in fields(self) if f.metadata.get("bulk")}
        labels = {k: v for k, v in axes_of(self).items() if v["bulk"]}
        return {**bulk, AXES: np.asarray(json.dumps(labels, allow_nan=False))} if labels else bulk

    def coordinates(self) -> dict[str, list]:
        """The coordinates of the axes its arrays declare (``value(axes=…)``), by axis name."""
        return {}

    @classmethod
    def from_json(cls, obj: dict, arrays: dict | None = None):
        """Inverse of :meth:`to_json` (with :meth:`arrays`): ``from_json(r.to_json(), r.arrays())`` equals ``r``.
        Derived fields (summaries and verdicts) are computed again from the measured ones, so a stored run is
        always judged by today's rules (results.json keeps what the run's own version decided); measured fields
        that do not match are an error."""
        if not isinstance(obj, dict):
            raise TrustError(f"a stored {cls.__name__} must be a JSON object")
        derived = {f.name for f in fields(cls) if f.metadata.get("derived")}
        try:
            result = _decode_record(cls, {k: v for k, v in obj.items() if k not in derived}, arrays or {})
        except (KeyError, TypeError, ValueError, StopIteration) as err:
            raise TrustError(
                f"stored results do not match {cls.__name__} ({err.__class__.__name__}: {err}); "
                "the run is from another version or was edited — rerun it"
            ) from None
        return result.derive() if derived else result

    def derive(self):
        """This result with its ``derived`` fields computed from the others (a subclass with derived fields
        overrides it; its ``combine`` returns ``derive()`` of the measured fields)."""
        return self


AXES = "__axes__"  # the arrays.npz entry that labels the bulk arrays


def _coordinate(x):
    return (
        [_coordinate(v) for v in x]
        if isinstance(x, (list, tuple, np.ndarray))
        else (x.item() if hasattr(x, "item") else x)
    )


def axes_of(record, path: str = "", coords: dict | None = None) -> dict[str, dict]:
    """Every labelled array of ``record`` and of the records inside it, by its path in the JSON (fields joined by
    ``.``, list items as ``[2]``, dict entries as ``["key"]``, the key a JSON string): ``dims`` (the axis
    names, slowest first), ``coords`` (the values along each axis that has them: a record's own ``coordinates()``
    over its result's) and whether it is ``bulk`` (in arrays.npz)."""
    coords = {**(coords or {}), **(record.coordinates() if hasattr(record, "coordinates") else {})}
    out: dict[str, dict] = {}
    for f in fields(record):
        value_ = getattr(record, f.name)
        name = f"{path}.{f.name}".lstrip(".")
        dims = f.metadata.get("axes")
        if value_ is None:  # an optional array or spread not measured: nothing to label
            continue
        if dims is not None:
            label = {"dims": list(dims), "coords": {d: _coordinate(coords[d]) for d in dims if d in coords},
                     "bulk": bool(f.metadata.get("bulk"))}  # fmt: skip
            if dataclasses.is_dataclass(value_) and not isinstance(value_, type):  # a Spread: each of its arrays
                out.update({f"{name}.{g.name}": label for g in fields(value_)})
            else:
                out[name] = label
        else:
            out.update(_records_inside(value_, name, coords))
    return out


def _records_inside(value_, path: str, coords: dict) -> dict[str, dict]:
    """:func:`axes_of` of every record in ``value_``: itself, or inside its tuples, lists and dicts at any depth."""
    if dataclasses.is_dataclass(value_) and not isinstance(value_, type):
        return axes_of(value_, path, coords)
    out: dict[str, dict] = {}
    if isinstance(value_, (tuple, list, dict)):
        items = value_.items() if isinstance(value_, dict) else enumerate(value_)
        for key, item in items:
            where = f"{path}[{json.dumps(key, ensure_ascii=False)}]" if isinstance(value_, dict) else f"{path}[{key}]"
            out.update(_records_inside(item, where, coords))
    return out


def type_name(cls: type) -> str:
    """``module.Class``: how results.json names the type of its result."""
    return f"{cls.__module__}.{cls.__qualname__}"


def same(a: Result, b: Result) -> bool:
    """Whether two results hold the same values (the JSON form and the bulk arrays, exactly)."""
    arrays_a, arrays_b = a.arrays(), b.arrays()
    return (
        type(a) is type(b)
        and a.to_json() == b.to_json()
        and arrays_a.keys() == arrays_b.keys()
        and all(np.array_equal(arrays_a[k], arrays_b[k], equal_nan=arrays_a[k].dtype.kind in "fc") for k in arrays_a)
    )


@dataclass(frozen=True, eq=False)
class Spread:
    """A value over seeds, entry by entry: its median and range with NaN left out (a dead or diverged seed), and
    ``n``, how many seeds were finite there (0: median, low and high are NaN)."""

    median: np.ndarray = value(NO_SEED)
    low: np.ndarray = value(NO_SEED)
    high: np.ndarray = value(NO_SEED)
    n: np.ndarray = value()


@dataclass(frozen=True)
class Verdict:
    """A decided claim, as data: the ``rule`` (a name in :data:`trust.experiments.shared.rules.RULES`, where its
    threshold is and why), the ``statistic`` the rule compared with the ``threshold``, the ``outcome`` it gave,
    the ``effect`` a reader is shown (e.g. a ratio of medians), and the ``seeds`` and range ``[low, high]`` it
    rests on. Views turn it into a sentence; they never decide it."""

    rule: str
    outcome: str
    statistic: float = value(NO_SEED)
    threshold: float = value("a measurement without a threshold")
    effect: float = value(NO_SEED)
    seeds: int = value()
    low: float = value(NO_SEED)
    high: float = value(NO_SEED)
