"""Estimate the Gemini calls and tokens per day that a configuration spends (default: shipped).

Why: the daily request/token budget (``[gemini]``) must cover what the bots and the news job
ask for, and this is the figure to size it by. Computed, not measured live:

* ``gemini`` bots ask once per closed bar of their timeframe (an upper bound: cycles where only
  HOLD is allowed make no call);
* ``hybrid`` bots ask only when their rule fires; the firing rate comes from running the rule
  (the bot's strategy, ``strategy_params.rule``, through the strategy registry) over
  synthetic bars (``jiritsu.market.synth.synth_candles``, several seeds). Every bar in a
  signal zone counts as a firing, with no position or ``min_confidence`` filter: again an upper
  bound;
* news scoring with ``news_sentiment.scorer = "gemini"`` makes one call per batch of up to ten
  new items per fetch (``--news-items-per-fetch`` assumed new items per fetch);
* tokens per call are measured on the real prompts (``jiritsu.advisors.prompt`` and
  ``jiritsu.news.scoring``) for a typical snapshot/batch, counted the way the fake Gemini counts
  them: characters / 4 over system instruction (as sent) + user text. Real tokenisers give more
  tokens for digit-heavy text, and gemini-2.5 models also bill "thinking" tokens as output,
  which no offline estimate can know: see the printed note.

Every call is assumed to succeed on its first attempt; retries, 429s and invalid answers each
add a request.

    .venv/bin/python scripts/gemini_usage.py [--config config.toml] [--days 30] [--seeds 5]
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "lib"))

CHARS_PER_TOKEN = 4  # what tests/fakes/gemini.py reports as usage
TYPICAL_REASON = (
    "RSI 24.1 is deep in the oversold zone while ADX 18 shows no strong trend and sentiment "
    "is mildly positive; a mean-reversion long is reasonable."
)
TYPICAL_NEWS_TEXT = (  # about 350 characters: a headline and an RSS summary
    "Bitcoin slips below $62,000 as ETF outflows continue for a third day. Spot bitcoin "
    "exchange-traded funds in the US recorded net outflows of about $200 million on Tuesday, "
    "extending a streak that analysts attribute to profit-taking after last month's rally, "
    "while funding rates on perpetual futures turned slightly negative."
)


@dataclass(frozen=True)
class Line:
    source: str
    calls_per_day: float
    prompt_tokens: int
    output_tokens: int
    note: str

    @property
    def tokens_per_day(self) -> float:
        return self.calls_per_day * (self.prompt_tokens + self.output_tokens)


def tokens(text: str) -> int:
    return max(1, len(text) // CHARS_PER_TOKEN)


def bars_per_day(timeframe: str) -> float:
    if timeframe.isdigit():
        return 1440 / int(timeframe)
    return {"D": 1.0, "W": 1 / 7, "M": 12 / 365}[timeframe]


def timeframe_minutes(timeframe: str) -> int:
    return int(timeframe) if timeframe.isdigit() else {"D": 1440, "W": 10080, "M": 43200}[timeframe]


WARMUP_BARS = 300  # bars skipped at the start of each synthetic series (indicator warm-up)


def rule_fires(settings: Any, bot: Any, frame: Any) -> Any:
    """Boolean array: where the bot's strategy gives BUY or SELL."""
    from jiritsu.market.frames import to_numpy
    from jiritsu.strategy.contract import Bars, checked_signals
    from jiritsu.strategy.registry import resolve

    strategy, params = resolve(settings, bot)
    action, _ = checked_signals(strategy, Bars.from_columns(to_numpy(frame)), params)
    return action != 0


def firing_rate(settings: Any, bot: Any, days: int, seeds: int) -> float:
    """Share of closed bars on which the strategy fires, over synthetic markets."""
    from jiritsu.market.synth import synth_candles

    fired = total = 0
    for seed in range(seeds):
        frame = synth_candles(
            days=days, seed=seed, interval_minutes=timeframe_minutes(bot.timeframe)
        )
        signal = rule_fires(settings, bot, frame)[WARMUP_BARS:]
        fired += int(signal.sum())
        total += signal.shape[0]
    return fired / total if total else 0.0


def typical_snapshot(settings: Any, bot: Any) -> Any:
    """A snapshot like the engine's, from synthetic bars and the real indicators."""
    import numpy as np

    from jiritsu import indicators
    from jiritsu.advisors.base import MarketSnapshot
    from jiritsu.market.synth import synth_candles

    frame = synth_candles(days=5, seed=42, interval_minutes=timeframe_minutes(bot.timeframe))
    c = frame["close"].to_numpy()
    h, lo, v = frame["high"].to_numpy(), frame["low"].to_numpy(), frame["volume"].to_numpy()
    from jiritsu.market.frames import to_numpy
    from jiritsu.strategy.contract import Bars
    from jiritsu.strategy.registry import resolve

    strategy, params = resolve(settings, bot)
    own = strategy.indicators(Bars.from_columns(to_numpy(frame)), params)
    atr_period = bot.dynamic_sizing.atr_period
    atr = indicators.atr(h, lo, c, atr_period)[-1]
    adx, plus_di, minus_di = (x[-1] for x in indicators.adx(h, lo, c, 14))
    return MarketSnapshot(
        bot=bot.name,
        profile="aggressive",
        symbol=bot.symbol,
        timeframe=bot.timeframe,
        bar_ts=datetime.fromtimestamp(int(frame["ts"][-1]) / 1000, tz=timezone.utc),
        price=float(c[-1]),
        ohlcv={
            "closes": [float(x) for x in c[-6:]],
            "return_1": float(c[-1] / c[-2] - 1),
            "return_12": float(c[-1] / c[-13] - 1),
            "return_48": float(c[-1] / c[-49] - 1),
            "high_48": float(np.max(h[-48:])),
            "low_48": float(np.min(lo[-48:])),
            "volume_last": float(v[-1]),
            "volume_avg_48": float(np.mean(v[-48:])),
        },
        indicators={
            **{name: float(values[-1]) for name, values in own.items()},
            "rsi": float(indicators.rsi(c, 14)[-1]),
            "atr": float(atr),
            "atr_pct": float(atr / c[-1]),
            "adx": float(adx),
            "plus_di": float(plus_di),
            "minus_di": float(minus_di),
        },
        position={"side": "Buy", "size": 0.0023, "avg_price": float(c[-20]), "unrealised_pnl": 1.7},
        sentiment=0.1834,
        sentiment_count=17,
    )


def advisor_tokens(settings: Any, bot: Any, hybrid: bool) -> tuple[int, int]:
    """(prompt, output) tokens of one advisor call, measured on the real prompt."""
    import json

    from jiritsu.advisors.prompt import Proposal, build_prompt
    from jiritsu.ai.gemini import DATA_ONLY_INSTRUCTION

    proposal = Proposal("BUY", 0.72, "RSI 24.1 below 25") if hybrid else None
    prompt = build_prompt(typical_snapshot(settings, bot), proposal)
    sent_system = f"{prompt.system}\n\n{DATA_ONLY_INSTRUCTION}"  # as GeminiClient sends it
    answer = json.dumps({"action": "BUY", "confidence": 0.72, "reason": TYPICAL_REASON})
    return tokens(sent_system + prompt.user), tokens(answer)


def news_tokens(items: int) -> tuple[int, int]:
    """(prompt, output) tokens of one news batch of ``items`` typical items."""
    import json

    from jiritsu.ai.gemini import DATA_ONLY_INSTRUCTION
    from jiritsu.news.scoring import SYSTEM_PROMPT, ScoreRequest, build_prompt

    batch = [(i, ScoreRequest(i, TYPICAL_NEWS_TEXT, "bitcoin")) for i in range(1, items + 1)]
    user = build_prompt(batch)
    answer = json.dumps(
        {"scores": [{"id": i, "score": -0.35, "label": "negative"} for i in range(1, items + 1)]}
    )
    return tokens(f"{SYSTEM_PROMPT}\n\n{DATA_ONLY_INSTRUCTION}" + user), tokens(answer)


def estimate(settings: Any, days: int, seeds: int, news_items: int) -> list[Line]:
    from jiritsu.news.scoring import BATCH_SIZE

    lines: list[Line] = []
    for bot in settings.sub_bots:
        if not bot.enabled or bot.advisor == "rules":
            continue
        per_day = bars_per_day(bot.timeframe)
        if bot.advisor == "gemini":
            pt, ot = advisor_tokens(settings, bot, hybrid=False)
            lines.append(Line(bot.name, per_day, pt, ot, f"gemini, {per_day:g} closed bars/day"))
            continue
        rate = firing_rate(settings, bot, days, seeds)
        pt, ot = advisor_tokens(settings, bot, hybrid=True)
        lines.append(
            Line(
                bot.name,
                per_day * rate,
                pt,
                ot,
                f"hybrid, {bot.strategy_params.rule} fires on {rate:.1%} of {per_day:g} "
                f"bars/day ({seeds} synthetic markets x {days} days)",
            )
        )
    news = settings.news_sentiment
    fetches = 1440 / news.fetch_interval_minutes
    batches = math.ceil(news_items / BATCH_SIZE) if news_items else 0
    pt, ot = news_tokens(min(news_items, BATCH_SIZE) or 1)
    if news.enabled and news.scorer == "gemini":
        lines.append(
            Line(
                "news",
                fetches * batches,
                pt,
                ot,
                f"{fetches:g} fetches/day x {batches} batch(es) of <= {BATCH_SIZE} items",
            )
        )
    else:
        lines.append(
            Line(
                "news",
                0,
                pt,
                ot,
                f"scorer is {news.scorer!r}: no Gemini calls (with scorer = 'gemini': "
                f"{fetches * batches:g} calls/day, {fetches * batches * (pt + ot):,.0f} "
                "tokens/day)",
            )
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "config.toml")
    parser.add_argument("--days", type=int, default=30, help="synthetic days per market")
    parser.add_argument("--seeds", type=int, default=5, help="synthetic markets")
    parser.add_argument(
        "--news-items-per-fetch",
        type=int,
        default=10,
        help="new keyword-matching items per fetch (assumed; 10 = one full batch)",
    )
    args = parser.parse_args(argv)

    from jiritsu.config import load_config

    loaded = load_config(args.config, environ={})  # the file as written, no local overrides
    settings = loaded.settings
    lines = estimate(settings, args.days, args.seeds, args.news_items_per_fetch)

    print(f"Gemini usage per day for {args.config} (model {settings.gemini.model})")
    print(
        f"{'source':<10} {'calls/day':>10} {'prompt tok':>10} {'output tok':>10} "
        f"{'tokens/day':>11}  how"
    )
    for line in lines:
        print(
            f"{line.source:<10} {line.calls_per_day:>10.1f} {line.prompt_tokens:>10} "
            f"{line.output_tokens:>10} {line.tokens_per_day:>11,.0f}  {line.note}"
        )
    calls = sum(line.calls_per_day for line in lines)
    total = sum(line.tokens_per_day for line in lines)
    g = settings.gemini
    print(
        f"{'total':<10} {calls:>10.1f} {'':>10} {'':>10} {total:>11,.0f}  "
        f"budget {g.daily_request_budget} requests ({calls / max(1, g.daily_request_budget):.1%})"
        f", {g.daily_token_budget:,} tokens ({total / max(1, g.daily_token_budget):.1%})"
    )
    print(
        f"Tokens: characters / {CHARS_PER_TOKEN} of system instruction (as sent) + user text,"
        " as the fake Gemini reports them. Not included: thinking tokens (gemini-2.5 models think"
        " by default and bill it as output, often several hundred per call), retries, 429s."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
