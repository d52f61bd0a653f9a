"""Exit conditions besides TP/SL (see :mod:`jiritsu.strategy.tpsl`): an opposite signal and the
optional maximum holding time; and the per-bot loss streak that pauses a bot.

Numba-compatible (see :mod:`jiritsu.strategy.step`).

- Opposite signal: a SELL while long (or a BUY while short) closes the whole position with a
  market order at the decision time (reduce-only on linear; on spot it sells the holding, rounded
  down to the quantity step). On linear, the same decision then opens the other side -- a SELL
  only when the bot allows shorts. On spot a SELL never opens anything.
- Maximum holding time: at the first step ``t`` with ``t - opened >= max_holding_minutes``
  (``opened`` = the open of the 1-minute bar of the position's first fill) the position is
  closed at market.
- Loss streak: ``risk.max_consecutive_losses`` closing trades in a row with a negative PnL pause
  the bot (a circuit breaker; live it is a halt in ``controls``).
"""

from __future__ import annotations

EXIT_REASON_NONE = 0
EXIT_REASON_SIGNAL = 1
EXIT_REASON_MAX_HOLD = 2
EXIT_REASON_TP = 3  # bot-managed (spot) take profit, or levels found breached
EXIT_REASON_SL = 4
EXIT_REASON_FLATTEN = 5
EXIT_REASON_NAMES = ("", "signal", "max_hold", "take_profit", "stop_loss", "flatten")


def max_hold_reached(opened_ms: float, t: float, max_hold_ms: float) -> bool:
    return max_hold_ms > 0.0 and opened_ms > 0.0 and t - opened_ms >= max_hold_ms


def loss_streak_tripped(streak: float, max_losses: float) -> bool:
    return max_losses > 0.0 and streak >= max_losses


def next_streak(streak: float, pnl: float) -> float:
    """The loss streak after a closing trade with ``pnl`` (a win or a zero resets it)."""
    if pnl < 0.0:
        return streak + 1.0
    return 0.0
