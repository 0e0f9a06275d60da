"""Job and strategy configs: torch-free dataclasses that check themselves.

The web process checks a config when it is asked for and the worker trains from the same class,
so a key, its type and its range are written once. `config_from_dict` refuses unknown keys and
wrong types, naming them; each dataclass's `__post_init__` checks its ranges.
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A config value that cannot be used; `field` names it as the caller spelt it (e.g. "config.lam")."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


def type_words(kind: Any) -> str:
    names = {
        int: "a whole number",
        float: "a number",
        bool: "true or false",
        str: "a string",
        dict: "an object",
        type(None): "null",
    }
    options = typing.get_args(kind) if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union else (kind,)
    return " or ".join(names.get(option, getattr(option, "__name__", str(option))) for option in options)


def value_fits(value: Any, kind: Any) -> bool:
    """JSON's view of types: a bool is not a number, a whole number is a float too (if a float can hold it)."""
    options = typing.get_args(kind) if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union else (kind,)
    for option in options:
        if option is type(None) and value is None:
            return True
        if option is bool and isinstance(value, bool):
            return True
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return True
        if option is float and isinstance(value, int | float) and not isinstance(value, bool):
            if isinstance(value, float) or abs(value) <= sys.float_info.max:  # a float can hold it
                return True
        if option is str and isinstance(value, str):
            return True
        if option is dict and isinstance(value, dict):
            return True
    return False


def config_from_dict(cls: type[T], data: dict | None, *, prefix: str = "config") -> T:
    """Build `cls` from plain JSON data: unknown keys and wrong types are refused, naming them."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix} must be an object.", field=prefix)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"Unknown {prefix} key(s) {', '.join(unknown)}; known: {', '.join(fields)}.", field=prefix)
    hints = typing.get_type_hints(cls)
    values = {}
    for name, value in data.items():
        if not value_fits(value, hints[name]):
            wanted = fields[name].metadata.get("wanted") or type_words(hints[name])
            raise ConfigError(f"{prefix}.{name} must be {wanted}, not {value!r}.", field=f"{prefix}.{name}")
        values[name] = value
    try:
        built = cls(**values)  # checked once, with the values as given, so a refusal echoes them (0, not 0.0)
    except ConfigError as exc:
        # `require` names the field alone ("lam must be ..."); the caller's name for it leads.
        raise ConfigError(f"{prefix}.{exc}", field=f"{prefix}.{exc.field}") from None
    for name, value in values.items():
        if hints[name] is float:
            # A whole number given for a number is stored as a float. Set in place (frozen classes
            # allow it this way), not by dataclasses.replace, which would run every check again.
            object.__setattr__(built, name, float(value))
    return built


def whole_number(default: int, low: int, high: int) -> Any:
    """A dataclass field holding a whole number from `low` to `high`; `check_whole_numbers` checks it.

    Its wrong type and its wrong value are refused in the same words ("a whole number from 1 to 1000").
    """
    return dataclasses.field(default=default, metadata={"wanted": f"a whole number from {low} to {high}", "range": (low, high)})


def check_whole_numbers(config: Any) -> None:
    """For `__post_init__`: refuse any `whole_number` field outside its range (or not whole)."""
    for field in dataclasses.fields(config):
        if "range" in field.metadata:
            low, high = field.metadata["range"]
            value = getattr(config, field.name)
            whole = isinstance(value, int) and not isinstance(value, bool)
            require(whole and low <= value <= high, field.name, field.metadata["wanted"], value)


def require(ok: bool, name: str, wanted: str, value: Any) -> None:
    """For `__post_init__`: refuse `value` of field `name` unless `ok`, saying what was wanted."""
    if not ok:
        raise ConfigError(f"{name} must be {wanted}, not {value!r}.", field=name)
