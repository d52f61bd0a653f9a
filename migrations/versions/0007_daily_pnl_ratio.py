"""The performance view's ``sharpe`` column becomes ``daily_pnl_ratio``.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

"Sharpe ratio" in Jiritsu means one thing: the annualised mean / standard deviation of equity
returns (README "Sharpe ratio"; the backtester's and the simulation's metric). The dashboard's
``performance`` view computed the same formula over daily realised PnL in USDT, which is no
return and was shown under the same name. The view is recreated with that column renamed; its
definition is otherwise migration 0004's, read from that (never edited) migration.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType

from alembic import context, op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_COLUMN = "END AS sharpe\n"
NEW_COLUMN = "END AS daily_pnl_ratio\n"


def _views_0004() -> ModuleType:
    module = context.script.get_revision("0004").module
    assert module is not None
    return module


def _performance_sql() -> str:
    views = _views_0004()
    postgresql = op.get_context().dialect.name == "postgresql"
    sql = views.PERFORMANCE_POSTGRESQL if postgresql else views.PERFORMANCE_SQLITE
    assert sql.count(OLD_COLUMN) == 1
    return str(sql)


def upgrade() -> None:
    op.execute("DROP VIEW performance")
    op.execute(_performance_sql().replace(OLD_COLUMN, NEW_COLUMN))


def downgrade() -> None:
    op.execute("DROP VIEW performance")
    op.execute(_performance_sql())
