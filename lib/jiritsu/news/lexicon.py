"""Our own finance/crypto sentiment word list: deterministic, offline, reviewable in one file.

Why our own list rather than a package: general lexicons (VADER, AFINN) score social-media
moods and miss crypto terms ("hack", "exploit", "depeg", "halving", "ETF approval"); the
Loughran-McDonald finance dictionary is built for 10-K filings, counts words like "liability"
or "risk" as negative in every headline, and is not licensed for commercial use without
permission. A few hundred hand-picked words and phrases, versioned with the code, are enough
for headlines, cost no dependency, and a score can always be explained by :func:`explain`.

Scoring: every listed word or phrase found adds its weight (1 = mild, 2 = strong) to the
positive or negative side; a negator ("not", "no", "never", "without", "n't") in the three
tokens before a hit, within the same clause (punctuation ends one), flips it ("not bullish"
counts as negative). The score is
``(P - N) / (P + N + 1)``, so it lies strictly within (-1, 1), is 0 without hits, and more
evidence moves it further from 0. Labels: above +0.05 positive, below -0.05 negative, else
neutral. Change a weight or a word and :data:`LEXICON_VERSION` must change too, because it is
stored with every score.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LEXICON_VERSION = "jiritsu-lexicon-1"
NEUTRAL_BAND = 0.05
NEGATION_WINDOW = 3

POSITIVE: dict[str, int] = {
    # strong
    "soar": 2, "soars": 2, "soared": 2, "soaring": 2,
    "surge": 2, "surges": 2, "surged": 2, "surging": 2,
    "skyrocket": 2, "skyrockets": 2, "skyrocketed": 2,
    "skyrocketing": 2,
    "rocket": 2, "rockets": 2, "rocketed": 2,
    "boom": 2, "booming": 2,
    "breakthrough": 2, "breakthroughs": 2,
    "bullish": 2, "bull run": 2,
    "all-time high": 2, "all time high": 2, "record high": 2, "new high": 2,
    "etf approval": 2, "etf approved": 2, "approves etf": 2, "approved etf": 2,
    "skyrocketing demand": 2, "record inflows": 2,
    # mild
    "rally": 1, "rallies": 1, "rallied": 1, "rallying": 1,
    "gain": 1, "gains": 1, "gained": 1, "gaining": 1,
    "rise": 1, "rises": 1, "rose": 1, "rising": 1,
    "climb": 1, "climbs": 1, "climbed": 1, "climbing": 1,
    "jump": 1, "jumps": 1, "jumped": 1, "jumping": 1,
    "rebound": 1, "rebounds": 1, "rebounded": 1, "rebounding": 1,
    "recover": 1, "recovers": 1, "recovered": 1, "recovery": 1, "recovering": 1,
    "advance": 1, "advances": 1, "advanced": 1,
    "upgrade": 1, "upgrades": 1, "upgraded": 1,
    "upbeat": 1, "optimism": 1, "optimistic": 1, "confidence": 1, "confident": 1,
    "adoption": 1, "adopt": 1, "adopts": 1, "adopted": 1,
    "approve": 1, "approves": 1, "approved": 1, "approval": 1,
    "partnership": 1, "partners": 1, "partnered": 1,
    "launch": 1, "launches": 1, "launched": 1,
    "inflow": 1, "inflows": 1,
    "growth": 1, "grow": 1, "grows": 1, "growing": 1,
    "profit": 1, "profits": 1, "profitable": 1,
    "outperform": 1, "outperforms": 1, "outperformed": 1,
    "strong": 1, "stronger": 1, "strength": 1,
    "boost": 1, "boosts": 1, "boosted": 1,
    "support": 1, "supports": 1, "supportive": 1,
    "win": 1, "wins": 1, "won": 1, "victory": 1,
    "milestone": 1, "record": 1, "success": 1, "successful": 1,
    "accumulate": 1, "accumulating": 1, "accumulation": 1,
    "buy": 1, "buying": 1, "buys": 1,
    "green": 1, "upside": 1, "uptrend": 1, "breakout": 1,
    "legal clarity": 1, "regulatory clarity": 1, "dismissed": 1, "settles": 1,
    "institutional demand": 1, "demand": 1,
}  # fmt: skip

NEGATIVE: dict[str, int] = {
    # strong
    "crash": 2, "crashes": 2, "crashed": 2, "crashing": 2,
    "plunge": 2, "plunges": 2, "plunged": 2, "plunging": 2,
    "plummet": 2, "plummets": 2, "plummeted": 2, "plummeting": 2,
    "collapse": 2, "collapses": 2, "collapsed": 2, "collapsing": 2,
    "tumble": 2, "tumbles": 2, "tumbled": 2, "tumbling": 2,
    "hack": 2, "hacks": 2, "hacked": 2, "hacker": 2, "hackers": 2,
    "exploit": 2, "exploits": 2, "exploited": 2,
    "stolen": 2, "theft": 2, "heist": 2, "drained": 2,
    "scam": 2, "scams": 2, "fraud": 2, "fraudulent": 2, "ponzi": 2, "rug pull": 2,
    "bankrupt": 2, "bankruptcy": 2, "insolvent": 2, "insolvency": 2,
    "bearish": 2, "bear market": 2, "capitulation": 2,
    "liquidation": 2, "liquidations": 2, "liquidated": 2,
    "depeg": 2, "depegs": 2, "depegged": 2,
    "ban": 2, "bans": 2, "banned": 2, "crackdown": 2,
    "sell-off": 2, "selloff": 2, "sell off": 2, "bloodbath": 2, "meltdown": 2,
    "record low": 2, "new low": 2, "record losses": 2,
    # mild
    "drop": 1, "drops": 1, "dropped": 1, "dropping": 1,
    "fall": 1, "falls": 1, "fell": 1, "falling": 1,
    "decline": 1, "declines": 1, "declined": 1, "declining": 1,
    "slide": 1, "slides": 1, "slid": 1, "sliding": 1,
    "slump": 1, "slumps": 1, "slumped": 1,
    "sink": 1, "sinks": 1, "sank": 1, "sinking": 1,
    "dip": 1, "dips": 1, "dipped": 1,
    "loss": 1, "losses": 1, "lose": 1, "loses": 1, "lost": 1,
    "weak": 1, "weaker": 1, "weakness": 1,
    "fear": 1, "fears": 1, "panic": 1, "worry": 1, "worries": 1, "concern": 1, "concerns": 1,
    "risk": 1, "risks": 1, "risky": 1, "uncertainty": 1, "volatile": 1,
    "lawsuit": 1, "lawsuits": 1, "sue": 1, "sues": 1, "sued": 1,
    "charges": 1, "charged": 1, "indictment": 1, "indicted": 1,
    "investigation": 1, "probe": 1, "subpoena": 1, "fined": 1, "penalty": 1,
    "reject": 1, "rejects": 1, "rejected": 1, "rejection": 1, "delay": 1, "delays": 1,
    "delayed": 1,
    "outflow": 1, "outflows": 1,
    "delist": 1, "delists": 1, "delisted": 1, "delisting": 1,
    "halt": 1, "halts": 1, "halted": 1, "suspend": 1, "suspends": 1, "suspended": 1,
    "outage": 1, "down": 1, "downturn": 1, "downtrend": 1, "downgrade": 1, "downgraded": 1,
    "sell": 1, "selling": 1, "dump": 1, "dumps": 1, "dumped": 1,
    "warning": 1, "warns": 1, "warned": 1, "vulnerability": 1, "breach": 1,
    "red": 1, "downside": 1, "recession": 1, "inflation": 1, "layoffs": 1,
}  # fmt: skip

NEGATORS = frozenset({"not", "no", "never", "without", "nor", "neither", "hardly", "barely"})

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[.;:!?,()]")
_BOUNDARY = "|"  # punctuation ends a clause: no phrase and no negation reaches across it


@dataclass(frozen=True)
class Hit:
    """One lexicon entry found in a text, with its signed contribution."""

    phrase: str
    weight: int  # positive or negative after negation
    negated: bool


def _tokens(text: str) -> list[str]:
    raw = _TOKEN.findall(text.lower().replace("-", " ").replace("’", "'"))
    return [t if t[0].isalnum() else _BOUNDARY for t in raw]


def _phrases(table: dict[str, int]) -> dict[tuple[str, ...], int]:
    return {tuple(_tokens(k)): w for k, w in table.items()}


_POS = _phrases(POSITIVE)
_NEG = _phrases(NEGATIVE)
_MAX_PHRASE = max(len(p) for p in (*_POS, *_NEG))


def _is_negator(token: str) -> bool:
    return token in NEGATORS or token.endswith("n't")


def explain(text: str) -> list[Hit]:
    """Every lexicon hit in ``text`` (longest phrase first, no overlaps), in order."""
    tokens = _tokens(text)
    hits: list[Hit] = []
    i = 0
    while i < len(tokens):
        for size in range(min(_MAX_PHRASE, len(tokens) - i), 0, -1):
            gram = tuple(tokens[i : i + size])
            weight = _POS.get(gram) or -_NEG.get(gram, 0)
            if weight:
                window = tokens[max(0, i - NEGATION_WINDOW) : i]
                if _BOUNDARY in window:
                    window = window[len(window) - window[::-1].index(_BOUNDARY) :]
                negated = any(_is_negator(t) for t in window)
                hits.append(Hit(" ".join(gram), -weight if negated else weight, negated))
                i += size
                break
        else:
            i += 1
    return hits


def lexicon_score(text: str) -> float:
    """The sentiment of ``text`` in (-1, 1): ``(P - N) / (P + N + 1)``; 0.0 without hits."""
    hits = explain(text)
    positive = sum(h.weight for h in hits if h.weight > 0)
    negative = -sum(h.weight for h in hits if h.weight < 0)
    return round((positive - negative) / (positive + negative + 1), 6)


def label_for(score: float) -> str:
    """positive / negative / neutral with a small neutral band around 0."""
    if score > NEUTRAL_BAND:
        return "positive"
    if score < -NEUTRAL_BAND:
        return "negative"
    return "neutral"
