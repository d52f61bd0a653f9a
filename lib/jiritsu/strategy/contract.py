"""The public strategy contract: what a user (or a built-in) implements to give a bot its signal.

A strategy is a subclass of :class:`Strategy` with a ``name`` (what ``strategy_params.rule``
names in config.toml), a pydantic ``Params`` model (subclass :class:`StrategyParams`: fields with
defaults and bounds; the bot's other ``strategy_params`` keys are validated by it, and the tuner
grids any numeric field) and ``signals(bars, params)``, vectorised over the bot's CLOSED bars:

- ``bars`` is a :class:`Bars` (numpy float64 arrays ``ts``, ``open``, ``high``, ``low``,
  ``close``, ``volume``, oldest first, with memoised indicators such as ``bars.ema(20)``);
- it returns ``(action, confidence)``: int8 actions in {-1, 0, 1} (SELL, HOLD, BUY) and float64
  confidences in [0, 1], one per bar. Element ``i`` is decided at bar ``i``'s close and may use
  bars ``<= i`` only (``jiritsu strategies check`` verifies it).

Everything else -- sizing, split entries, TP/SL, exits, fees, fills, the risk gate holding the
confidence against ``min_confidence`` -- stays in the kernel, which reads these arrays, so one
implementation serves live ticks, replay, backtests, tuning and simulation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:  # numpy is imported where arrays are made: validating a config needs none
    import numpy as np

HOLD = 0
BUY = 1
SELL = -1
ACTION_NAMES: dict[int, Literal["BUY", "SELL", "HOLD"]] = {BUY: "BUY", SELL: "SELL", HOLD: "HOLD"}
ACTION_CODES = {"BUY": BUY, "SELL": SELL, "HOLD": HOLD}

COMPILED_FROM = 5_000  # series at least this long use the numba indicators (identical values)


class StrategyParams(BaseModel):
    """Base of a strategy's ``Params``: unknown keys are errors (a typo must not go unnoticed)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(eq=False)
class Bars:
    """A bot's closed bars of its timeframe, oldest first, with memoised indicators.

    The indicator helpers compute :mod:`jiritsu.indicators` once per (name, period) and share the
    result with every later caller of the same ``Bars`` (a tuning grid reuses one ``Bars`` for
    all its combinations). A value at index ``i`` uses bars ``<= i`` only.
    """

    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    _memo: dict[tuple[Any, ...], Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_columns(cls, cols: dict[str, np.ndarray]) -> Bars:
        """Bars from a ``{ts, open, high, low, close, volume}`` mapping of arrays."""
        import numpy as np

        def f64(name: str) -> np.ndarray:
            return np.require(cols[name], dtype=np.float64, requirements=["C"])

        volume = f64("volume") if "volume" in cols else np.zeros(len(cols["close"]))
        return cls(f64("ts"), f64("open"), f64("high"), f64("low"), f64("close"), volume)

    def __len__(self) -> int:
        return int(self.close.shape[0])

    def head(self, n: int) -> Bars:
        """The first ``n`` bars (a fresh memo: indicators are recomputed on the prefix)."""
        ts, o, h, lo, c, v = (a[:n] for a in self._columns())
        return Bars(ts, o, h, lo, c, v)

    def tail_from(self, start: int) -> Bars:
        """The bars from index ``start`` on (as if history began there)."""
        ts, o, h, lo, c, v = (a[start:] for a in self._columns())
        return Bars(ts, o, h, lo, c, v)

    def _columns(self) -> tuple[np.ndarray, ...]:
        return (self.ts, self.open, self.high, self.low, self.close, self.volume)

    @property
    def indicators(self) -> Any:
        """The :mod:`jiritsu.indicators` functions (``ema(x, n)``, ``rsi``, ``atr``, ``adx``),
        numba-compiled for long series; for indicators of derived series."""
        from jiritsu import indicators

        return indicators.compiled() if len(self) >= COMPILED_FROM else indicators

    def memo(self, key: tuple[Any, ...], compute: Any) -> Any:
        """``compute()`` once per ``key`` for these bars (for a strategy's own derived arrays)."""
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = compute()
        return found

    def memo_keys(self) -> list[tuple[Any, ...]]:
        return list(self._memo)

    def forget(self, key: tuple[Any, ...]) -> None:
        """Drop a memoised value (a grid drops the signals of a parameter set it ran once)."""
        self._memo.pop(key, None)

    def ema(self, period: int) -> np.ndarray:
        """EMA of the closes (NaN during the warm-up)."""
        return self.memo(("ema", int(period)), lambda: self.indicators.ema(self.close, int(period)))

    def rsi(self, period: int) -> np.ndarray:
        """Wilder's RSI of the closes."""
        return self.memo(("rsi", int(period)), lambda: self.indicators.rsi(self.close, int(period)))

    def atr(self, period: int) -> np.ndarray:
        """Wilder's average true range."""
        return self.memo(
            ("atr", int(period)),
            lambda: self.indicators.atr(self.high, self.low, self.close, int(period)),
        )

    def adx(self, period: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Wilder's (ADX, +DI, -DI)."""
        return self.memo(
            ("adx", int(period)),
            lambda: self.indicators.adx(self.high, self.low, self.close, int(period)),
        )


class Strategy:
    """Base class of every strategy, built-in or the user's (see the module docstring)."""

    name: ClassVar[str] = ""
    Params: ClassVar[type[StrategyParams]] = StrategyParams

    def signals(self, bars: Bars, params: Any) -> tuple[np.ndarray, np.ndarray]:
        """(int8 action, float64 confidence) per bar; element ``i`` from bars ``<= i`` only."""
        raise NotImplementedError

    def decision(self, bars: Bars, params: Any, i: int) -> tuple[int, float]:
        """(action, confidence) at bar ``i`` (the memoised signals: cheap in ``explain``)."""
        action, confidence = checked_signals(self, bars, params)
        return int(action[i]), float(confidence[i])

    def explain(self, bars: Bars, params: Any, i: int) -> str:
        """A one-line reason for the decision at bar ``i`` (the decisions table, Discord and the
        Gemini prompt show it). Override it to name the numbers behind the decision."""
        a, c = self.decision(bars, params, i)
        if a == HOLD:
            return f"{self.name} HOLD"
        return f"{self.name} {ACTION_NAMES[a]} ({c:.2f})"

    def indicators(self, bars: Bars, params: Any) -> dict[str, np.ndarray]:
        """Named per-bar values an advisor sees beside the signal (optional; none by default)."""
        return {}


def checked_signals(strategy: Strategy, bars: Bars, params: Any) -> tuple[np.ndarray, np.ndarray]:
    """``strategy.signals`` with its promises enforced, computed once per (strategy, params)
    for these bars: a wrong shape, dtype or range is a :class:`StrategyOutputError` naming the
    strategy and the first bad bar, never a silent trade. Returns (int8 actions, float64
    confidences; HOLD bars get confidence 0)."""
    key = ("signals", type(strategy), params)
    return bars.memo(key, lambda: _checked(strategy, bars, params))


def _checked(strategy: Strategy, bars: Bars, params: Any) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np

    out = strategy.signals(bars, params)
    if not (isinstance(out, tuple) and len(out) == 2):
        raise StrategyOutputError(f"{strategy.name}: signals() must return (action, confidence)")
    action = np.asarray(out[0])
    confidence = np.asarray(out[1], dtype=np.float64)
    n = len(bars)
    if action.shape != (n,) or confidence.shape != (n,):
        raise StrategyOutputError(
            f"{strategy.name}: signals() returned shapes {action.shape} and {confidence.shape} "
            f"for {n} bars"
        )
    if action.dtype != np.int8:  # anything else may hold 0.5, 2 or NaN
        bad = ~((action == SELL) | (action == HOLD) | (action == BUY))
        if bad.any():
            _refuse(strategy, int(np.argmax(bad)), action, confidence)
        action = action.astype(np.int8)
    elif n and (action.min() < SELL or action.max() > BUY):
        _refuse(strategy, int(np.argmax((action < SELL) | (action > BUY))), action, confidence)
    acting = np.flatnonzero(action != 0)  # via a bool mask: 5x faster than on int8
    conf = confidence[acting]
    if not ((conf >= 0.0) & (conf <= 1.0)).all():
        _refuse(strategy, int(acting[np.argmax(~((conf >= 0.0) & (conf <= 1.0)))]), action,
                confidence)  # fmt: skip
    if np.count_nonzero(confidence) == np.count_nonzero(conf):  # NaN counts as nonzero
        return action, confidence  # HOLD bars hold 0 already: no 4 MB copy per year of minutes
    clean = np.zeros(n, dtype=np.float64)  # HOLD bars get confidence 0
    clean[acting] = conf
    return action, clean


def _refuse(strategy: Strategy, i: int, action: Any, confidence: Any) -> None:
    raise StrategyOutputError(
        f"{strategy.name}: bar {i} has action {action[i]!r} confidence {confidence[i]!r}; "
        "actions must be -1, 0 or 1 and confidences in [0, 1]"
    )


class StrategyOutputError(ValueError):
    """A strategy broke the contract (shape, dtype or range of its signals)."""
