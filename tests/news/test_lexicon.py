"""The lexicon scorer: deterministic, offline, sign right on hand-made sentences."""

from __future__ import annotations

import pytest

from jiritsu.news.lexicon import (
    LEXICON_VERSION,
    NEGATIVE,
    POSITIVE,
    explain,
    label_for,
    lexicon_score,
)
from jiritsu.news.scoring import LexiconScorer, ScoreRequest

POSITIVE_SENTENCES = [
    "Bitcoin soars to a record high as ETF approval fuels inflows",
    "Ethereum upgrade succeeds; analysts turn bullish",
    "Crypto market rebounds strongly after a quiet week",
    "Institutional adoption of bitcoin keeps growing",
    "Prices are not falling anymore",  # negated negative
]
NEGATIVE_SENTENCES = [
    "Bitcoin plunges as exchange hack drains $40M",
    "Crypto lender files for bankruptcy; customers fear losses",
    "Regulator bans crypto trading and sues three exchanges",
    "Stablecoin depegs, liquidations cascade across the market",
    "Analysts are not bullish on ethereum",  # negated positive
]
NEUTRAL_SENTENCES = [
    "Bitcoin conference takes place in Lisbon next week",
    "The ethereum foundation publishes its annual report",
    "",
]


@pytest.mark.parametrize("text", POSITIVE_SENTENCES)
def test_positive_sentences_score_above_zero(text: str) -> None:
    assert lexicon_score(text) > 0.05
    assert label_for(lexicon_score(text)) == "positive"


@pytest.mark.parametrize("text", NEGATIVE_SENTENCES)
def test_negative_sentences_score_below_zero(text: str) -> None:
    assert lexicon_score(text) < -0.05
    assert label_for(lexicon_score(text)) == "negative"


@pytest.mark.parametrize("text", NEUTRAL_SENTENCES)
def test_sentences_without_sentiment_words_score_zero(text: str) -> None:
    assert lexicon_score(text) == 0.0
    assert label_for(0.0) == "neutral"


def test_exact_values_by_hand() -> None:
    # "soars" (+2), "record high" (+2, the phrase wins over "record" +1): P=4, N=0 -> 4/5
    assert lexicon_score("Bitcoin soars to a record high") == pytest.approx(0.8)
    # "hack" (-2): 0 - 2 / (2 + 1)
    assert lexicon_score("Exchange hack") == pytest.approx(-2 / 3)
    # "rally" (+1) and "drop" (-1) cancel: 0 / 3
    assert lexicon_score("A rally, then a drop") == 0.0
    # "not" flips "bullish" (+2 -> -2) within three tokens
    assert lexicon_score("Traders are not very bullish") == pytest.approx(-2 / 3)
    # outside the window it does not flip
    assert lexicon_score("Not that anyone asked, traders are bullish") == pytest.approx(2 / 3)
    # "don't" negates too; "sell-off" is one phrase
    # "don't" negates "panic" (-1 -> +1); "sell-off" is one phrase (-2): (1 - 2) / (1 + 2 + 1)
    assert lexicon_score("Don't panic over the sell-off") == pytest.approx(-0.25)
    # punctuation ends the negation: "no" does not reach "rally" (+1) -> 1 / 2
    assert lexicon_score("No, a rally") == pytest.approx(0.5)


def test_explain_shows_every_hit() -> None:
    hits = explain("Bitcoin did not crash; it rallied to an all-time high")
    assert [(h.phrase, h.weight, h.negated) for h in hits] == [
        ("crash", 2, True),
        ("rallied", 1, False),
        ("all time high", 2, False),
    ]


def test_scores_are_deterministic_and_bounded() -> None:
    text = " ".join(POSITIVE) + " " + " ".join(NEGATIVE)
    first = lexicon_score(text)
    assert all(lexicon_score(text) == first for _ in range(5))
    extreme = " ".join(["crash"] * 500)
    assert -1.0 < lexicon_score(extreme) < -0.99
    assert 0.99 < lexicon_score(" ".join(["soars"] * 500)) < 1.0


def test_word_lists_do_not_overlap() -> None:
    assert not set(POSITIVE) & set(NEGATIVE)


def test_the_scorer_stores_the_lexicon_version() -> None:
    result = LexiconScorer().score(
        [ScoreRequest(1, "Bitcoin soars"), ScoreRequest(2, "Exchange hacked")]
    )
    assert result.error is None
    assert result.failed == {}
    assert result.scores[1].score > 0 > result.scores[2].score
    assert {s.model for s in result.scores.values()} == {LEXICON_VERSION}
    assert result.scores[2].label == "negative"
