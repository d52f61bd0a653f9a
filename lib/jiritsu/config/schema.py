"""Walking the schema by key path, and pydantic's errors as ``(key path, message)`` pairs that
name the dotted key, suggest the key meant, and never echo a secret."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from jiritsu.config.base import KeyPath, PathSeg, Problems


def unwrap_annotation(annotation: Any) -> Any:
    """Strip ``Annotated[...]`` and ``Optional[...]`` down to the underlying type."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return unwrap_annotation(get_args(annotation)[0])
    if origin in (Union, UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return unwrap_annotation(args[0])
    return annotation


def is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def child_annotation(annotation: Any, seg: PathSeg) -> Any:
    """Annotation of ``seg`` inside a value of type ``annotation`` (None if there is none)."""
    kind = unwrap_annotation(annotation)
    if is_model(kind):
        info = kind.model_fields.get(seg) if isinstance(seg, str) else None
        return info.annotation if info is not None else None
    origin = get_origin(kind)
    if origin is list and isinstance(seg, int):
        return get_args(kind)[0]
    if origin is dict and isinstance(seg, str):
        return get_args(kind)[1]
    return None


def annotation_at(path: Sequence[PathSeg], root: type[BaseModel]) -> Any:
    """The annotation of the value at ``path`` below ``root`` (the :class:`Settings`; None if
    unknown)."""
    annotation: Any = root
    for seg in path:
        annotation = child_annotation(annotation, seg)
        if annotation is None:
            return None
    return annotation


# --------------------------------------------------------------------------- error messages

_TABLE_TYPES = {"model_type", "model_attributes_type", "dict_type"}
_ECHO_TYPES = {
    "int_parsing", "int_type", "int_from_float", "float_parsing", "float_type", "bool_parsing",
    "bool_type", "string_type", "decimal_parsing", "decimal_type", "literal_error",
    "greater_than", "greater_than_equal", "less_than", "less_than_equal", "finite_number",
    "string_pattern_mismatch", "string_too_short", "string_too_long", "list_type",
}  # fmt: skip


def clean_message(error: Mapping[str, Any]) -> str:
    """A pydantic error message without the 'Value error, ' noise."""
    msg = str(error.get("msg", ""))
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    kind = error.get("type")
    if kind == "missing":
        return "required key is missing"
    if kind in _TABLE_TYPES:
        return "must be a table"
    if kind == "list_type":
        return "must be a list"
    return msg


def _echo(path: KeyPath, value: Any) -> str:
    last = next((s for s in reversed(path) if isinstance(s, str)), "")
    if last.endswith("_env") or last == "db_url":
        return ""  # may hold a pasted secret or a password
    if isinstance(value, bool):
        return f" (got {str(value).lower()})"
    if isinstance(value, (int, float, Decimal)):
        return f" (got {value})"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return f" (got {json.dumps(text)})"
    return ""


def _unknown_key_message(path: KeyPath, root: type[BaseModel]) -> str:
    import difflib

    parent = annotation_at(path[:-1], root)
    kind = unwrap_annotation(parent)
    msg = "unknown key"
    if is_model(kind) and isinstance(path[-1], str):
        close = difflib.get_close_matches(path[-1], list(kind.model_fields), n=1, cutoff=0.6)
        if close:
            msg += f"; did you mean {close[0]!r}?"
    return msg


def validation_problems(exc: ValidationError, root: type[BaseModel]) -> list[tuple[KeyPath, str]]:
    """One (key path below ``root``, human message) per pydantic error, :class:`Problems`
    unpacked."""
    out: list[tuple[KeyPath, str]] = []
    for error in exc.errors(include_url=False):
        loc: KeyPath = tuple(error["loc"])
        inner = (error.get("ctx") or {}).get("error")
        if isinstance(inner, Problems):
            out.extend(((*loc, *rel), msg) for rel, msg in inner.problems)
            continue
        if error["type"] == "extra_forbidden":
            out.append((loc, _unknown_key_message(loc, root)))
            continue
        msg = clean_message(error)
        if error["type"] in _ECHO_TYPES:
            msg += _echo(loc, error.get("input"))
        out.append((loc, msg))
    return out
