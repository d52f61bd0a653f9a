"""Per-bot performance from the ``trades`` table: what ``jiritsu status --performance`` and the
demo print.

A *closed trade* is a trades row with ``position_effect = "close"`` and a ``pnl`` (see
:mod:`jiritsu.exchange.book`: PnL after the entry's and the exit's fees). Win rate = wins / closed
trades (a zero PnL is neither a win nor a loss); profit factor = gross profit / gross loss.
Fees are every fill's fee in the quote coin (a spot buy's coin fee valued at its fill price).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

ZERO = Decimal(0)


@dataclass(frozen=True)
class BotPerformance:
    bot: str
    closed_trades: int
    wins: int
    losses: int
    pnl: Decimal
    gross_profit: Decimal
    gross_loss: Decimal
    fees: Decimal
    orders_filled: int

    @property
    def win_rate(self) -> float | None:
        return self.wins / self.closed_trades if self.closed_trades else None

    @property
    def profit_factor(self) -> float | None:
        return float(self.gross_profit / self.gross_loss) if self.gross_loss > 0 else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "bot": self.bot,
            "closed_trades": self.closed_trades,
            "wins": self.wins,
            "losses": self.losses,
            "win_rate": self.win_rate,
            "pnl": str(self.pnl),
            "gross_profit": str(self.gross_profit),
            "gross_loss": str(self.gross_loss),
            "profit_factor": self.profit_factor,
            "fees": str(self.fees),
            "orders_filled": self.orders_filled,
        }


def performance(engine: Engine, bots: list[str], quote: str = "USDT") -> list[BotPerformance]:
    """One summary per bot name in ``bots`` (bots without trades get zeros)."""
    import sqlalchemy as sa

    from jiritsu.db.models import Trade

    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                Trade.sub_bot_name,
                Trade.position_effect,
                Trade.pnl,
                Trade.fee,
                Trade.fee_coin,
                Trade.price,
            )
        ).all()
    out = []
    for bot in bots:
        mine = [r for r in rows if r.sub_bot_name == bot]
        closed = [r.pnl for r in mine if r.position_effect == "close" and r.pnl is not None]
        fees = ZERO
        for r in mine:
            fee = r.fee or ZERO
            fees += fee if (r.fee_coin in (None, quote)) else fee * r.price
        out.append(
            BotPerformance(
                bot=bot,
                closed_trades=len(closed),
                wins=sum(1 for p in closed if p > 0),
                losses=sum(1 for p in closed if p < 0),
                pnl=sum(closed, ZERO),
                gross_profit=sum((p for p in closed if p > 0), ZERO),
                gross_loss=-sum((p for p in closed if p < 0), ZERO),
                fees=fees.quantize(Decimal("1e-8")),
                orders_filled=len(mine),
            )
        )
    return out
