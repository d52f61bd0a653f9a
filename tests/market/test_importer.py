"""Importing candle files written by the tests: formats, ts styles, and every kind of bad row
with its line number."""

from __future__ import annotations

import gzip
from datetime import datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest

from jiritsu.errors import ExitCode, UsageError
from jiritsu.market.frames import CANDLE_SCHEMA
from jiritsu.market.importer import BadRow, CandleFileError, read_candle_file

M = 60_000
T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z
HEADER = "ts,open,high,low,close,volume"
GOOD = [
    f"{T0},100,110,90,105,1.5",
    f"{T0 + M},105,106,104,104.5,0",
    f"{T0 + 2 * M},104.5,104.5,101,102,2.25",
]
GOOD_FRAME = pl.DataFrame(
    [
        (T0, 100.0, 110.0, 90.0, 105.0, 1.5),
        (T0 + M, 105.0, 106.0, 104.0, 104.5, 0.0),
        (T0 + 2 * M, 104.5, 104.5, 101.0, 102.0, 2.25),
    ],
    schema=CANDLE_SCHEMA,
    orient="row",
)


def _csv(tmp_path: Path, lines: list[str], name: str = "bars.csv", newline: str = "\n") -> Path:
    path = tmp_path / name
    data = (newline.join(lines) + newline).encode()
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    return path


def _bad(path: Path) -> list[BadRow]:
    with pytest.raises(CandleFileError) as info:
        read_candle_file(path)
    return info.value.bad_rows


# --- good files ------------------------------------------------------------------------------


def test_good_csv(tmp_path: Path) -> None:
    path = _csv(tmp_path, [HEADER, *GOOD])
    result = read_candle_file(path)
    assert result.frame.equals(GOOD_FRAME)
    assert result.bad_rows == []
    assert result.duplicates_dropped == 0
    assert result.source == path


def test_good_csv_gz(tmp_path: Path) -> None:
    result = read_candle_file(_csv(tmp_path, [HEADER, *GOOD], name="bars.csv.gz"))
    assert result.frame.equals(GOOD_FRAME)


def test_crlf_bom_padding_quotes_and_column_order(tmp_path: Path) -> None:
    lines = [
        "\ufeff Close , VOLUME,ts,open,high,low",
        f'105, 1.5 ,"{T0}",100,110,90',
        f"104.5,0,{T0 + M},105,106,104",
        f'"102","2.25",{T0 + 2 * M},104.5,104.5,101',
    ]
    result = read_candle_file(_csv(tmp_path, lines, newline="\r\n"))
    assert result.frame.equals(GOOD_FRAME)


def test_blank_lines_are_ignored(tmp_path: Path) -> None:
    result = read_candle_file(_csv(tmp_path, [HEADER, GOOD[0], "", "   ", GOOD[1], GOOD[2], ""]))
    assert result.frame.equals(GOOD_FRAME)


def test_parquet_with_integer_ts(tmp_path: Path) -> None:
    path = tmp_path / "bars.parquet"
    GOOD_FRAME.write_parquet(path)
    assert read_candle_file(path).frame.equals(GOOD_FRAME)


@pytest.mark.parametrize("zone", [None, "UTC", "Asia/Tokyo"])
def test_parquet_with_datetime_ts(tmp_path: Path, zone: str | None) -> None:
    stamps = pl.from_epoch(GOOD_FRAME["ts"], time_unit="ms")  # naive = UTC
    if zone:
        stamps = stamps.dt.replace_time_zone("UTC").dt.convert_time_zone(zone)
    path = tmp_path / "bars.parquet"
    GOOD_FRAME.with_columns(ts=stamps).write_parquet(path)
    assert read_candle_file(path).frame.equals(GOOD_FRAME)


def test_parquet_with_text_columns(tmp_path: Path) -> None:
    path = tmp_path / "bars.parquet"
    frame = GOOD_FRAME.cast(pl.String)
    frame.write_parquet(path)
    assert read_candle_file(path).frame.equals(GOOD_FRAME)


def test_iso_timestamps_with_z_offset_and_naive(tmp_path: Path) -> None:
    lines = [
        HEADER,
        "2024-01-01T00:00:00Z,1,1,1,1,1",
        "2024-01-01T01:01:00+01:00,1,1,1,1,1",  # 00:01Z
        "2024-01-01 00:02:00,1,1,1,1,1",  # naive = UTC
        "2023-12-31T19:03:00.000-05:00,1,1,1,1,1",  # 00:03Z
        "2024-01-01T00:04:00.250Z,1,1,1,1,1",  # milliseconds kept
        "2024-01-01T05:35+0530,1,1,1,1,1",  # 00:05Z, no seconds, offset without colon
    ]
    result = read_candle_file(_csv(tmp_path, lines), bar_ms=1)  # the parsing alone: any grid
    assert result.frame["ts"].to_list() == [
        T0,
        T0 + M,
        T0 + 2 * M,
        T0 + 3 * M,
        T0 + 4 * M + 250,
        T0 + 5 * M,
    ]


def test_iso_timestamps_match_python(tmp_path: Path) -> None:
    start = datetime(2019, 3, 31, 0, 58, tzinfo=timezone.utc)
    stamps = [start + timedelta(minutes=i) for i in range(5)]
    lines = [HEADER] + [f"{s.isoformat()},1,2,1,2,3" for s in stamps]
    result = read_candle_file(_csv(tmp_path, lines))
    assert result.frame["ts"].to_list() == [int(s.timestamp() * 1000) for s in stamps]


# --- bad rows ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (f"{T0 + 3 * M},104,abc,101,102,1", "high 'abc' is not a number"),
        (f"{T0 + 3 * M},104,,101,102,1", "high is missing"),
        (f"{T0 + 3 * M},104,105,101,102", "expected 6 comma-separated fields, found 5"),
        (f"{T0 + 3 * M},104,105,101,102,1,7", "expected 6 comma-separated fields, found 7"),
        (f"{T0 + 3 * M},nan,105,101,102,1", "open is NaN"),
        (f"{T0 + 3 * M},104,inf,101,102,1", "high is inf"),
        (f"{T0 + 3 * M},104,105,101,102,-1", "volume -1 is negative"),
        (f"{T0 + 3 * M},-104,105,-101,102,1", "open -104 is not positive"),
        (f"{T0 + 3 * M},0,105,0,102,1", "low 0 is not positive"),
        (f"{T0 + 3 * M},104,103,101,102,1", "high 103.0 < max(open, close) 104.0"),
        (f"{T0 + 3 * M},104,105,102.5,102,1", "low 102.5 > min(open, close) 102.0"),
        (f"{(T0 + 3 * M) // 1000},104,105,101,102,1", "seconds instead of milliseconds"),
        ("12.5e3,104,105,101,102,1", "is not integer epoch milliseconds"),
        (f"{T0 - M},104,105,101,102,1", "out of order: ts '1704067140000' is not after line 4"),
        (f"{T0 + 3 * M + 123},104,105,101,102,1", "is not on the 60000 ms bar grid"),
    ],
)
def test_each_bad_row_is_reported_with_its_line(tmp_path: Path, row: str, reason: str) -> None:
    # header = line 1, good rows = lines 2..4, the bad row = line 5, another good row = line 6
    path = _csv(tmp_path, [HEADER, *GOOD, row, f"{T0 + 4 * M},1,1,1,1,1"])
    bad = _bad(path)
    assert len(bad) == 1
    assert bad[0].line == 5
    assert reason in bad[0].reason


def test_line_numbers_count_blank_lines(tmp_path: Path) -> None:
    path = _csv(tmp_path, [HEADER, GOOD[0], "", "", GOOD[1], f"{T0 + 2 * M},1,0.5,1,1,1"])
    assert [b.line for b in _bad(path)] == [6]


def test_all_reasons_of_a_row_are_listed(tmp_path: Path) -> None:
    path = _csv(tmp_path, [HEADER, f"{T0},0,110,90,105,"])
    (bad,) = _bad(path)
    assert bad.line == 2
    assert "volume is missing" in bad.reason
    assert "open 0 is not positive" in bad.reason


def test_iso_file_with_a_garbled_ts(tmp_path: Path) -> None:
    lines = [HEADER, "2024-01-01T00:00:00Z,1,1,1,1,1", "yesterday,1,1,1,1,1"]
    lines += ["2024-01-01T00:02:00Z,1,1,1,1,1"]
    assert _bad(_csv(tmp_path, lines)) == [BadRow(3, "ts 'yesterday' is not an ISO-8601 time")]


def test_ts_style_is_what_most_rows_use(tmp_path: Path) -> None:
    # the first row's ts is an ISO time, but the file is milliseconds: only that row is bad
    lines = [HEADER, "2024-01-01T00:00:00Z,1,1,1,1,1", *GOOD]
    bad = _bad(_csv(tmp_path, lines))
    assert [b.line for b in bad] == [2]
    assert "not integer epoch milliseconds" in bad[0].reason


def test_misplaced_row_is_the_one_called_out_of_order(tmp_path: Path) -> None:
    # minutes 0,1,2,30,3,4,5: only the row with minute 30 (line 5) is out of place
    minutes = [0, 1, 2, 30, 3, 4, 5]
    lines = [HEADER] + [f"{T0 + m * M},1,1,1,1,1" for m in minutes]
    bad = _bad(_csv(tmp_path, lines))
    assert [b.line for b in bad] == [5]
    assert bad[0].reason == (
        f"out of order: ts '{T0 + 30 * M}' is not before line 6 (ts '{T0 + 3 * M}')"
    )


def test_swapped_rows(tmp_path: Path) -> None:
    minutes = [0, 1, 3, 2, 4]  # line 5 (minute 2) comes after minute 3 on line 4
    lines = [HEADER] + [f"{T0 + m * M},1,1,1,1,1" for m in minutes]
    bad = _bad(_csv(tmp_path, lines))
    assert len(bad) == 1
    assert bad[0].line in (4, 5)
    assert bad[0].reason.startswith("out of order")


def test_exact_duplicates_are_dropped_and_counted(tmp_path: Path) -> None:
    lines = [HEADER, GOOD[0], GOOD[0], GOOD[1], GOOD[2], GOOD[0], GOOD[2]]
    result = read_candle_file(_csv(tmp_path, lines))
    assert result.frame.equals(GOOD_FRAME)
    assert result.duplicates_dropped == 3
    assert result.bad_rows == []


def test_same_ts_with_different_values_is_bad_on_every_line(tmp_path: Path) -> None:
    other = f"{T0 + M},105,107,104,104.5,0"  # same ts as GOOD[1], different high
    bad = _bad(_csv(tmp_path, [HEADER, *GOOD, other]))
    assert [b.line for b in bad] == [3, 5]
    assert all(
        b.reason == f"ts '{T0 + M}' is on 2 lines with different values (lines 3, 5)" for b in bad
    )


def test_skip_bad_returns_good_rows_and_the_bad_list(tmp_path: Path) -> None:
    lines = [HEADER, GOOD[0], "x,1,1,1,1,1", GOOD[1], GOOD[1], f"{T0 + 5 * M},1,0,1,1,1", GOOD[2]]
    result = read_candle_file(_csv(tmp_path, lines), skip_bad=True)
    assert result.frame.equals(GOOD_FRAME)
    assert [b.line for b in result.bad_rows] == [3, 6]
    assert result.duplicates_dropped == 1


def test_error_lists_the_first_ten_and_the_total(tmp_path: Path) -> None:
    lines = [HEADER] + [f"{T0 + i * M},1,0.5,1,1,1" for i in range(15)]  # lines 2..16 all bad
    with pytest.raises(CandleFileError) as info:
        read_candle_file(_csv(tmp_path, lines))
    err = info.value
    assert isinstance(err, UsageError)
    assert err.exit_code == ExitCode.USAGE
    assert [b.line for b in err.bad_rows] == list(range(2, 17))
    text = str(err)
    assert "15 bad lines; nothing was imported" in text
    assert "line 11: high 0.5 < max(open, close) 1.0" in text
    assert "line 12:" not in text
    assert "... and 5 more" in text


def test_parquet_bad_rows_are_numbered_by_row(tmp_path: Path) -> None:
    path = tmp_path / "bars.parquet"
    GOOD_FRAME.with_columns(
        high=pl.when(pl.col("ts") == T0 + M).then(1.0).otherwise(pl.col("high"))
    ).write_parquet(path)
    with pytest.raises(CandleFileError, match=r"row 2: high 1\.0 < max") as info:
        read_candle_file(path)
    assert info.value.bad_rows[0].line == 2


# --- files that cannot be read ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("ts,open,high,low,close", "missing volume"),
        ("time,open,high,low,close,volume", "missing ts; unexpected 'time'"),
        ("ts,open,high,low,close,volume,turnover", "unexpected 'turnover'"),
        ("ts,open,high,low,close,volume,volume", "repeated volume"),
        (GOOD[0], "has no header"),
    ],
)
def test_wrong_columns(tmp_path: Path, header: str, message: str) -> None:
    path = _csv(tmp_path, [header, *GOOD])
    with pytest.raises(CandleFileError, match=message):
        read_candle_file(path)


def test_wrong_parquet_columns(tmp_path: Path) -> None:
    path = tmp_path / "bars.parquet"
    GOOD_FRAME.rename({"ts": "time"}).write_parquet(path)
    with pytest.raises(CandleFileError, match="missing ts"):
        read_candle_file(path)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", "the file is empty"),
        ("header.csv", (HEADER + "\n").encode(), "no data rows"),
        ("blank.csv", (HEADER + "\n\n  \n").encode(), "no data rows"),
        ("blank-header.csv", b"\n" + "\n".join(GOOD).encode(), "line 1 must be the header"),
        ("cut.csv.gz", gzip.compress((HEADER + "\n" + "\n".join(GOOD)).encode())[:30], "cannot"),
        ("bad.parquet", b"PAR1 not really", "cannot read as Parquet"),
        ("bars.txt", b"ts,open\n", "unknown file type"),
    ],
)
def test_unreadable_files(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(CandleFileError, match=message) as info:
        read_candle_file(path)
    assert info.value.bad_rows == []


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(CandleFileError, match="no such file"):
        read_candle_file(tmp_path / "nope.csv")
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(CandleFileError, match="not a file"):
        read_candle_file(tmp_path / "dir.csv")


def test_empty_parquet(tmp_path: Path) -> None:
    path = tmp_path / "empty.parquet"
    GOOD_FRAME.clear().write_parquet(path)
    with pytest.raises(CandleFileError, match="no data rows"):
        read_candle_file(path)


def test_bars_of_another_interval_are_checked_on_its_grid(tmp_path: Path) -> None:
    hour = 60 * M
    path = _csv(tmp_path, [HEADER, f"{T0},1,2,0.5,1.5,1", f"{T0 + 90 * M},1,2,0.5,1.5,1"])
    with pytest.raises(CandleFileError) as info:
        read_candle_file(path, bar_ms=hour)
    assert [(b.line, b.reason) for b in info.value.bad_rows] == [
        (3, f"ts '{T0 + 90 * M}' is not on the {hour} ms bar grid")
    ]
    week = _csv(tmp_path, [HEADER, f"{T0},1,2,0.5,1.5,1"], name="w.csv")  # a Monday
    assert read_candle_file(week, bar_ms=7 * 1440 * M, offset_ms=4 * 1440 * M).frame.height == 1


def test_cli_refuses_off_grid_rows_and_info_survives_bad_stored_bars(isolated_env: Path) -> None:
    from typer.testing import CliRunner

    from jiritsu.config import load_config
    from jiritsu.db.migrate import open_database
    from jiritsu.market.store import CandleStore, cache_root
    from jiritsu_cli.main import app

    runner = CliRunner()
    path = _csv(isolated_env.parent, [HEADER, "1514764800123,1,2,0.5,1.5,1", *GOOD])
    refused = runner.invoke(app, ["data", "import", str(path)])
    assert refused.exit_code == 2, refused.output
    assert "line 2: ts '1514764800123' is not on the 60000 ms bar grid" in refused.output
    assert "Traceback" not in refused.output
    skipped = runner.invoke(app, ["data", "import", str(path), "--skip-bad"])
    assert skipped.exit_code == 0, skipped.output
    assert "skipped 1 bad rows (first: line 2" in skipped.output
    assert "3 new bars stored" in skipped.output
    # bars stored before the importer checked the grid (the frame itself is well formed)
    loaded = load_config(None)
    with open_database(loaded) as engine:
        store = CandleStore(engine, cache_root(loaded.settings.general.data_dir))
        store.write(
            "ETHUSDT", "1", GOOD_FRAME.with_columns(pl.Series("ts", [T0, T0 + M + 123, T0 + 3 * M]))
        )
    info = runner.invoke(app, ["data", "info"], env={"COLUMNS": "300"})
    assert info.exit_code == 0, info.output
    assert "bad data: timestamps are not on a 60000 ms grid" in info.output
    assert "Traceback" not in info.output
    assert "unexpected" not in info.output
