"""Run a bot's real strategy over stored 1-minute candles: :func:`jiritsu.strategy.driver.simulate`.

The backtester owns no trading logic. It builds the kernel's inputs
(:class:`jiritsu.strategy.inputs.SimInputs`: the bot's timeframe resampled with polars, its
indicators, the strategy's signals, the slippage volatility -- the same functions
:func:`jiritsu.strategy.inputs.prepare` calls, and a test holds the arrays equal) and calls the
strategy kernel's ``simulate`` -- the ``manage``/``decide`` functions the live tick calls,
executed through the shared fill model (:mod:`jiritsu.sim.fills`) -- compiled by numba. It does
not call ``inputs.run`` itself because that compiles without numba's disk cache (``cache=False``)
and would cost ~20 s in every process.

Sharing: a :class:`CandleArrays` holds one symbol's minutes and, per timeframe, one
:class:`~jiritsu.strategy.contract.Bars` whose indicators and strategy signals are memoised, so a
grid computes each indicator once per period and each strategy's signals once per distinct set
of the strategy's own parameters (a grid over ``sl_ratio`` computes the signals once).

Compile cache: the kernel is compiled with ``cache=True`` into a directory named after a hash of
its sources (:mod:`jiritsu.strategy.jitcache`: an upgrade never loads old machine code) under the
strategy package's ``__pycache__`` or, when that directory is read-only, under
``NUMBA_CACHE_DIR``, which :func:`ensure_cache_dir` points at ``<data_dir>/numba-cache`` unless
already set. The first process compiles (about 20 s); later ones load the machine code (under a
second).

No lookahead: decisions at a bar close use bars closed by then (the strategy's signal at bar
``k`` <= the newest closed bar, from bars <= ``k``), and their orders fill on a later 1-minute
bar (the kernel's bar protocol), so candles after ``t`` cannot change anything decided up to
``t``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from jiritsu.backtest.metrics import Metrics, compute_metrics

if TYPE_CHECKING:
    import polars as pl

    from jiritsu.config.settings import Settings
    from jiritsu.market.data import MarketData
    from jiritsu.strategy.contract import Bars

MINUTE_MS = 60_000
FILL_KINDS = ("leg", "exit", "take_profit", "stop_loss")
INITIAL_ROWS = 4096


def f64(a: Any) -> np.ndarray:
    """A C-contiguous, WRITABLE float64 array: one numba signature for every caller (a
    read-only view of a polars frame would compile, and cache, a second specialisation)."""
    return np.require(a, dtype=np.float64, requirements=["C", "W"])


def ensure_cache_dir(data_dir: Path | None) -> None:
    """Point numba's cache at ``<data_dir>/numba-cache`` when the package directory is not
    writable (an installed, read-only tree) and ``NUMBA_CACHE_DIR`` is unset. Must run before
    numba is first imported to take effect."""
    if os.environ.get("NUMBA_CACHE_DIR") or data_dir is None:
        return
    pkg = Path(__file__).resolve().parent.parent / "strategy"
    if os.access(pkg, os.W_OK):
        return
    target = Path(data_dir) / "numba-cache"
    target.mkdir(parents=True, exist_ok=True)
    os.environ["NUMBA_CACHE_DIR"] = str(target)


def kernels() -> Any:
    """The compiled strategy kernel (disk-cached)."""
    from jiritsu.strategy.jit import compiled

    return compiled(cache=True)


@dataclass
class CandleArrays:
    """One symbol's 1-minute candles as arrays, with per-timeframe bars and indicators cached."""

    symbol: str
    frame: pl.DataFrame
    ts: np.ndarray = field(init=False)  # float64 bar opens (ms): the kernel's time type
    open: np.ndarray = field(init=False)
    high: np.ndarray = field(init=False)
    low: np.ndarray = field(init=False)
    close: np.ndarray = field(init=False)
    _bars: dict[str, Bars] = field(init=False, default_factory=dict)
    _ts_int: np.ndarray | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        from jiritsu.market.frames import to_numpy

        cols = to_numpy(self.frame)
        self.ts = f64(cols["ts"])
        for name in ("open", "high", "low", "close"):
            setattr(self, name, f64(cols[name]))

    def __getstate__(self) -> dict[str, Any]:
        # ship to worker processes without the caches (each worker builds its own)
        state = dict(self.__dict__)
        state["_bars"] = {}
        state["_ts_int"] = None
        return state

    def bars(self, timeframe: str) -> Bars:
        """The timeframe's bars (resampled once; a missing bucket stays missing), whose memo
        holds the indicators and signals every run on this data shares."""
        found = self._bars.get(timeframe)
        if found is None:
            from jiritsu.market.frames import resample, to_numpy
            from jiritsu.strategy.contract import Bars

            frame = self.frame if timeframe == "1" else resample(self.frame, timeframe)
            cols = to_numpy(frame)
            found = Bars.from_columns({k: f64(v) for k, v in cols.items()})
            self._bars[timeframe] = found
        return found

    def signal_keys(self) -> set[tuple[str, Any]]:
        """(timeframe, memo key) of every strategy's signals memoised on these candles."""
        return {
            (tf, key)
            for tf, bars in self._bars.items()
            for key in bars.memo_keys()
            if key[0] in ("signals", "kernel signals")
        }

    def forget(self, keys: set[tuple[str, Any]]) -> None:
        """Drop memoised entries (from :meth:`signal_keys`) that nothing will read again."""
        for tf, key in keys:
            self._bars[tf].forget(key)

    def ts_int(self) -> np.ndarray:
        """The bar opens as int64 ms (what results carry), made once and shared read-only."""
        if self._ts_int is None:
            self._ts_int = self.ts.astype(np.int64)
            self._ts_int.flags.writeable = False
        return self._ts_int

    def span(self) -> tuple[int, int]:
        """(first bar open, last bar close) in ms."""
        if self.ts.shape[0] == 0:
            return 0, 0
        return int(self.ts[0]), int(self.ts[-1]) + MINUTE_MS


def closing_mask(fills: np.ndarray) -> np.ndarray:
    """Fills that close a trade: exit orders (leg -1; the kernel logs market exits with kind 0),
    exchange TP/SL (kind 2/3), or anything that realised a PnL."""
    from jiritsu.strategy import book as B

    return (fills[:, B.F_LEG] < 0) | (fills[:, B.F_KIND] > 0) | (fills[:, B.F_PNL] != 0.0)


def fill_kind(row: np.ndarray) -> str:
    """A fill's kind by name: leg, exit, take_profit or stop_loss."""
    kind = int(row[5])
    if kind == 0 and row[6] < 0:
        return "exit"
    return FILL_KINDS[kind]


@dataclass(frozen=True)
class GlobalHalt:
    """A global breaker trip: every bot halted from ``time`` until ``until`` (ms; inf: for the
    rest of the run)."""

    time: int
    until: float
    breaker: str
    message: str = field(compare=False)  # the numbers of a guessed trip may still move

    def record(self) -> dict[str, Any]:
        """As a ``breaker_trips`` entry of the backtest's JSON."""
        return {"time": self.time, "scope": "global", "breaker": self.breaker,
                "until": None if math.isinf(self.until) else int(self.until),
                "message": self.message}  # fmt: skip


def halts_array(halts: tuple[GlobalHalt, ...] | list[GlobalHalt]) -> np.ndarray:
    """The kernel's ``halts`` input: rows (from, until)."""
    if not halts:
        return np.zeros((0, 2), dtype=np.float64)
    return np.array([[h.time, h.until] for h in halts], dtype=np.float64)


@dataclass(frozen=True)
class BacktestResult:
    """One run: what was traded, the equity at each bar close in the period, and the metrics."""

    bot: str
    symbol: str
    timeframe: str
    strategy: str
    params: dict[str, Any]  # the tunable values the run used (dotted keys)
    start_ms: int
    end_ms: int
    ts: np.ndarray  # int64 bar opens in the period
    equity: np.ndarray  # equity at each bar's close
    fills: np.ndarray  # kernel fill log (F_* columns)
    metrics: Metrics
    actions: int
    # what counts as flat: (min order value, quantity step, min quantity, spot), see _exposure
    dust: tuple[float, float, float, bool] = (0.0, 0.0, 0.0, False)
    pauses: tuple[tuple[int, float], ...] = ()  # loss-streak breaker: (time, until; inf: for good)
    halts: tuple[GlobalHalt, ...] = ()  # the portfolio breakers' trips (every bot halted)
    portfolio: str = ""  # what the run assumed about the rest of the portfolio ("": nothing)

    def breaker_trips(self) -> list[dict[str, Any]]:
        """Every trip as a record, oldest first: time (ms), scope (the bot, or "global"),
        breaker, until (ms; None: for good) and, for a global one, its message."""
        pauses = [
            {"time": t, "scope": self.bot, "breaker": "loss_streak",
             "until": None if until == float("inf") else int(until)}
            for t, until in self.pauses
        ]  # fmt: skip
        return sorted(pauses + [h.record() for h in self.halts], key=lambda r: r["time"])

    def stopped_notes(self) -> list[str]:
        """Every breaker trip and "bot stopped trading" of the run, as lines for the user,
        oldest first."""
        from jiritsu.clock import from_ms

        def when(ms: float) -> str:
            return f"{from_ms(int(ms)):%Y-%m-%d %H:%M}"

        notes: list[tuple[float, str]] = []
        for t, until in self.pauses:
            how = (
                "stopped trading for good"
                if until == float("inf")
                else f"paused until {when(until)}"
            )
            notes.append((t, f"{self.bot}: loss-streak breaker at {when(t)}: {how}"))
        for h in self.halts:
            end = "for the rest of the run" if h.until == float("inf") else f"until {when(h.until)}"
            notes.append((h.time, f"portfolio {h.breaker} breaker at {when(h.time)}: every bot "
                                  f"halted {end} ({h.message})"))  # fmt: skip
        return [text for _t, text in sorted(notes, key=lambda n: n[0])]

    def trades(self) -> list[dict[str, Any]]:
        """The fill list as plain records (time, side, qty, price, fee, kind, pnl)."""
        out = []
        for row in self.fills:
            out.append(
                {
                    "ts": int(row[0]),
                    "side": "Buy" if row[1] > 0 else "Sell",
                    "qty": float(row[2]),
                    "price": float(row[3]),
                    "fee": float(row[4]),
                    "kind": fill_kind(row),
                    "leg": int(row[6]),
                    "pnl": float(row[7]),
                }
            )
        return out

    def trades_sha256(self) -> str:
        """Fingerprint of the trade list (rounded), for golden tests and the runs table."""
        import hashlib
        import json

        rows = [
            [r["ts"], r["side"], round(r["qty"], 8), round(r["price"], 8)] for r in self.trades()
        ]
        return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


def bot_values(settings: Settings, bot_name: str) -> dict[str, Any]:
    """The bot's current values of every tunable parameter named in ``optimizer.param_ranges``."""
    out: dict[str, Any] = {}
    for key in settings.optimizer.param_ranges:
        if key.split(".", 1)[0] == bot_name:
            out[key] = settings.get_param(key)
    return out


def _exposure(
    fills: np.ndarray,
    start_ms: float,
    end_ms: float,
    min_notional: float,
    qty_step: float = 0.0,
    min_qty: float = 0.0,
    spot: bool = False,
) -> float:
    """Fraction of the time in ``[start_ms, end_ms)`` with a position open, rebuilt from the
    fills as the kernel holds the position: a spot buy adds what arrives after its fee (paid
    in the coin), and a remainder that cannot be traded -- below the minimum quantity or value
    once rounded down to the step -- is flat. (Counting gross buys against net sells left the
    fee dust looking like a position that never closed.) Whole arrays at once: a grid's runs
    have thousands of fills each."""
    from jiritsu.strategy import book as B

    span = end_ms - start_ms
    if span <= 0 or fills.shape[0] == 0:
        return 0.0
    price = fills[:, B.F_PRICE]
    qty = fills[:, B.F_QTY].copy()
    if spot:
        buys = (fills[:, B.F_SIDE] > 0) & (price > 0)
        qty[buys] -= fills[buys, B.F_FEE] / price[buys]
    held = np.abs(np.cumsum(fills[:, B.F_SIDE] * qty))  # sequential, as a running total
    if qty_step > 0:
        held = np.floor(held / qty_step + 1e-9) * qty_step  # sizing.floor_to_step
    is_open = (held > 0) & (held >= min_qty) & (held * price >= max(min_notional, 1e-9))
    was_open = np.concatenate(([False], is_open[:-1]))
    opened = fills[is_open & ~was_open, B.F_TS]
    closed = fills[~is_open & was_open, B.F_TS]
    if opened.shape[0] > closed.shape[0]:  # still open at the end
        closed = np.append(closed, end_ms)
    covered = np.clip(np.minimum(closed, end_ms) - np.maximum(opened, start_ms), 0.0, None)
    return float(covered.sum() / span)


def pauses(acts: np.ndarray) -> list[tuple[int, float]]:
    """(time ms, paused until ms; inf: for good) of every loss-streak pause in an action log."""
    from jiritsu.strategy import driver as D

    rows = acts[acts[:, 1] == D.ACT_PAUSE]
    return [(int(r[0]), float(r[6])) for r in rows]


def simulate_arrays(
    params: np.ndarray,
    ts: np.ndarray,
    o: np.ndarray,
    h: np.ndarray,
    low: np.ndarray,
    c: np.ndarray,
    vol: np.ndarray,
    tf_close_ms: np.ndarray,
    tf_close: np.ndarray,
    tf_atr: np.ndarray,
    sig: np.ndarray,
    conf: np.ndarray,
    initial_equity: float,
    start_ms: float,
    end_ms: float,
    halts: np.ndarray | None = None,
) -> tuple[np.ndarray, int, np.ndarray, np.ndarray, list[tuple[int, float]]]:
    """The compiled kernel's ``simulate`` with log buffers grown until everything fits:
    (fills, action count, final account, equity at each bar's close, loss-streak pauses);
    ``halts``: the portfolio's global halts (None: never halted)."""
    from jiritsu.strategy import book as B
    from jiritsu.strategy import driver as D
    from jiritsu.strategy.inputs import kernel_actions

    k = kernels()
    args = [f64(a) for a in (ts, o, h, low, c, vol, tf_close_ms, tf_close, tf_atr)]
    sig = kernel_actions(sig)
    conf = f64(conf)
    equity = np.zeros(args[0].shape[0], dtype=np.float64)
    # sized from the decisions so that one run is enough: a BUY/SELL makes a few actions and
    # fills (regrown and rerun only if not)
    decisions = int(np.count_nonzero(sig))
    rows_a, rows_f = INITIAL_ROWS + 3 * decisions, INITIAL_ROWS + 2 * decisions
    while True:
        acts = np.zeros((rows_a, D.NACT), dtype=np.float64)
        fills = np.zeros((rows_f, B.NFILL), dtype=np.float64)
        na, nf, _state, acct = k.simulate(
            *args, sig, conf, params, float(initial_equity), float(start_ms), float(end_ms),
            acts, fills, equity, D.no_halts() if halts is None else f64(halts),
        )  # fmt: skip
        if na <= rows_a and nf <= rows_f:
            return fills[:nf].copy(), na, acct, equity, pauses(acts[:na])
        rows_a, rows_f = max(rows_a, na), max(rows_f, nf)


def build_inputs(
    settings: Settings,
    bot_name: str,
    data: CandleArrays,
    decisions: dict[int, tuple[int, float]] | None = None,
) -> Any:
    """The kernel's inputs (:class:`jiritsu.strategy.inputs.SimInputs`) for one bot, exactly
    what :func:`jiritsu.strategy.inputs.prepare` builds (a test holds them equal), but with the
    resampled bars, indicators and signals taken from ``data``'s memo so a grid computes each
    once.

    ``decisions`` (bar open ms -> (action, confidence)) replaces the strategy's signal on those
    bars: recorded advisor answers (:func:`recorded_decisions`)."""
    from jiritsu.sim.fills import VOL_WINDOW
    from jiritsu.strategy.inputs import SimInputs, strategy_signals
    from jiritsu.strategy.params import P_ATR_PERIOD, P_TF_MS, P_VOL_FACTOR, build_params
    from jiritsu.strategy.registry import resolve

    bot = settings.bot(bot_name)
    params = build_params(bot, settings)
    strategy, sparams = resolve(settings, bot)
    k = kernels()
    bars = data.bars(bot.timeframe)
    tf_ms = float(params[P_TF_MS])
    atr = bars.atr(int(params[P_ATR_PERIOD]))
    sig, conf = strategy_signals(strategy, sparams, bars)
    if decisions:
        sig, conf = sig.copy(), conf.copy()  # the memo's arrays are shared
        idx = np.searchsorted(bars.ts, np.array(sorted(decisions), dtype=np.float64))
        for i, t in zip(idx.tolist(), sorted(decisions), strict=True):
            if i < bars.ts.shape[0] and bars.ts[i] == t:
                sig[i], conf[i] = decisions[t]
    # the slippage volatility (per minute) and the close times depend on these bars alone:
    # memoised with them, so a grid's runs share them (the kernel only reads them)
    if params[P_VOL_FACTOR] > 0.0:
        vol = bars.memo(("slippage vol", VOL_WINDOW), lambda: k.slippage_vol(
            data.ts, bars.ts, bars.high, bars.low, bars.close, tf_ms, VOL_WINDOW))  # fmt: skip
    else:
        vol = bars.memo(("no slippage vol",), lambda: np.zeros(data.ts.shape[0]))
    close_ms = bars.memo(("close ms", tf_ms), lambda: bars.ts + tf_ms)
    return SimInputs(
        ts=data.ts, open=data.open, high=data.high, low=data.low, close=data.close, vol=vol,
        tf_ts=bars.ts, tf_close_ms=close_ms, tf_close=bars.close, tf_atr=atr,
        sig=sig, conf=conf, params=params,
    )  # fmt: skip


def recorded_decisions(engine: Any, bot: str, start_ms: int, end_ms: int) -> dict[int, tuple]:
    """The advisor's recorded answers (Gemini / hybrid rows of ``decisions`` without an error)
    by decided bar: replayed instead of the strategy where they exist."""
    from datetime import datetime, timezone

    import sqlalchemy as sa

    from jiritsu.db.models import Decision
    from jiritsu.strategy.contract import ACTION_CODES

    def dt(ms: int) -> datetime:
        return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)

    out: dict[int, tuple[int, float]] = {}
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(Decision.bar_ts, Decision.action, Decision.confidence)
            .where(Decision.bot == bot, Decision.provider.in_(("gemini", "hybrid")))
            .where(Decision.error.is_(None), Decision.bar_ts.is_not(None))
            .where(Decision.bar_ts >= dt(start_ms), Decision.bar_ts < dt(end_ms))
            .order_by(Decision.id)
        ).all()
    for bar_ts, action, confidence in rows:
        if action in ACTION_CODES:
            when = bar_ts if bar_ts.tzinfo else bar_ts.replace(tzinfo=timezone.utc)
            out[int(when.timestamp() * 1000)] = (ACTION_CODES[action], float(confidence or 0.0))
    return out


def run_bot(
    settings: Settings,
    bot_name: str,
    data: CandleArrays,
    start_ms: int | None = None,
    end_ms: int | None = None,
    *,
    initial_equity: float | None = None,
    decisions: dict[int, tuple[int, float]] | None = None,
    halts: np.ndarray | None = None,
) -> BacktestResult:
    """Backtest one bot of ``settings`` on ``data`` with steps in ``[start_ms, end_ms)``.

    Bars before ``start_ms`` only warm the indicators up. The starting wallet is the bot's
    ``paper.starting_balances`` entry (what the paper exchange seeds), else 1000. ``halts``:
    the portfolio's global halts to run under (the kernel's input; None: never halted; to find
    them, :meth:`jiritsu.backtest.portfolio.Portfolio.run`).
    """
    from jiritsu.strategy import book as B

    bot = settings.bot(bot_name)
    first, last = data.span()
    lo = first if start_ms is None else max(int(start_ms), first)
    hi = last if end_ms is None else min(int(end_ms), last)
    if initial_equity is None:
        initial_equity = float(settings.paper.starting_balances.get(bot.name, 1000))
    tf = bot.timeframe
    inp = build_inputs(settings, bot_name, data, decisions)
    params = inp.params
    fills, na, acct, equity, paused = simulate_arrays(
        params, inp.ts, inp.open, inp.high, inp.low, inp.close, inp.vol, inp.tf_close_ms,
        inp.tf_close, inp.tf_atr, inp.sig, inp.conf, float(initial_equity), lo, hi, halts,
    )  # fmt: skip
    i0 = int(np.searchsorted(data.ts, lo))
    i1 = int(np.searchsorted(data.ts, hi))
    ts = data.ts_int()[i0:i1]
    eq = equity[i0:i1]  # this run's own array: a view, not a copy
    closing = fills[closing_mask(fills)]
    metrics = compute_metrics(
        ts, eq, closing[:, B.F_PNL], float(acct[B.A_FEES]),
        _exposure(fills, lo, hi, *_dust(params)),
        bar_minutes=1.0, initial_equity=float(initial_equity),
    )  # fmt: skip
    return BacktestResult(
        bot=bot.name,
        symbol=bot.symbol,
        timeframe=tf,
        strategy=bot.strategy_params.rule,
        params=bot_values(settings, bot.name),
        start_ms=lo,
        end_ms=hi,
        ts=ts,
        equity=eq,
        fills=fills,
        metrics=metrics,
        actions=na,
        dust=_dust(params),
        pauses=tuple(paused),
    )


def _dust(params: np.ndarray) -> tuple[float, float, float, bool]:
    from jiritsu.strategy import params as P

    return (
        float(params[P.P_MIN_NOTIONAL]),
        float(params[P.P_QTY_STEP]),
        float(params[P.P_MIN_QTY]),
        bool(params[P.P_SPOT] > 0),
    )


def segment_metrics(result: BacktestResult, start_ms: int, end_ms: int) -> Metrics:
    """Metrics of the part of a run in ``[start_ms, end_ms)``: the state (open positions) carries
    in from before, as it would in a live bot; the starting equity is the equity at the close of
    the bar before the segment."""
    from jiritsu.strategy import book as B

    i0 = int(np.searchsorted(result.ts, start_ms))
    i1 = int(np.searchsorted(result.ts, end_ms))
    ts = result.ts[i0:i1]
    eq = result.equity[i0:i1]
    start_eq = float(result.equity[i0 - 1]) if i0 > 0 else result.metrics.initial_equity
    f = result.fills
    inside = f[(f[:, B.F_TS] >= start_ms) & (f[:, B.F_TS] < end_ms)]
    closing = inside[closing_mask(inside)]
    before = f[f[:, B.F_TS] < end_ms]
    exposure = _exposure(before, start_ms, end_ms, *result.dust)
    return compute_metrics(
        ts, eq, closing[:, B.F_PNL], float(inside[:, B.F_FEE].sum()), exposure,
        bar_minutes=1.0, initial_equity=start_eq,
    )  # fmt: skip


WARMUP_BARS = 1000  # bars of the bot's timeframe loaded before the period (as the live feed)
DAY_MS = 86_400_000
DEFAULT_SKIP_DAYS = 2  # without --from: start this long after the first stored candle


def load_data(
    market: MarketData,
    settings: Settings,
    bot_name: str,
    start_ms: int | None,
    end_ms: int | None,
    *,
    warmup_bars: int = WARMUP_BARS,
) -> tuple[CandleArrays, int, int]:
    """The bot's symbol's stored minutes for ``[start, end)`` plus a warm-up before it, read
    through the market-data service (closed by its clock); returns (data, start, end) with the
    defaults resolved (the stored range, the first :data:`DEFAULT_SKIP_DAYS` days kept for
    warm-up)."""
    from jiritsu.errors import UsageError
    from jiritsu.market.frames import interval_ms

    bot = settings.bot(bot_name)
    tf_ms = interval_ms(bot.timeframe)
    lo_load = None if start_ms is None else int(start_ms) - warmup_bars * tf_ms
    frame = market.stored(bot.symbol, "1", lo_load, end_ms)
    if frame.height == 0:
        raise UsageError(
            f"no stored 1-minute candles for {bot.symbol} in that period: run `jiritsu data "
            "backfill`, `jiritsu data import FILE` or `jiritsu data synth` first"
        )
    data = CandleArrays(bot.symbol, frame)
    first, last = data.span()
    start = (
        int(start_ms) if start_ms is not None else (first // DAY_MS + DEFAULT_SKIP_DAYS) * DAY_MS
    )
    end = min(int(end_ms), last) if end_ms is not None else last
    if start >= end:
        raise UsageError("nothing to backtest: the period holds no stored candles after warm-up")
    return data, max(start, first), end
