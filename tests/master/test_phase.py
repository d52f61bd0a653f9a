"""The market-phase classifier: its rules at the thresholds, hand-computed readings, closed bars
only, one pass over history equal to bar-by-bar readings, and the market_phases record."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from jiritsu.clock import RealClock, from_ms
from jiritsu.config.master import MarketPhaseSettings, PhaseThresholds
from jiritsu.config.settings import Settings
from jiritsu.market.data import MarketData
from jiritsu.master.phase import (
    PhaseUnavailable,
    adx_phase,
    classify,
    classify_series,
    closed_bars,
    current_phase,
    ema_cross_phase,
    history,
    latest_phase,
    record_reading,
    record_readings,
)
from tests.master import T0, H, M, closes_frame, settings

TH = PhaseThresholds()  # weak 0.5 %, strong 2 %, ADX 20 / 40


def mp(indicator: str = "EMA_Cross", timeframe: str = "1", short: int = 2, long: int = 3):
    return MarketPhaseSettings(
        indicator=indicator, timeframe=timeframe, short_period=short, long_period=long
    )


# --------------------------------------------------------------------------- the rules


@pytest.mark.parametrize(
    ("spread", "slope", "phase"),
    [
        (0.0049, 0.01, "ranging"),  # below weak_pct
        (-0.0049, -0.01, "ranging"),
        (0.005, -0.01, "weak_bull"),  # weak_pct itself is not ranging any more
        (0.0199, 0.01, "weak_bull"),
        (0.02, 0.001, "strong_bull"),  # strong_pct and the short EMA still rising
        (0.02, 0.0, "weak_bull"),  # a flat short EMA does not confirm a strong trend
        (0.05, -0.001, "weak_bull"),  # wide spread, short EMA turned down: fading
        (-0.005, 0.0, "weak_bear"),
        (-0.02, -0.0001, "strong_bear"),
        (-0.05, 0.002, "weak_bear"),
    ],
)
def test_ema_cross_rule_at_the_thresholds(spread: float, slope: float, phase: str) -> None:
    assert ema_cross_phase(spread, slope, TH) == phase


@pytest.mark.parametrize(
    ("adx", "plus_di", "minus_di", "phase"),
    [
        (19.99, 30, 10, "ranging"),  # below adx_trend: no trend whatever the direction
        (20, 30, 10, "weak_bull"),
        (39.99, 10, 30, "weak_bear"),
        (40, 30, 10, "strong_bull"),
        (55, 10, 30, "strong_bear"),
        (45, 20, 20, "ranging"),  # no direction
    ],
)
def test_adx_rule_at_the_thresholds(adx: float, plus_di: float, minus_di: float, phase: str):
    assert adx_phase(adx, plus_di, minus_di, TH) == phase


# --------------------------------------------------------------------------- hand-computed


def test_ema_cross_reading_worked_by_hand() -> None:
    # EMA(2): seed mean(10, 10) = 10 at bar 1, alpha 2/3; bar 5: 10 + (13 - 10) * 2/3 = 12
    # EMA(3): seed 10 at bar 2, alpha 1/2;             bar 5: 10 + (13 - 10) / 2  = 11.5
    # spread = 0.5 / 11.5 = 1/23 = 4.35 % >= 2 %; slope = (12 - 10) / 10 = +20 % -> strong_bull
    frame = closes_frame(T0, [10, 10, 10, 10, 10, 13])
    reading = classify(frame, mp(), now=from_ms(T0 + 6 * M), symbol="BTCUSDT")
    assert reading.phase == "strong_bull"
    assert reading.details["ema_short"] == pytest.approx(12)
    assert reading.details["ema_long"] == pytest.approx(11.5)
    assert reading.value == pytest.approx(1 / 23)
    assert reading.details["slope"] == pytest.approx(0.2)
    assert (reading.bar_ts, reading.close_ts) == (from_ms(T0 + 5 * M), from_ms(T0 + 6 * M))
    assert "spread +4.35 %" in reading.summary()


def test_ema_cross_weak_bear_worked_by_hand() -> None:
    # EMA(2) bar 5: 10 - 0.3 * 2/3 = 9.8; EMA(3): 10 - 0.3 / 2 = 9.85
    # spread = -0.05 / 9.85 = -0.508 % (between 0.5 % and 2 %) -> weak_bear
    frame = closes_frame(T0, [10, 10, 10, 10, 10, 9.7])
    reading = classify(frame, mp(), now=from_ms(T0 + 6 * M))
    assert reading.phase == "weak_bear"
    assert reading.value == pytest.approx(-0.05 / 9.85)
    assert reading.details["slope"] == pytest.approx(-0.02)


def _ohlc(rows: list[tuple[float, float, float]]) -> pl.DataFrame:
    from jiritsu.market.frames import CANDLE_SCHEMA

    return pl.DataFrame(
        [(T0 + i * M, c, h, lo, c, 1.0) for i, (h, lo, c) in enumerate(rows)],
        schema=CANDLE_SCHEMA,
        orient="row",
    )


@pytest.mark.parametrize("direction", [1, -1])
def test_adx_reading_worked_by_hand(direction: int) -> None:
    # Every bar 1 higher (or lower) with a range of 2: true range 2, the directional move 1 on
    # one side and 0 on the other, so DI = 100 * p / (2 p) = 50 and 0, DX = 100, ADX = 100.
    rows = [(101 + direction * i, 99 + direction * i, 100 + direction * i) for i in range(8)]
    reading = classify(_ohlc(rows), mp("ADX"), now=from_ms(T0 + 8 * M))
    up, down = (50, 0) if direction > 0 else (0, 50)
    assert reading.details["plus_di"] == pytest.approx(up)
    assert reading.details["minus_di"] == pytest.approx(down)
    assert reading.value == pytest.approx(100)
    assert reading.phase == ("strong_bull" if direction > 0 else "strong_bear")


def test_too_few_closed_bars_is_a_usage_error() -> None:
    frame = closes_frame(T0, [10, 10, 10, 10, 10, 13])
    with pytest.raises(PhaseUnavailable, match=r"4 closed 1 bars .* needs at least 5"):
        classify(frame, mp(), now=from_ms(T0 + 4 * M + 30_000))


# --------------------------------------------------------------------------- closed bars only


def test_closed_bars_by_time_and_by_stored_data() -> None:
    minutes = closes_frame(T0, [100.0 + i for i in range(150)])  # minute i closes at 100 + i
    hourly = "60"

    def closes(frame: pl.DataFrame, now_ms: int) -> list[float]:
        return closed_bars(frame, hourly, now=from_ms(now_ms))["close"].to_list()

    assert closes(minutes, T0 + 150 * M + 30_000) == [159, 219]  # hour 2 is still forming
    assert closes(minutes, T0 + 120 * M) == [159, 219]  # hour 1 closes exactly at 02:00
    assert closes(minutes, T0 + 120 * M - 1) == [159]  # its last minute has not closed yet
    lagging = minutes.filter(pl.col("ts") < T0 + 110 * M)
    assert closes(lagging, T0 + 150 * M) == [159]  # hour 1's data stops at 01:50
    gap = minutes.filter(~pl.col("ts").is_in([T0 + 119 * M, T0 + 120 * M]))
    assert closes(gap, T0 + 150 * M) == [159, 218]  # a real gap: later data proves hour 1 over


def _zigzag(minutes: int = 60) -> pl.DataFrame:
    return closes_frame(T0, [100 + 0.5 * i + (3 if i % 7 == 0 else 0) for i in range(minutes)])


def test_the_classifier_never_reads_a_bar_that_has_not_closed() -> None:
    settings_5m = mp(timeframe="5", short=2, long=4)
    now = from_ms(T0 + 47 * M + 30_000)  # the 5-minute bar of 00:45 is forming
    frame = _zigzag()
    before = classify(frame, settings_5m, now=now)
    assert before.close_ts == from_ms(T0 + 45 * M)

    def wild(f: pl.DataFrame, from_minute: int) -> pl.DataFrame:
        late = pl.col("ts") >= T0 + from_minute * M
        return f.with_columns(
            *(pl.when(late).then(pl.col(c) * 3).otherwise(pl.col(c)).alias(c)
              for c in ("open", "high", "low", "close"))
        )  # fmt: skip

    assert classify(wild(frame, 45), settings_5m, now=now) == before  # the open bar changed
    assert classify(wild(frame, 47), settings_5m, now=now) == before  # the open minute too
    gone = frame.filter(pl.col("ts") < T0 + 45 * M)
    assert classify(gone, settings_5m, now=now) == before  # or not there at all
    changed = classify(wild(frame, 44), settings_5m, now=now)  # control: a closed minute
    assert changed.value != before.value


@pytest.mark.parametrize("indicator", ["EMA_Cross", "ADX"])
def test_one_pass_over_history_equals_a_reading_at_every_bar_close(indicator: str) -> None:
    from jiritsu.market.synth import synth_candles

    frame = synth_candles(days=3, seed=7)  # 1-minute bars without gaps
    hourly = mp(indicator, "60", short=5, long=12)
    series = classify_series(frame, hourly, symbol="BTCUSDT")
    first = 12 if indicator == "EMA_Cross" else 24  # bars before the first reading
    assert len(series) == 72 - first + 1
    assert series[-1].close_ts == from_ms(int(frame["ts"][0]) + 72 * H)
    for reading in series[::7]:
        assert classify(frame, hourly, now=reading.close_ts, symbol="BTCUSDT") == reading


# --------------------------------------------------------------------------- the record


def test_readings_are_recorded_once_per_bar(engine: Engine) -> None:
    from jiritsu.db.models import MarketPhase
    from jiritsu.market.synth import synth_candles

    series = classify_series(
        synth_candles(days=2, seed=3), mp("EMA_Cross", "60", 5, 12), symbol="BTCUSDT"
    )
    assert latest_phase(engine) is None
    assert record_readings(engine, series[:10]) == 10
    assert record_readings(engine, series) == len(series) - 10  # the first ten were stored
    assert record_reading(engine, series[-1]) is False
    with Session(engine) as session:
        rows = session.query(MarketPhase).order_by(MarketPhase.ts).all()
    assert len(rows) == len(series)
    last = rows[-1]
    assert (last.ts, last.symbol, last.phase, last.indicator) == (
        series[-1].close_ts,
        "BTCUSDT",
        series[-1].phase,
        "EMA_Cross",
    )
    assert last.value == pytest.approx(series[-1].value)
    assert last.details["timeframe"] == "60"
    assert last.details["bar_ts"] == series[-1].bar_ts.isoformat()
    assert latest_phase(engine, "BTCUSDT") == series[-1].phase
    assert latest_phase(engine, "ETHUSDT") is None


def market(engine: Engine, cfg: Settings) -> MarketData:
    """The stored candles through the market-data service (offline), on the wall clock."""
    from jiritsu.runtime import market_data

    return market_data(cfg, engine, RealClock())


def _store_candles(engine: Engine, data_dir: Path, symbol: str, interval: str, frame) -> None:
    from jiritsu.market.store import CandleStore, cache_root

    CandleStore(engine, cache_root(data_dir)).write(symbol, interval, frame)


def test_live_readings_come_from_the_candle_store(engine: Engine, tmp_path: Path) -> None:
    from jiritsu.market.frames import resample
    from jiritsu.market.synth import synth_candles

    frame = synth_candles(days=4, seed=11)  # 2024-01-01 .. 2024-01-05
    end = from_ms(int(frame["ts"][-1]) + M)
    cfg = settings(tmp_path, master_bot={"market_phase": {"short_period": 5, "long_period": 12}})
    _store_candles(engine, tmp_path, "BTCUSDT", "1", frame)

    now = end + timedelta(seconds=30)
    reading = current_phase(market(engine, cfg), cfg, now=now)
    assert (reading.symbol, reading.timeframe, reading.close_ts) == ("BTCUSDT", "60", end)
    assert not reading.stale
    # candles stopped coming
    later = current_phase(market(engine, cfg), cfg, now=end + timedelta(days=30))
    assert later.close_ts == end  # still read (from the newest stored bars) ...
    assert later.stale  # ... but flagged

    # Only hourly bars stored for another symbol: they are the source.
    _store_candles(engine, tmp_path, "ETHUSDT", "60", resample(frame, "60"))
    eth = cfg.model_copy(
        update={"master_bot": cfg.master_bot.model_copy(update={"index_symbol": "ETHUSDT"})}
    )
    from_hourly = current_phase(market(engine, eth), eth, now=now)
    assert (from_hourly.close_ts, from_hourly.phase) == (reading.close_ts, reading.phase)
    assert from_hourly.value == pytest.approx(reading.value)

    span = history(market(engine, cfg), cfg, start=end - timedelta(hours=10), end=end)
    assert [r.close_ts for r in span] == [end - timedelta(hours=10 - i) for i in range(11)]
    assert (
        span[-1].phase
        == classify_series(frame, cfg.master_bot.market_phase, source_interval="1")[-1].phase
    )


def test_a_short_run_of_fresh_minutes_does_not_hide_a_complete_hourly_series(
    engine: Engine, tmp_path: Path
) -> None:
    from jiritsu.market.frames import resample
    from jiritsu.market.synth import synth_candles

    frame = synth_candles(days=4, seed=5)
    end = from_ms(int(frame["ts"][-1]) + M)
    cut = int(frame["ts"][-1]) + M - H
    # hourly bars up to an hour ago; minutes only for the last 3 hours (a trade loop just began)
    _store_candles(
        engine, tmp_path, "BTCUSDT", "60", resample(frame.filter(pl.col("ts") < cut), "60")
    )
    _store_candles(engine, tmp_path, "BTCUSDT", "1", frame.filter(pl.col("ts") >= cut - 2 * H))
    cfg = settings(tmp_path, master_bot={"market_phase": {"short_period": 5, "long_period": 12}})
    reading = current_phase(market(engine, cfg), cfg, now=end + timedelta(seconds=30))
    assert reading.close_ts == end - timedelta(hours=1)  # from the hourly series
    assert reading.details["bars"] > 12


@pytest.mark.parametrize("indicator", ["EMA_Cross", "ADX"])
def test_a_replays_readings_from_bars_resampled_once_equal_resampling_each_window(
    sqlite_engine: Engine, tmp_path: Path, indicator: str
) -> None:
    """Holding the whole history (a replay, a simulation), a reading slices the index's bars
    resampled once: the same reading as resampling its window, or the window is resampled."""
    from jiritsu.clock import SimClock
    from jiritsu.market.synth import synth_candles
    from jiritsu.master.phase import _held_closed_bars
    from jiritsu.runtime import market_data

    frame = synth_candles(days=8, seed=13)
    minute = (pl.col("ts") - int(frame["ts"][0])) // M
    frame = frame.filter(
        (minute % 61 != 59)  # minutes missing at the ends of hours
        & ~minute.is_between(3 * 1440 + 300, 3 * 1440 + 700)  # hours without candles
        & ~minute.is_between(5 * 1440, 5 * 1440 + 95)
    )
    _store_candles(sqlite_engine, tmp_path, "BTCUSDT", "1", frame)
    cfg = settings(tmp_path, master_bot={"market_phase": {
        "indicator": indicator, "short_period": 5, "long_period": 12}})  # fmt: skip
    clock = SimClock(int(frame["ts"][0]))

    held = market_data(cfg, sqlite_engine, clock)
    held.frames()  # a replay loads every stored bar
    windows = market_data(cfg, sqlite_engine, clock)
    sliced = resampled = 0
    for i, hour in enumerate(range(int(frame["ts"][0]), int(frame["ts"][-1]) + 2 * H, H)):
        now_ms = hour + (17 * M if i % 5 == 0 else 0)  # the jobs' hours, and some minutes
        clock.advance_to(now_ms)
        now = from_ms(now_ms)
        if _held_closed_bars(held, cfg, now) is None:
            resampled += 1
        else:
            sliced += 1
        try:
            want: object = current_phase(windows, cfg, now=now)
        except PhaseUnavailable as exc:
            want = str(exc)
        try:
            got: object = current_phase(held, cfg, now=now)
        except PhaseUnavailable as exc:
            got = str(exc)
        assert got == want, now
    assert sliced > 100  # windows that start on the hour
    assert resampled > 10  # after the gaps, windows anchored off the hour
