"""A hard daily budget of API requests and tokens, shared by every process through the database.

The trade loop, timer-started commands and the news job all spend the same Gemini quota, so the
count lives in the ``api_usage`` table (one row per UTC day and provider), not in memory.
:meth:`Budget.acquire` checks AND counts one request in a single conditional ``UPDATE``, so two
processes can never both take the last request of the day. Tokens are only known after a call,
so the token budget may be overshot by the tokens of the calls already in flight when it runs
out; the next :meth:`Budget.acquire` then refuses.

A budget of 0 means "no calls at all" (a hard budget, never "unlimited").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

from jiritsu.clock import wall_now
from jiritsu.errors import JiritsuError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine


class BudgetExhausted(JiritsuError):
    """The day's request or token budget is spent: no call was made (not retried until then)."""


@dataclass(frozen=True)
class Usage:
    """What a provider has spent on one UTC day."""

    day: date
    provider: str
    requests: int = 0
    prompt_tokens: int = 0
    output_tokens: int = 0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.output_tokens


class Budget:
    """Daily request and token budget of one provider, persisted in ``api_usage``."""

    def __init__(
        self,
        engine: Engine,
        provider: str = "gemini",
        *,
        daily_requests: int,
        daily_tokens: int,
        clock: Callable[[], datetime] = wall_now,  # the provider's days are real days
    ) -> None:
        if daily_requests < 0 or daily_tokens < 0:
            raise ValueError("budgets must be >= 0")
        self.engine = engine
        self.provider = provider
        self.daily_requests = daily_requests
        self.daily_tokens = daily_tokens
        self._clock = clock

    def __repr__(self) -> str:
        return (
            f"Budget({self.provider!r}, daily_requests={self.daily_requests}, "
            f"daily_tokens={self.daily_tokens})"
        )

    def today(self) -> date:
        """The current UTC day (budgets reset at 00:00 UTC)."""
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("the budget clock must return aware datetimes")
        return now.astimezone(timezone.utc).date()

    # -- reading ----------------------------------------------------------------------------

    def usage_today(self) -> Usage:
        """Requests and tokens spent so far today (zeros when nothing was spent)."""
        import sqlalchemy as sa

        from jiritsu.db.engine import retry_db
        from jiritsu.db.models import ApiUsage

        day = self.today()

        def read() -> Usage:
            with self.engine.connect() as conn:
                row = conn.execute(
                    sa.select(
                        ApiUsage.requests, ApiUsage.prompt_tokens, ApiUsage.output_tokens
                    ).where(ApiUsage.day == day, ApiUsage.provider == self.provider)
                ).first()
            if row is None:
                return Usage(day, self.provider)
            return Usage(day, self.provider, int(row[0]), int(row[1]), int(row[2]))

        return retry_db(read, what="reading API usage")

    def _exhausted(self, usage: Usage) -> BudgetExhausted | None:
        if usage.requests >= self.daily_requests:
            return BudgetExhausted(
                f"{self.provider} daily request budget spent: {usage.requests} of "
                f"{self.daily_requests} requests on {usage.day} (UTC); it resets at 00:00 UTC"
            )
        if usage.tokens >= self.daily_tokens:
            return BudgetExhausted(
                f"{self.provider} daily token budget spent: {usage.tokens} of "
                f"{self.daily_tokens} tokens on {usage.day} (UTC); it resets at 00:00 UTC"
            )
        return None

    def check(self) -> None:
        """Raise :class:`BudgetExhausted` when today's request or token budget is spent."""
        problem = self._exhausted(self.usage_today())
        if problem is not None:
            raise problem

    # -- spending ---------------------------------------------------------------------------

    def _ensure_row(self, conn: Connection, day: date) -> None:
        """Create today's row if missing; a concurrent creator wins harmlessly (no-op)."""
        from jiritsu.db.models import ApiUsage
        from jiritsu.db.upsert import conflict_insert

        values: dict[str, Any] = {
            "day": day,
            "provider": self.provider,
            "requests": 0,
            "prompt_tokens": 0,
            "output_tokens": 0,
            "updated_at": self._clock(),
        }
        stmt = conflict_insert(conn.dialect.name, ApiUsage).values(**values)
        conn.execute(stmt.on_conflict_do_nothing(index_elements=["day", "provider"]))

    def acquire(self) -> None:
        """Count one request against today's budget, or raise :class:`BudgetExhausted`.

        Check and increment are one conditional UPDATE, so the budget holds across processes.
        """
        import sqlalchemy as sa

        from jiritsu.db.engine import retry_db
        from jiritsu.db.models import ApiUsage

        day = self.today()

        def take() -> bool:
            with self.engine.begin() as conn:
                self._ensure_row(conn, day)
                result = conn.execute(
                    sa.update(ApiUsage)
                    .where(
                        ApiUsage.day == day,
                        ApiUsage.provider == self.provider,
                        ApiUsage.requests < self.daily_requests,
                        ApiUsage.prompt_tokens + ApiUsage.output_tokens < self.daily_tokens,
                    )
                    .values(requests=ApiUsage.requests + 1, updated_at=self._clock())
                )
                return bool(result.rowcount)

        if not retry_db(take, what="reserving an API request"):
            problem = self._exhausted(self.usage_today())
            raise problem or BudgetExhausted(f"{self.provider} daily budget spent")

    def record(self, prompt_tokens: int, output_tokens: int, *, requests: int = 1) -> Usage:
        """Add tokens (and ``requests`` requests) to today's row atomically; returns the total.

        The increment is done by the database (``SET x = x + n``), so concurrent writers from
        several processes never lose an update on SQLite or PostgreSQL.
        """
        import sqlalchemy as sa

        from jiritsu.db.engine import retry_db
        from jiritsu.db.models import ApiUsage

        if min(prompt_tokens, output_tokens, requests) < 0:
            raise ValueError("usage increments must be >= 0")
        day = self.today()

        def add() -> None:
            with self.engine.begin() as conn:
                self._ensure_row(conn, day)
                conn.execute(
                    sa.update(ApiUsage)
                    .where(ApiUsage.day == day, ApiUsage.provider == self.provider)
                    .values(
                        requests=ApiUsage.requests + requests,
                        prompt_tokens=ApiUsage.prompt_tokens + prompt_tokens,
                        output_tokens=ApiUsage.output_tokens + output_tokens,
                        updated_at=self._clock(),
                    )
                )

        retry_db(add, what="recording API usage")
        return self.usage_today()
