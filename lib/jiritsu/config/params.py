"""Tunable parameters: ``BOT.section.key`` names a numeric sub-bot parameter (a kernel key or the
strategy's own), :class:`ParamRange` an inclusive grid over it; the checks the optimizer and the
tuner's overlay share."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, TypeAdapter, ValidationError, model_validator
from pydantic.fields import FieldInfo

from jiritsu.config.base import Dec, KeyPath, Model, raise_if
from jiritsu.config.bots import DEFAULT_SUB_BOTS, StrategiesSettings, StrategyParams, SubBot
from jiritsu.config.schema import clean_message, unwrap_annotation

MAX_RANGE_VALUES = 10_000  # a grid axis longer than this is a typo in ``step``, not a plan
_NOT_TUNABLE = frozenset({"member_id"})  # numeric, but an identity rather than a parameter


class ParamRange(Model):
    start: Dec
    end: Dec
    step: Dec

    @model_validator(mode="after")
    def _sane(self) -> ParamRange:
        problems: list[tuple[KeyPath, str]] = []
        if not self.start < self.end:
            problems.append((("end",), f"must be greater than start ({self.start})"))
        if not self.step > 0:
            problems.append((("step",), "must be greater than 0"))
        elif self.start < self.end and self.count() > MAX_RANGE_VALUES:
            problems.append(
                (("step",), f"gives {self.count()} values (more than {MAX_RANGE_VALUES})")
            )
        raise_if(problems)
        return self

    def count(self) -> int:
        """How many values the range expands to."""
        return int((self.end - self.start) // self.step) + 1

    def values(self, *, integer: bool = False) -> list[Decimal] | list[int]:
        """Every value from start to end inclusive, by step, in exact decimal arithmetic."""
        return expand_range(self, integer=integer)


def expand_range(rng: ParamRange, *, integer: bool = False) -> list[Decimal] | list[int]:
    """``{start=0.5, end=2.0, step=0.1}`` -> 16 values, no float drift; ints for int params."""
    values = [rng.start + i * rng.step for i in range(rng.count())]
    if integer:
        return [int(v) for v in values]
    return values


def split_param_key(key: str) -> tuple[str, tuple[str, ...]]:
    """``"SubBot-B.strategy_params.sl_ratio"`` -> ``("SubBot-B", ("strategy_params", ...))``."""
    bot, _, rest = key.partition(".")
    path = tuple(rest.split(".")) if rest else ()
    if not bot or not path or any(not p for p in path):
        raise ValueError(
            "must look like BOTNAME.section.key, e.g. SubBot-B.strategy_params.sl_ratio"
        )
    return bot, path


@cache
def _tunable_field(path: tuple[str, ...]) -> FieldInfo | None:
    model: Any = SubBot
    info: FieldInfo | None = None
    for seg in path:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        info = model.model_fields.get(seg)
        if info is None:
            return None
        model = unwrap_annotation(info.annotation)
    if info is None or path[-1] in _NOT_TUNABLE or model not in (int, float, Decimal):
        return None
    return info


def tunable_kind(path: Sequence[str]) -> Literal["int", "float", "decimal"] | None:
    """The numeric kind of a sub-bot field (path below the bot), None if not tunable."""
    info = _tunable_field(tuple(path))
    if info is None:
        return None
    kind = unwrap_annotation(info.annotation)
    return "int" if kind is int else "float" if kind is float else "decimal"


@cache
def _field_adapter(path: tuple[str, ...]) -> TypeAdapter[Any]:
    info = _tunable_field(path)
    assert info is not None
    base = unwrap_annotation(info.annotation)
    args: tuple[Any, ...] = (base, *info.metadata)
    annotated: Any = Annotated[args] if info.metadata else base  # Annotated[base, *metadata]
    return TypeAdapter(annotated)


def param_key_problem(key: str, bot_names: Iterable[str] | None) -> str | None:
    """Why ``key`` does not name a tunable numeric sub-bot parameter (None if it does)."""
    try:
        bot, path = split_param_key(key)
    except ValueError as exc:
        return str(exc)
    if bot_names is not None and bot not in set(bot_names):
        return f"no sub-bot named {bot!r}"
    if is_strategy_key(path):
        return None  # the bot's strategy decides (Settings._param_bots)
    if _tunable_field(path) is None:
        dotted = ".".join(path)
        if _field_exists(path):
            return f"{dotted!r} is not a numeric parameter and cannot be tuned"
        return f"sub-bots have no parameter {dotted!r}"
    return None


def is_strategy_key(path: Sequence[str]) -> bool:
    """``strategy_params.X`` where X is the strategy's own parameter, not a kernel key."""
    return (
        len(path) == 2
        and path[0] == "strategy_params"
        and path[1] not in StrategyParams.model_fields
    )


def _field_exists(path: tuple[str, ...]) -> bool:
    model: Any = SubBot
    for seg in path:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return False
        info = model.model_fields.get(seg)
        if info is None:
            return False
        model = unwrap_annotation(info.annotation)
    return True


def param_value_problem(path: Sequence[str], value: Any) -> str | None:
    """Why ``value`` is not allowed for the sub-bot field at ``path`` (None if it is)."""
    try:
        _field_adapter(tuple(path)).validate_python(value)
    except ValidationError as exc:
        return "; ".join(clean_message(e) for e in exc.errors(include_url=False))
    return None


def range_problems(
    key: str, rng: ParamRange, bot_names: Iterable[str] | None
) -> list[tuple[KeyPath, str]]:
    problem = param_key_problem(key, bot_names)
    if problem:
        return [((key,), problem)]
    _, path = split_param_key(key)
    if is_strategy_key(path):
        return []  # checked against the bot's strategy by Settings._param_bots
    problems: list[tuple[KeyPath, str]] = []
    if tunable_kind(path) == "int":
        for name in ("start", "end", "step"):
            if getattr(rng, name) != getattr(rng, name).to_integral_value():
                problems.append(((key, name), "must be a whole number for an integer parameter"))
    if not problems:
        for name in ("start", "end"):
            value = getattr(rng, name)
            value = int(value) if tunable_kind(path) == "int" else value
            msg = param_value_problem(path, value)
            if msg:
                problems.append(((key, name), f"{value} is not allowed for this parameter: {msg}"))
    return problems


def set_bot_param(data: dict[str, Any], key: str, value: Any) -> KeyPath:
    """Set ``BOT.section.key`` in raw (unvalidated) settings data; returns the full key path.

    Raises ``ValueError`` when the bot or the field does not exist.
    """
    bots = data.get("sub_bots")
    if bots is None:
        bots = data["sub_bots"] = copy.deepcopy(DEFAULT_SUB_BOTS)
    problem = param_key_problem(key, None)
    if problem:
        raise ValueError(problem)
    bot, path = split_param_key(key)
    index = next(
        (i for i, b in enumerate(bots) if isinstance(b, dict) and b.get("name") == bot), None
    )
    if index is None:
        raise ValueError(f"no sub-bot named {bot!r}")
    node = bots[index]
    for seg in path[:-1]:
        child = node.get(seg)
        if not isinstance(child, dict):
            child = node[seg] = {}
        node = child
    node[path[-1]] = value
    return ("sub_bots", index, *path)


def strategy_range_problems(
    key: str, rng: ParamRange, data: Mapping[str, Any]
) -> list[tuple[KeyPath, str]]:
    """A range over a strategy's own parameter: numeric in the bot's strategy, ends allowed."""
    from jiritsu.strategy.registry import numeric_kind, params_problems, registry

    bot_name, path = split_param_key(key)
    if not is_strategy_key(path):
        return []
    bot = next((b for b in data["sub_bots"] if b.name == bot_name), None)
    strategy = bot_strategy(bot, data) if bot is not None else None
    if bot is None or strategy is None:
        return []
    kind = numeric_kind(strategy, path[1])
    where = ("param_ranges", key)
    if kind is None:
        has = "is not a numeric parameter" if path[1] in strategy.Params.model_fields else (
            "has no parameter")  # fmt: skip
        return [(where, f"strategy {strategy.name!r} {has} {path[1]!r}")]
    reg = registry(tuple((data.get("strategies") or StrategiesSettings()).paths))
    problems: list[tuple[KeyPath, str]] = []
    for name in ("start", "end", "step"):
        v = getattr(rng, name)
        if kind == "int" and v != v.to_integral_value():
            problems.append(((*where, name), "must be a whole number for an integer parameter"))
    if problems:
        return problems
    for name in ("start", "end"):
        v = getattr(rng, name)
        values = {**bot.strategy_params.strategy_values, path[1]: int(v) if kind == "int" else v}
        for _loc, msg in params_problems(reg, strategy, values):
            problems.append(((*where, name), f"{v} is not allowed for this parameter: {msg}"))
    return problems


def bot_strategy(bot: SubBot, data: Mapping[str, Any]) -> Any:
    """The bot's strategy object (None when it cannot be found: reported elsewhere)."""
    from jiritsu.errors import UsageError
    from jiritsu.strategy.registry import registry

    strategies = data.get("strategies") or StrategiesSettings()
    try:
        return registry(tuple(strategies.paths)).get(bot.strategy_params.rule).strategy
    except UsageError:
        return None
