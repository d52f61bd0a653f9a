"""Finding strategies: the built-ins, the user's files and installed packages, one registry.

Three sources, registered the same way (a :class:`~jiritsu.strategy.contract.Strategy` subclass
with a ``name``):

1. the built-ins (:data:`jiritsu.strategy.builtins.BUILTIN_MODULES`);
2. every ``*.py`` file (not starting with ``_``) of the directories in ``[strategies] paths``
   (relative to the config file; default ``["strategies"]``, a missing directory is no error);
3. the ``jiritsu.strategies`` entry-point group of installed packages (each entry point names a
   Strategy subclass), read only when a name is not found in 1-2 or for a full listing.

A file that fails to import is recorded with its file and line (:class:`StrategyLoadError`) and
does not stop the others: a bot whose strategy loaded fine keeps working; a bot whose strategy
cannot be found gets an error that names the broken files too. Two strategies with one name is
an error naming both sources (a user file never silently replaces a built-in).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import sys
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jiritsu.errors import UsageError
from jiritsu.strategy.contract import Strategy

ENTRY_POINT_GROUP = "jiritsu.strategies"
USER_MODULE_PREFIX = "jiritsu_user_strategies"


class StrategyLoadError(UsageError):
    """A strategy source that could not be loaded: ``where`` is ``file:line`` (or the entry
    point), ``reason`` what went wrong."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True)
class Registered:
    """One strategy and where it came from (``source``: a file, or a module for built-ins and
    entry points)."""

    strategy: Strategy
    source: str
    origin: str  # "built-in", "file" or "entry point"

    @property
    def name(self) -> str:
        return self.strategy.name


@dataclass
class Registry:
    """Strategies by name, with the sources that failed to load."""

    found: dict[str, Registered] = field(default_factory=dict)
    broken: list[StrategyLoadError] = field(default_factory=list)
    entry_points_read: bool = False

    def add(self, cls: type, source: str, origin: str) -> None:
        """Register ``cls`` (an instance is made once); a duplicate name is recorded as broken."""
        name = getattr(cls, "name", "")
        if not isinstance(name, str) or not name.isidentifier():
            where = f"{source}:{_line_of(cls)}"
            self.broken.append(StrategyLoadError(where, f"{cls.__name__} needs a name such as "
                                                 "'my_breakout' (letters, digits, _)"))  # fmt: skip
            return
        if name in self.found:
            other = self.found[name].source
            self.broken.append(StrategyLoadError(
                f"{source}:{_line_of(cls)}", f"strategy {name!r} is already defined by {other}"
            ))  # fmt: skip
            return
        self.found[name] = Registered(cls(), source, origin)

    def get(self, name: str) -> Registered:
        """The strategy called ``name``; a :class:`UnknownStrategy` says what exists and what
        failed to load."""
        if name not in self.found and not self.entry_points_read:
            self.read_entry_points()
        found = self.found.get(name)
        if found is None:
            raise UnknownStrategy(name, sorted(self.found), self.broken)
        return found

    def own_values(self, strategy: Strategy, values: Mapping[str, Any]) -> dict[str, Any]:
        """``values`` without the keys that are parameters of OTHER strategies (a bot switched
        from ema_cross to rsi_reversion may keep its fast_period; it means nothing to the new
        rule). Keys that belong to no strategy stay, so the strategy's ``Params`` rejects typos.
        """
        mine = strategy.Params.model_fields
        others = {
            name
            for reg in self.found.values()
            if reg.strategy is not strategy
            for name in reg.strategy.Params.model_fields
        }
        return {k: v for k, v in values.items() if k in mine or k not in others}

    def all(self) -> list[Registered]:
        """Every strategy, entry points included, by name."""
        if not self.entry_points_read:
            self.read_entry_points()
        return [self.found[n] for n in sorted(self.found)]

    def read_entry_points(self) -> None:
        from importlib.metadata import entry_points

        self.entry_points_read = True
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            where = f"entry point {ep.name} ({ep.value})"
            try:
                obj = ep.load()
            except Exception as exc:  # noqa: BLE001 - a broken package must not stop the rest
                self.broken.append(_load_error(exc, None, where))
                continue
            if not (isinstance(obj, type) and issubclass(obj, Strategy)):
                self.broken.append(StrategyLoadError(where, "is not a Strategy subclass"))
                continue
            self.add(obj, obj.__module__, "entry point")


class UnknownStrategy(UsageError):
    """No strategy has that name (the message lists the known ones and the broken sources)."""

    def __init__(self, name: str, known: Sequence[str], broken: Sequence[StrategyLoadError]):
        self.name = name
        msg = f"unknown strategy {name!r}; known: {', '.join(known) or 'none'}"
        if broken:
            msg += "; failed to load: " + "; ".join(str(b) for b in broken)
        super().__init__(msg)


def _line_of(cls: type) -> int:
    try:
        import inspect

        return inspect.getsourcelines(cls)[1]
    except (OSError, TypeError):
        return 0


def _load_error(exc: BaseException, path: Path | None, where: str) -> StrategyLoadError:
    """The error of a failed import, at the deepest line of ``path`` (or of any file)."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return StrategyLoadError(f"{exc.filename}:{exc.lineno}", f"SyntaxError: {exc.msg}")
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if path is not None and Path(f.filename) == path]
    if mine:
        where = f"{path}:{mine[-1].lineno}"
    elif path is not None:
        where = f"{path}:1"
    return StrategyLoadError(where, f"{type(exc).__name__}: {exc}")


def _load_file(path: Path) -> Any:
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:10]
    module_name = f"{USER_MODULE_PREFIX}.{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look the module up
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module


def _strategies_in(module: Any) -> list[type]:
    return [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, Strategy)
        and obj is not Strategy
        and obj.__module__ == module.__name__
    ]


@functools.cache
def registry(paths: tuple[str, ...] = ()) -> Registry:
    """The registry of the built-ins and the ``*.py`` files in ``paths`` (absolute
    directories), built once per process per set of paths."""
    from jiritsu.strategy.builtins import BUILTIN_MODULES

    reg = Registry()
    for module_name in BUILTIN_MODULES:
        module = importlib.import_module(module_name)
        for cls in _strategies_in(module):
            reg.add(cls, module_name, "built-in")
    for directory in paths:
        for path in sorted(Path(directory).glob("*.py")):
            if path.name.startswith("_"):
                continue
            path = path.resolve()
            try:
                module = _load_file(path)
            except Exception as exc:  # noqa: BLE001 - one broken file must not stop the rest
                reg.broken.append(_load_error(exc, path, str(path)))
                continue
            for cls in _strategies_in(module):
                reg.add(cls, str(path), "file")
    return reg


def params_problems(
    reg: Registry, strategy: Strategy, values: Mapping[str, Any]
) -> list[tuple[tuple[str | int, ...], str]]:
    """Why ``values`` are not valid parameters of ``strategy`` (key path, message)."""
    from pydantic import ValidationError

    try:
        strategy.Params.model_validate(reg.own_values(strategy, values))
    except ValidationError as exc:
        out: list[tuple[tuple[str | int, ...], str]] = []
        for error in exc.errors(include_url=False):
            loc = tuple(error["loc"])
            if error["type"] == "extra_forbidden":
                known = ", ".join(strategy.Params.model_fields) or "none"
                msg = f"{strategy.name} has no parameter {loc[-1]!r} (it has: {known})"
            else:
                msg = str(error["msg"]).removeprefix("Value error, ")
            out.append((loc, msg))
        return out
    return []


def numeric_kind(strategy: Strategy, name: str) -> str | None:
    """ "int" / "float" for a numeric parameter of ``strategy`` (what a grid may vary)."""
    info = strategy.Params.model_fields.get(name)
    if info is None:
        return None
    kind = info.annotation
    if kind is bool:
        return None
    return "int" if kind is int else "float" if kind is float else None


def strategy_paths(settings: Any) -> tuple[str, ...]:
    """The configured strategy directories (absolute after validation)."""
    return tuple(str(p) for p in settings.strategies.paths)


def resolve(settings: Any, bot: Any) -> tuple[Strategy, Any]:
    """The bot's strategy and its validated parameters."""
    reg = registry(strategy_paths(settings))
    strategy = reg.get(bot.strategy_params.rule).strategy
    values = reg.own_values(strategy, bot.strategy_params.strategy_values)
    return strategy, strategy.Params.model_validate(values)


def describe(registered: Iterable[Registered]) -> list[dict[str, Any]]:
    """What ``jiritsu strategies list`` shows: name, origin, source and each parameter with
    its type, default and bounds."""
    out = []
    for reg in registered:
        params = []
        for pname, info in reg.strategy.Params.model_fields.items():
            kind = getattr(info.annotation, "__name__", str(info.annotation))
            params.append(
                {"name": pname, "type": kind, "default": info.default, "bounds": _bounds(info)}
            )
        doc = type(reg.strategy).__doc__ or sys.modules[type(reg.strategy).__module__].__doc__
        summary = (doc or "").strip().splitlines()[0] if doc else ""
        out.append({"name": reg.name, "origin": reg.origin, "source": reg.source,
                    "summary": summary, "params": params})  # fmt: skip
    return out


def _bounds(info: Any) -> str:
    """``1 <= x <= 1000`` from a field's ge/gt/le/lt constraints ("" without any)."""
    lo = hi = ""
    for m in info.metadata:
        for attr, text in (("ge", "<="), ("gt", "<")):
            if getattr(m, attr, None) is not None:
                lo = f"{getattr(m, attr)} {text} "
        for attr, text in (("le", "<="), ("lt", "<")):
            if getattr(m, attr, None) is not None:
                hi = f" {text} {getattr(m, attr)}"
    return f"{lo}x{hi}" if lo or hi else ""
