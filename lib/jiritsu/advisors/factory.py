"""Build the advisor a bot's configuration asks for (``sub_bots[].advisor``).

``rules`` (the offline default) needs nothing; ``gemini`` and ``hybrid`` need the Gemini client,
which exists only when keys are configured. Without keys they fall back to the rules so a bot
never stops deciding because a key is missing -- and the fallback is visible in each decision's
provider.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from jiritsu.advisors.base import Advisor
    from jiritsu.config import LoadedConfig
    from jiritsu.notify import Notifier

log = logging.getLogger("jiritsu.advisors")


def build_advisor(
    bot: Any,
    loaded: LoadedConfig,
    engine: Engine | None = None,
    notifier: Notifier | None = None,
) -> Advisor:
    """The advisor for ``bot`` (a ``SubBot`` settings object); ``engine`` and ``notifier`` carry
    the Gemini advisor's WARNING/ERROR events and alerts."""
    from jiritsu.advisors.rules import RulesAdvisor

    rules = RulesAdvisor(bot)
    if bot.advisor == "rules":
        return rules
    from jiritsu.advisors.gemini import GeminiAdvisor
    from jiritsu.ai.gemini import build_gemini_client

    client = build_gemini_client(loaded, engine)
    if client is None:
        log.warning(
            "%s: advisor %s configured but no Gemini key; using rules", bot.name, bot.advisor
        )
        return rules
    gemini = GeminiAdvisor(
        bot, client, model=loaded.settings.gemini.model, engine=engine, notifier=notifier
    )
    if bot.advisor == "gemini":
        return gemini
    from jiritsu.advisors.hybrid import HybridAdvisor

    return HybridAdvisor(rules, gemini)
