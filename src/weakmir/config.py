"""Recipes: YAML files that fill the config dataclasses, with command-line overrides.

A recipe is the whole configuration of one run, one YAML mapping per
dataclass (nested dataclasses are nested mappings)::

    cfg, resolved = load_recipe(ScorePreset, "score-supervised", "quick", ["train.steps=[20,10,5]"])

* ``recipes/<method>/<name>.yaml`` inside the package are the presets
  (``tiny``: the test suite's seconds-long run; ``quick``: 2 CPU cores;
  ``paper``: the paper's settings); any other path is read as a recipe file.
* Keys must be fields of the dataclass: an unknown key is a one-line error
  naming the key and the file. Values are checked against the field's type
  (lists become tuples where the field is a tuple).
* ``--set key.sub=value`` overrides one value; the value is read as YAML
  (``3``, ``0.5``, ``[1, 2]``, ``null``, ``frame``).
* :func:`to_dict` gives the resolved recipe (JSON- and YAML-safe), which goes
  into every checkpoint and ``results.json``.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from pathlib import Path

import yaml

from .errors import WeakmirError

_DECIMAL = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")  # a number, not nan / inf

RECIPES = Path(__file__).resolve().parent / "recipes"


def recipe_path(method: str, name: str) -> Path:
    """The packaged preset ``recipes/<method>/<name>.yaml``, or ``name`` itself when it is a file."""
    p = Path(name)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise WeakmirError(f"{p}: no such recipe file; give a YAML file or one of "
                               f"{', '.join(available(method)) or 'the packaged presets'}")
        return p
    packaged = RECIPES / method / f"{name}.yaml"
    if not packaged.is_file():
        raise WeakmirError(f"unknown recipe {name!r} for {method}; use one of {', '.join(available(method))} "
                           "or a YAML file")
    return packaged


def available(method: str) -> list[str]:
    """Names of the packaged presets of ``method``."""
    d = RECIPES / method
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []


def read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise WeakmirError(f"{path}: not valid YAML{where}; fix the file") from e
    except OSError as e:
        raise WeakmirError(f"{path}: cannot read the recipe ({e.strerror}); check the path") from e
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise WeakmirError(f"{path}: a recipe is a YAML mapping of keys to values, not a {type(data).__name__}")
    return data


def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def _check_value(hint, value, key: str, where: str):
    """``value`` converted to the field type ``hint`` (lists -> tuples), or a one-line error."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _check_value(a, value, key, where)
            except WeakmirError as e:
                errors.append(e)
        raise errors[0]
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise WeakmirError(f"{where}: {key} must be a mapping of {hint.__name__}'s keys, not {value!r}")
        return from_dict(hint, value, where, prefix=f"{key}.")
    base = origin or hint
    ok = {
        bool: lambda v: isinstance(v, bool),
        int: lambda v: isinstance(v, int) and not isinstance(v, bool),
        float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        str: lambda v: isinstance(v, str),
        tuple: lambda v: isinstance(v, (list, tuple)),
        list: lambda v: isinstance(v, (list, tuple)),
        dict: lambda v: isinstance(v, dict),
    }.get(base)
    if ok is None:  # a type we do not check (Any, ...)
        return value
    if base is float and isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
        value = float(value)  # YAML 1.1 reads a number without a dot (5e-5, --set lr=1e-3) as a string
    if not ok(value):
        name = getattr(base, "__name__", str(base))
        raise WeakmirError(f"{where}: {key} must be {'a' if name != 'int' else 'an'} {name}, not {value!r}")
    if base is float:
        return float(value)
    if base is tuple:
        return tuple(value)
    if base is list:
        return list(value)
    return value


def from_dict(cls, data: dict, where: str = "recipe", prefix: str = ""):
    """An instance of the dataclass ``cls`` from ``data``; missing keys keep their defaults, unknown keys
    and values of the wrong type are errors naming the key and ``where`` (the file)."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = _hints(cls)
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise WeakmirError(f"{where}: unknown key {prefix + unknown[0]!r} for {cls.__name__}; known keys: "
                           f"{', '.join(fields)}")
    kwargs = {k: _check_value(hints[k], v, f"{prefix}{k}", where) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise WeakmirError(f"{where}: {e}") from e


def to_dict(obj) -> dict:
    """The dataclass ``obj`` as plain data (tuples as lists): what recipes and results.json hold."""
    def plain(v):
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v

    return plain(dataclasses.asdict(obj))


def apply_sets(data: dict, sets, cls=None, where: str = "--set") -> dict:
    """``data`` with each ``key.sub=value`` of ``sets`` applied (value read as YAML). With ``cls``, a key
    path that is not a field of it (or of its nested dataclasses) is an error naming the key."""
    import copy

    data = copy.deepcopy(data)
    for item in sets or ():
        if "=" not in item:
            raise WeakmirError(f"{where} {item!r}: give key=value, e.g. --set train.steps=[20,10,5]")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        parts = key.strip().split(".")
        if not all(parts):
            raise WeakmirError(f"{where} {item!r}: empty key; give key.sub=value")
        node, kind = data, cls
        for i, p in enumerate(parts):
            if kind is not None and dataclasses.is_dataclass(kind):
                names = [f.name for f in dataclasses.fields(kind)]
                if p not in names:
                    raise WeakmirError(f"{where} {key}: unknown key {'.'.join(parts[:i + 1])!r}; known keys "
                                       f"there: {', '.join(names)}")
                hint = _hints(kind)[p]
                kind = hint if dataclasses.is_dataclass(hint) else None
            else:
                kind = None
            if i == len(parts) - 1:
                node[p] = value
            else:
                if not isinstance(node.get(p), dict):
                    node[p] = {}
                node = node[p]
    return data


def load_recipe(cls, method: str, name: str, sets=()) -> tuple:
    """``(config, resolved dict, path)``: the recipe ``name`` of ``method`` (a packaged preset or a
    YAML file) with ``sets`` applied, as an instance of ``cls``."""
    path = recipe_path(method, name)
    data = apply_sets(read_yaml(path), sets, cls)
    where = f"{path}" + (" with --set " + " ".join(sets) if sets else "")
    cfg = from_dict(cls, data, where)
    return cfg, to_dict(cfg), path


__all__ = ["RECIPES", "recipe_path", "available", "read_yaml", "from_dict", "to_dict", "apply_sets", "load_recipe"]
