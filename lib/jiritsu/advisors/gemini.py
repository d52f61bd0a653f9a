"""The Gemini advisor: the shared client asks, this module turns every outcome into a Decision.

Key rotation, retries with back-off, the request timeout and the daily budget all live in
:class:`jiritsu.ai.gemini.GeminiClient`; this advisor decides what each outcome MEANS for a
trading bot, and never raises for any of them:

=========================================  =========  ==========================================
what happened                               outcome    also
=========================================  =========  ==========================================
valid answer, action allowed now            ok         latency, tokens, prompt hash stored
valid answer, action NOT allowed now        invalid    WARNING event; never acted upon
every key rate-limited (429)                skipped    WARNING event: no decision this cycle
daily request/token budget spent            skipped    WARNING event once per UTC day
answers unusable after every retry          invalid    ERROR event + Discord alert
timeouts / 5xx / refused keys / DB down     error      ERROR event + Discord alert
only HOLD allowed                           skipped    no call: there is nothing to choose
=========================================  =========  ==========================================

A failure never becomes a HOLD: ``action`` is None unless the outcome is ``ok``, so a missing
judgement can never be mistaken for one (and can never open a trade).

Discord alerts are rate-limited per advisor: the first failure of a streak alerts at once, and
while the streak lasts at most one more alert is sent per ``alert_interval_seconds`` (the
``system_events`` row is written for every failure). A bot on 5-minute bars would otherwise
send 288 identical alerts a day while Gemini is down.

Its events carry wall time (:func:`jiritsu.clock.wall_now`): Gemini is only ever asked live (a
simulation replays recorded decisions), and its budget runs on real days.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from jiritsu.advisors.base import Decision, MarketSnapshot
from jiritsu.advisors.prompt import (
    PROMPT_VERSION,
    AdvisorAnswer,
    Prompt,
    Proposal,
    allowed,
    build_prompt,
    validate_answer,
)
from jiritsu.clock import wall_now
from jiritsu.events import EventType, record_event
from jiritsu.redact import redact

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from jiritsu.ai.gemini import GeminiClient, GeminiResult
    from jiritsu.notify import Notifier

log = logging.getLogger("jiritsu.advisors.gemini")

ALERT_INTERVAL_SECONDS = 3600.0
_ERROR_MAX = 1000  # characters of an error message kept in a decision


class GeminiAdvisor:
    """Asks Gemini for BUY/SELL/HOLD on a snapshot; see the module docstring for outcomes."""

    provider = "gemini"

    def __init__(
        self,
        bot: Any,
        client: GeminiClient,
        *,
        model: str | None = None,
        engine: Engine | None = None,
        notifier: Notifier | None = None,
        alert_interval_seconds: float = ALERT_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``bot`` is the ``SubBot`` settings; ``engine`` stores events; ``notifier`` alerts.

        ``model`` is only a check: the client decides which model is called, so a different
        name here is a wiring mistake and is refused.
        """
        if model is not None and model != client.model:
            raise ValueError(f"advisor model {model!r} differs from the client's {client.model!r}")
        if alert_interval_seconds < 0:
            raise ValueError("alert_interval_seconds must be >= 0")
        self.bot = bot
        self.client = client
        self.model = client.model
        self.engine = engine
        self.notifier = notifier
        self.alert_interval_seconds = alert_interval_seconds
        self._clock = clock
        self.failure_streak = 0
        self._last_alert: float | None = None
        self._budget_warned_on: Any = None

    def __repr__(self) -> str:
        return f"GeminiAdvisor(bot={self.bot_name!r}, model={self.model!r})"

    @property
    def bot_name(self) -> str:
        return str(getattr(self.bot, "name", "?"))

    # -- the decision -------------------------------------------------------------------------

    def decide(self, snapshot: MarketSnapshot, proposal: Proposal | None = None) -> Decision:
        """Gemini's judgement of ``snapshot``; with ``proposal`` (hybrid) it confirms or vetoes
        the rule's action. Never raises for a missing, bad or refused answer."""
        from jiritsu.ai.budget import BudgetExhausted
        from jiritsu.ai.gemini import AllKeysRateLimited, GeminiError, GeminiInvalidAnswer
        from jiritsu.errors import JiritsuError

        choices = allowed(snapshot)
        if not set(choices) & {"BUY", "SELL"}:
            return self._no_call(
                f"nothing to choose: allowed actions are {', '.join(choices) or 'none'}; "
                "Gemini was not asked"
            )
        prompt = build_prompt(snapshot, proposal)
        started = time.perf_counter()
        try:
            result = self.client.generate_json(
                prompt.user, AdvisorAnswer, system=prompt.system, purpose="advisor"
            )
        except BudgetExhausted as exc:
            return self._budget_spent(snapshot, prompt, exc)
        except AllKeysRateLimited as exc:
            return self._rate_limited(snapshot, prompt, exc, started)
        except GeminiInvalidAnswer as exc:
            return self._failed(snapshot, prompt, "invalid", exc, started)
        except GeminiError as exc:
            return self._failed(snapshot, prompt, "error", exc, started)
        except JiritsuError as exc:  # e.g. the budget's database is unreachable
            return self._failed(snapshot, prompt, "error", exc, started)
        return self._answered(snapshot, prompt, result, started)

    # -- outcomes -----------------------------------------------------------------------------

    def _extra(self, prompt: Prompt | None, started: float | None = None) -> dict[str, Any]:
        extra: dict[str, Any] = {"prompt_version": PROMPT_VERSION}
        if prompt is not None:
            extra["prompt_hash"] = prompt.prompt_hash
        if started is not None:
            extra["elapsed_ms"] = int((time.perf_counter() - started) * 1000)
        return extra

    def _details(self, snapshot: MarketSnapshot, prompt: Prompt | None) -> dict[str, Any]:
        details: dict[str, Any] = {
            "symbol": snapshot.symbol,
            "bar_ts": snapshot.bar_ts,
            "model": self.model,
        }
        if prompt is not None:
            details["prompt_hash"] = prompt.prompt_hash
        return details

    def _no_call(self, reason: str) -> Decision:
        return Decision(
            action=None,
            confidence=0.0,
            reason=reason,
            provider=self.provider,
            outcome="skipped",
            model=self.model,
            extra=self._extra(None),
        )

    def _budget_spent(self, snapshot: MarketSnapshot, prompt: Prompt, exc: Exception) -> Decision:
        message = redact(str(exc))
        today = wall_now().date()  # Gemini's budget runs on real days
        if self._budget_warned_on != today:  # once per UTC day, not once per bar
            self._budget_warned_on = today
            record_event(
                self.engine,
                "WARNING",
                EventType.ADVISOR_ERROR,
                f"Gemini budget spent: no Gemini decisions until it resets ({message})",
                self._details(snapshot, prompt),
                bot=self.bot_name,
                now=wall_now(),
            )
        return Decision(
            action=None,
            confidence=0.0,
            reason=f"skipped: the daily Gemini budget is spent ({message})"[:_ERROR_MAX],
            provider=self.provider,
            outcome="skipped",
            model=self.model,
            error=message[:_ERROR_MAX],
            extra=self._extra(prompt),
        )

    def _rate_limited(
        self, snapshot: MarketSnapshot, prompt: Prompt, exc: Exception, started: float
    ) -> Decision:
        message = redact(str(exc))
        record_event(
            self.engine,
            "WARNING",
            EventType.ADVISOR_ERROR,
            f"no Gemini decision this cycle: every key is rate-limited ({message})",
            self._details(snapshot, prompt),
            bot=self.bot_name,
            now=wall_now(),
        )
        return Decision(
            action=None,
            confidence=0.0,
            reason="skipped: every Gemini key is rate-limited (429); no decision this cycle",
            provider=self.provider,
            outcome="skipped",
            model=self.model,
            error=message[:_ERROR_MAX],
            extra=self._extra(prompt, started),
        )

    def _should_alert(self) -> bool:
        now = self._clock()
        if (
            self.failure_streak == 1
            or self._last_alert is None
            or now - self._last_alert >= self.alert_interval_seconds
        ):
            self._last_alert = now
            return True
        return False

    def _failed(
        self,
        snapshot: MarketSnapshot,
        prompt: Prompt,
        outcome: str,
        exc: Exception | str,
        started: float,
        *,
        tokens: tuple[int, int] | None = None,
        latency_ms: int | None = None,
    ) -> Decision:
        """ERROR event for every failure; Discord at the start of a streak, then rate-limited."""
        message = redact(str(exc))
        self.failure_streak += 1
        what = "unusable answers" if outcome == "invalid" else "no answer"
        details = self._details(snapshot, prompt)
        details["failed_decisions_in_a_row"] = self.failure_streak
        record_event(
            self.engine,
            "ERROR",
            EventType.ADVISOR_ERROR,
            f"Gemini advisor gave {what} after retries; no decision this cycle: {message}",
            details,
            bot=self.bot_name,
            notifier=self.notifier if self._should_alert() else None,
            now=wall_now(),
        )
        return Decision(
            action=None,
            confidence=0.0,
            reason=f"{outcome}: Gemini gave {what}; no decision this cycle",
            provider=self.provider,
            outcome="invalid" if outcome == "invalid" else "error",
            model=self.model,
            latency_ms=latency_ms,
            prompt_tokens=tokens[0] if tokens else None,
            output_tokens=tokens[1] if tokens else None,
            error=message[:_ERROR_MAX],
            extra=self._extra(prompt, started),
        )

    def _answered(
        self, snapshot: MarketSnapshot, prompt: Prompt, result: GeminiResult, started: float
    ) -> Decision:
        from pydantic import ValidationError

        tokens = (result.prompt_tokens, result.output_tokens)
        try:
            answer = validate_answer(result.value)  # again: never trust one layer alone
        except (ValidationError, TypeError) as exc:
            return self._failed(
                snapshot,
                prompt,
                "invalid",
                f"answer failed validation: {exc}",
                started,
                tokens=tokens,
                latency_ms=result.latency_ms,
            )
        extra = self._extra(prompt, started)
        extra.update(
            total_tokens=result.total_tokens, key_index=result.key_index, attempts=result.attempts
        )
        choices = allowed(snapshot)
        if answer.action not in choices:
            problem = (
                f"Gemini answered {answer.action}, which is not allowed now "
                f"(allowed: {', '.join(choices)}); ignored"
            )
            record_event(
                self.engine,
                "WARNING",
                EventType.ADVISOR_ERROR,
                problem,
                self._details(snapshot, prompt),
                bot=self.bot_name,
                now=wall_now(),
            )
            extra["answer"] = {"action": answer.action, "confidence": answer.confidence}
            return Decision(
                action=None,
                confidence=0.0,
                reason=f"invalid: {problem}",
                provider=self.provider,
                outcome="invalid",
                model=result.model,
                latency_ms=result.latency_ms,
                prompt_tokens=result.prompt_tokens,
                output_tokens=result.output_tokens,
                error=problem,
                extra=extra,
            )
        if self.failure_streak:
            record_event(
                self.engine,
                "INFO",
                EventType.ADVISOR_ERROR,
                f"Gemini advisor answers again after {self.failure_streak} failed decision(s)",
                self._details(snapshot, prompt),
                bot=self.bot_name,
                now=wall_now(),
            )
            self.failure_streak = 0
            self._last_alert = None
        return Decision(
            action=answer.action,
            confidence=float(answer.confidence),
            reason=answer.reason,
            provider=self.provider,
            outcome="ok",
            model=result.model,
            latency_ms=result.latency_ms,
            prompt_tokens=result.prompt_tokens,
            output_tokens=result.output_tokens,
            extra=extra,
        )
