"""The classifier on real BTC history (Bitfinex BTCUSD 1-minute bars, 2017-2019, read from
``<repo>/../shared/data``; never copied into the repository).

Plausibility, not precision: 2017 was a rally (Q4 a blow-off top), 2018 a bear market (Q1 the
crash from the top, November the fall below 6000), 2019 a recovery (April to June). Each check
compares the share of readings per phase class with a tolerant bound. The distributions are
printed (``pytest -s``). One resample per year and timeframe, one indicator pass per setting.
"""

from __future__ import annotations

from datetime import datetime, timezone

import polars as pl
import pytest

from jiritsu.config.master import MarketPhaseSettings
from jiritsu.master.phase import (
    BEARISH,
    BULLISH,
    PhaseReading,
    classify,
    classify_series,
    phase_shares,
)
from tests.conftest import REPO

DATA = REPO.parent / "shared" / "data"
YEARS = (2017, 2018, 2019)
FILES = [DATA / f"bitfinex_BTCUSD_1m_{y}.csv.gz" for y in YEARS]


@pytest.fixture(autouse=True)
def _real_candles_present() -> None:
    """CI and every checkout have shared/ beside the repository: a missing file is a failure,
    never a silent skip."""
    missing = [f.name for f in FILES if not f.exists()]
    assert not missing, f"real candles missing from {DATA}: {missing}"


def day(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def bars() -> dict[str, pl.DataFrame]:
    """The three years resampled to daily and hourly bars (plus 2017's minutes)."""
    from jiritsu.market.frames import resample
    from jiritsu.market.importer import read_candle_file

    daily, hourly = [], []
    minutes_2017 = None
    for path in FILES:
        frame = read_candle_file(path).frame
        daily.append(resample(frame, "D"))
        hourly.append(resample(frame, "60"))
        if "2017" in path.name:
            minutes_2017 = frame
    return {"D": pl.concat(daily), "60": pl.concat(hourly), "1": minutes_2017}


def shares(readings: list[PhaseReading], start: str, end: str) -> dict[str, float]:
    """Phase shares of the bars that opened in [start, end), plus bull / bear totals."""
    chosen = [r for r in readings if day(start) <= r.bar_ts < day(end)]
    assert chosen, (start, end)
    out = phase_shares(chosen)
    out["bull"] = sum(out[p] for p in BULLISH)
    out["bear"] = sum(out[p] for p in BEARISH)
    return out


PERIODS = {
    "2017": ("2017-01-01", "2018-01-01"),
    "Q4 2017": ("2017-10-01", "2018-01-01"),
    "2018": ("2018-01-01", "2019-01-01"),
    "Q1 2018": ("2018-01-01", "2018-04-01"),
    "Nov 2018": ("2018-11-01", "2018-12-01"),
    "2019": ("2019-01-01", "2020-01-01"),
    "Apr-Jun 2019": ("2019-04-01", "2019-07-01"),
}


def table(title: str, readings: list[PhaseReading]) -> dict[str, dict[str, float]]:
    found = {name: shares(readings, *span) for name, span in PERIODS.items()}
    print(f"\n{title}")
    for name, s in found.items():
        cells = "  ".join(f"{k} {v * 100:3.0f}%" for k, v in s.items())
        print(f"  {name:<13} {cells}")
    return found


def test_daily_ema_cross_with_the_default_periods(bars: dict[str, pl.DataFrame]) -> None:
    settings = MarketPhaseSettings(timeframe="D", short_period=20, long_period=50)
    found = table(
        "EMA_Cross on daily bars, EMA 20/50",
        classify_series(bars["D"], settings, source_interval="D"),
    )
    assert found["2017"]["bull"] >= 0.8
    assert found["Q4 2017"]["strong_bull"] >= 0.7
    assert found["Q4 2017"]["bear"] == 0
    assert found["2018"]["bear"] >= 0.6
    assert found["Q1 2018"]["bear"] >= 0.6
    assert found["Nov 2018"]["bear"] >= 0.9
    assert found["Apr-Jun 2019"]["bull"] >= 0.9
    assert found["2019"]["bull"] > found["2019"]["bear"]


def test_daily_adx_with_short_periods(bars: dict[str, pl.DataFrame]) -> None:
    settings = MarketPhaseSettings(indicator="ADX", timeframe="D", short_period=7, long_period=14)
    found = table(
        "ADX on daily bars, ADX(14) with DI(7)",
        classify_series(bars["D"], settings, source_interval="D"),
    )
    assert found["2017"]["bull"] > found["2017"]["bear"]
    assert found["Q4 2017"]["bull"] >= 0.5
    assert found["2018"]["bear"] > found["2018"]["bull"]
    assert found["Q1 2018"]["bear"] >= 0.5
    assert found["Nov 2018"]["bear"] >= 0.5
    assert found["Nov 2018"]["bull"] == 0
    assert found["Apr-Jun 2019"]["bull"] >= 0.7


def test_the_shipped_default_config_is_plausible_too(bars: dict[str, pl.DataFrame]) -> None:
    settings = MarketPhaseSettings()  # EMA_Cross on hourly bars, 20/50, weak 0.5 %, strong 2 %
    assert (settings.indicator, settings.timeframe) == ("EMA_Cross", "60")
    found = table(
        "shipped default: EMA_Cross on hourly bars, EMA 20/50",
        classify_series(bars["60"], settings, source_interval="60"),
    )
    # Hourly readings are noisier; the direction must still dominate in every period.
    for name in ("2017", "Q4 2017", "Apr-Jun 2019"):
        assert found[name]["bull"] >= 1.5 * found[name]["bear"], name
    for name in ("2018", "Nov 2018"):
        assert found[name]["bear"] > found[name]["bull"], name
    assert found["Nov 2018"]["bear"] >= 2 * found["Nov 2018"]["bull"]


def test_a_live_reading_from_minutes_agrees_with_the_daily_history(
    bars: dict[str, pl.DataFrame],
) -> None:
    settings = MarketPhaseSettings(timeframe="D", short_period=20, long_period=50)
    series = {r.close_ts: r for r in classify_series(bars["D"], settings, source_interval="D")}
    now = day("2017-12-15T01:00")  # the day of 12-15 is forming: its minutes are ignored
    live = classify(bars["1"], settings, now=now, symbol="BTCUSD")
    assert live.close_ts == day("2017-12-15")
    assert live.phase == "strong_bull"
    assert live.value == pytest.approx(series[live.close_ts].value)
