"""The bots' trading logic, written once for live trading, paper trading and backtests.

The public part, what a strategy author imports (see :mod:`.contract` and README "Write your own
strategy")::

    from jiritsu.strategy import Bars, Strategy, StrategyParams, checked_signals

The kernel below is plain functions over floats, ints and float64 arrays (numba-compatible; this
package never imports numba itself). :func:`jiritsu.strategy.jit.compiled` returns the jitted
set. Backtest/live divergence is the classic way a strategy that "worked" loses money, so the
live engine (:mod:`jiritsu.engine`) and the backtester call the SAME functions:

========================  ===============================================================
module                    what
========================  ===============================================================
:mod:`.contract`          the strategy contract: ``Strategy``, ``Params``, ``Bars``
:mod:`.registry`          built-ins, ``[strategies] paths`` files, ``jiritsu.strategies`` EPs
:mod:`.builtins`          ema_cross, rsi_reversion, donchian_breakout (plugins like any other)
:mod:`.params`            a ``SubBot`` (+ fees, risk, instrument) -> float64 record ``P_*``
:mod:`.sizing`            volatility bucket x base_lot, capped by the available balance
:mod:`.split`             split-entry legs by time / by price, deadline
:mod:`.tpsl`              TP/SL levels from the average entry and ATR; who enforces them
:mod:`.exits`             opposite signal, maximum holding time, loss streak
:mod:`.step`              ``manage`` + ``decide``: the bot step, live and backtest alike
:mod:`.book`              the paper exchange's order book and account as arrays (the twin)
:mod:`.driver`            ``simulate``: a bot over 1-minute bars, stepped as the trade loop
:mod:`.jit`               ``compiled()``: their numba versions (:mod:`.kernel`: all in one)
:mod:`.inputs`            candles -> the kernel's arrays (``prepare``), and ``run``
========================  ===============================================================

What the backtester calls
-------------------------
::

    from jiritsu.strategy.inputs import prepare, run
    from jiritsu.market.store import CandleStore, cache_root

    candles = CandleStore(engine, cache_root(data_dir)).load(bot.symbol, "1")   # 1-minute
    inputs = prepare(bot, settings, candles)
    result = run(inputs, equity0=starting_balance, start_ms=..., end_ms=..., compiled=True)
    result.fills      # F_* columns: ts, side, qty, price, fee, kind, leg, pnl (closing fills)
    result.acts       # every order/entry/TP-SL/cancel the kernel made (ACT_* codes)
    result.equity     # account equity at each 1-minute close

Tuning changes the parameters: ``prepare(bot, settings.with_params({...}), candles)`` (or
``inputs.with_params(record)`` for kernel parameters that the signals do not depend on). One year of
1-minute bars runs in 0.01-0.05 s per bot compiled (``scripts/bench_tick.py`` prints it).
Do not re-implement any of it: ``tests/engine/test_replay_parity.py`` runs ``jiritsu trade-loop
--replay`` and ``run`` over the same candles and asserts identical orders, fills and TP/SL
triggers; a backtester built on ``run`` inherits that guarantee.

Not in the kernel: the portfolio-level breakers (drawdown, daily loss, crash: they need every
bot), exchange failures, and the advisor (a backtest uses the strategy's own signal; live, the
advisor's answer replaces it and the kernel's gate filters it the same way).

The timing rules (one grid for everything)
------------------------------------------
- The engine works on 1-minute bars (the paper exchange's fill grid). A *step* at time ``t`` sees
  bars closed by ``t``; nothing later.
- A bot decides at the CLOSE of each bar of its timeframe (bar open + timeframe), seeing data up
  to that close. A market order sent then fills at the OPEN of the first 1-minute bar starting at
  or after it -- for a 15-minute bot, the first minute of the next 15-minute bar -- plus slippage
  (``exchange.slippage_bps`` [+ factor x ATR/price]), as taker.
- Limit legs fill when a later 1-minute bar trades THROUGH the price (maker). Time legs are sent
  at their due time and fill like any market order. A plan's deadline cancels what is left
  before any bar that would close after it (:mod:`.split`).
- TP/SL: linear = exchange-side, checked intrabar on every 1-minute bar from when they were set,
  stop first (:func:`jiritsu.sim.fills.tp_sl_fill`); spot = bot-managed, the bar that just closed
  is checked at each minute and a trigger sells at the next open (:mod:`.tpsl`).
- A bar is decided at most once, and at most half a bar late (a restart); the per-bot loss-streak
  breaker is evaluated right before a decision.
"""

from jiritsu.strategy.contract import Bars, Strategy, StrategyParams, checked_signals

__all__ = ["Bars", "Strategy", "StrategyParams", "checked_signals"]
