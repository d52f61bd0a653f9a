"""A sub-bot's settings as one flat float64 record: what the strategy kernel reads.

The strategy's own parameters are not in it: the strategy turns them into the action and
confidence arrays the kernel reads (:mod:`jiritsu.strategy.contract`).

The kernel (:mod:`jiritsu.strategy.kernel`) runs as plain Python in a live tick and compiled by
numba in a backtest, so it cannot read pydantic objects. :func:`build_params` turns a ``SubBot``
(plus the exchange's fees, the risk settings and the instrument's trading rules) into a numpy
array indexed by the ``P_*`` constants below; both callers build it the same way, so a live bot
and its backtest can only differ in their market data, never in their parameters.

Units: times in milliseconds, fractions as fractions (0.003 = 0.3 %), money in the quote coin.
Flags are 0.0 / 1.0. ``P_MAX_HOLD_MS`` 0 means "no limit".
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from jiritsu.config.bots import SubBot
    from jiritsu.config.settings import Settings
    from jiritsu.exchange.types import Category, Instrument

MINUTE_MS = 60_000
BAR_MS = MINUTE_MS  # the execution grid: every fill happens on a 1-minute bar

SPLIT_TIME = 0
SPLIT_PRICE = 1
SIZING_LOT = 0
SIZING_RISK = 1

# Parameter record layout (keep in sync with PARAM_NAMES).
P_TPSL = 0
P_TP_RATIO = 1
P_SL_RATIO = 2
P_MIN_CONF = 3
P_SIZING = 4
P_ATR_PERIOD = 5
P_VOL_LOW = 6
P_VOL_MEDIUM = 7
P_MULT_LOW = 8
P_MULT_MEDIUM = 9
P_MULT_HIGH = 10
P_BASE_LOT = 11
P_SPLIT = 12
P_SPLIT_COUNT = 13
P_SPLIT_METHOD = 14
P_SPLIT_INTERVAL_MS = 15
P_SPLIT_STEP = 16
P_SPLIT_TIMEOUT_MS = 17
P_SPOT = 18
P_ALLOW_SHORT = 19
P_MAX_HOLD_MS = 20
P_TF_MS = 21
P_LEVERAGE = 22
P_QTY_STEP = 23
P_MIN_QTY = 24
P_MIN_NOTIONAL = 25
P_TICK = 26
P_TAKER_FEE = 27
P_MAKER_FEE = 28
P_SLIPPAGE_BPS = 29
P_VOL_FACTOR = 30
P_MAX_LOSSES = 31
P_COOLDOWN_MS = 32
P_SIZING_MODE = 33  # SIZING_LOT / SIZING_RISK
P_RISK_PER_TRADE = 34
P_CAP_PCT = 35
NPARAMS = 36

PARAM_NAMES: tuple[str, ...] = (
    "tp_sl_enabled", "tp_ratio", "sl_ratio", "min_confidence",
    "sizing_enabled", "atr_period", "vol_low", "vol_medium", "mult_low", "mult_medium",
    "mult_high", "base_lot",
    "split_enabled", "split_count", "split_method", "split_interval_ms", "split_step",
    "split_timeout_ms",
    "spot", "allow_short", "max_hold_ms", "timeframe_ms", "leverage",
    "qty_step", "min_qty", "min_notional", "tick_size",
    "taker_fee", "maker_fee", "slippage_bps", "slippage_vol_factor",
    "max_consecutive_losses", "cooldown_ms",
    "sizing_mode", "risk_per_trade", "max_capital_pct",
)  # fmt: skip
assert len(PARAM_NAMES) == NPARAMS


def _f(value: Any) -> float:
    return float(value) if not isinstance(value, Decimal) else float(str(value))


def timeframe_ms(timeframe: str) -> int:
    """Length of a bot's bars in ms ("15" -> 900_000)."""
    from jiritsu.market.frames import interval_ms

    return interval_ms(timeframe)


def default_instrument(category: Category, symbol: str) -> Instrument:
    """The trading rules the paper exchange uses for a symbol (backtests use these too)."""
    from jiritsu.exchange.paper import DEFAULT_RULES, INSTRUMENT_RULES
    from jiritsu.exchange.types import Instrument
    from jiritsu.market.symbols import normalize_symbol, split_symbol

    symbol = normalize_symbol(symbol)
    qty_step, min_qty, max_qty, tick, min_notional = INSTRUMENT_RULES.get(
        (category, symbol), DEFAULT_RULES[category]
    )
    base, quote = split_symbol(symbol)
    return Instrument(
        symbol=symbol,
        category=category,
        base_coin=base,
        quote_coin=quote,
        qty_step=Decimal(qty_step),
        min_qty=Decimal(min_qty),
        max_qty=Decimal(max_qty),
        tick_size=Decimal(tick),
        min_notional=Decimal(min_notional),
    )


def build_params(
    bot: SubBot, settings: Settings, instrument: Instrument | None = None
) -> np.ndarray:
    """The parameter record of ``bot``; ``instrument`` defaults to the paper exchange's rules."""
    inst = instrument or default_instrument(bot.category, bot.symbol)
    sp = bot.strategy_params
    ds = bot.dynamic_sizing
    se = bot.split_entry
    ex = settings.exchange
    risk = settings.risk
    p = np.zeros(NPARAMS, dtype=np.float64)
    p[P_TPSL] = 1.0 if sp.tp_sl_enabled else 0.0
    p[P_TP_RATIO] = sp.tp_ratio
    p[P_SL_RATIO] = sp.sl_ratio
    p[P_MIN_CONF] = sp.min_confidence
    p[P_SIZING] = 1.0 if ds.enabled else 0.0
    p[P_ATR_PERIOD] = ds.atr_period
    p[P_VOL_LOW] = ds.volatility_thresholds.low
    p[P_VOL_MEDIUM] = ds.volatility_thresholds.medium
    p[P_MULT_LOW] = _f(ds.sizing_multipliers.low)
    p[P_MULT_MEDIUM] = _f(ds.sizing_multipliers.medium)
    p[P_MULT_HIGH] = _f(ds.sizing_multipliers.high)
    p[P_BASE_LOT] = _f(bot.base_lot)
    p[P_SPLIT] = 1.0 if (se.enabled and se.count > 1) else 0.0
    p[P_SPLIT_COUNT] = se.count if se.enabled else 1
    p[P_SPLIT_METHOD] = SPLIT_TIME if se.method == "time" else SPLIT_PRICE
    p[P_SPLIT_INTERVAL_MS] = se.interval_seconds * 1000
    p[P_SPLIT_STEP] = se.price_step_pct
    p[P_SPLIT_TIMEOUT_MS] = se.timeout_seconds * 1000
    p[P_SPOT] = 1.0 if bot.category == "spot" else 0.0
    p[P_ALLOW_SHORT] = 1.0 if (bot.allow_short and bot.category == "linear") else 0.0
    p[P_MAX_HOLD_MS] = (bot.max_holding_minutes or 0) * MINUTE_MS
    p[P_TF_MS] = timeframe_ms(bot.timeframe)
    p[P_LEVERAGE] = 1.0 if bot.category == "spot" else float(ex.leverage)
    p[P_QTY_STEP] = _f(inst.qty_step)
    p[P_MIN_QTY] = _f(inst.min_qty)
    p[P_MIN_NOTIONAL] = _f(inst.min_notional)
    p[P_TICK] = _f(inst.tick_size)
    p[P_TAKER_FEE] = _f(ex.taker_fee)
    p[P_MAKER_FEE] = _f(ex.maker_fee)
    p[P_SLIPPAGE_BPS] = _f(ex.slippage_bps)
    p[P_VOL_FACTOR] = _f(ex.slippage_volatility_factor)
    p[P_MAX_LOSSES] = risk.max_consecutive_losses
    p[P_COOLDOWN_MS] = risk.loss_streak_cooldown_minutes * MINUTE_MS
    p[P_SIZING_MODE] = SIZING_RISK if bot.sizing == "risk" else SIZING_LOT
    p[P_RISK_PER_TRADE] = _f(bot.risk_per_trade)
    p[P_CAP_PCT] = _f(bot.max_capital_pct)
    return p


def describe(params: np.ndarray) -> dict[str, float]:
    """The record as ``{name: value}`` (logs, tests, the decision record)."""
    return {name: float(params[i]) for i, name in enumerate(PARAM_NAMES)}
