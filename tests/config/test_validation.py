"""Every kind of invalid input is a ConfigError naming the exact key path, all at once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from jiritsu.config import load_config
from jiritsu.errors import ConfigError
from tests.config.conftest import WriteConfig, messages

Data = dict[str, Any]


def _error(write_config: WriteConfig, mutate: Callable[[Data], None]) -> ConfigError:
    path = write_config(mutate)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.source == str(path.resolve())
    return info.value


def _range(key: str, **values: Any) -> Callable[[Data], None]:
    def mutate(d: Data) -> None:
        d["optimizer"]["param_ranges"][key] = {"start": 1, "end": 3, "step": 1, **values}

    return mutate


def _set(*path: Any, value: Any) -> Callable[[Data], None]:
    def mutate(d: Data) -> None:
        node = d
        for seg in path[:-1]:
            node = node[seg]
        node[path[-1]] = value

    return mutate


CASES = [
    # (id, mutation, key path, fragment of the message)
    ("unknown key", _set("general", "debug_mod", value=True), "general.debug_mod",
     "did you mean 'debug_mode'"),
    ("unknown section", _set("riskk", value={}), "riskk", "unknown key"),
    ("wrong type", _set("sub_bots", 1, "dynamic_sizing", "atr_period", value="fourteen"),
     "sub_bots[1].dynamic_sizing.atr_period", "valid integer"),
    ("bool is not a number", _set("risk", "crash_window_minutes", value=True),
     "risk.crash_window_minutes", "not true/false"),
    ("literal", _set("general", "environment", value="live"), "general.environment",
     "'paper', 'testnet', 'demo' or 'production'"),
    ("allocation names a missing bot",
     _set("master_bot", "allocations", "ranging", value={"SubBot-A": 0.5, "SubBot-X": 0.5}),
     "master_bot.allocations.ranging.SubBot-X", "no sub-bot named 'SubBot-X'"),
    ("allocation does not sum to 1",
     _set("master_bot", "allocations", "weak_bull", "SubBot-A", value=0.31),
     "master_bot.allocations.weak_bull", "add up to 1.01"),
    ("share above 1", _set("master_bot", "allocations", "strong_bull", "SubBot-A", value=1.2),
     "master_bot.allocations.strong_bull.SubBot-A", "less than or equal to 1"),
    ("ema thresholds unordered",
     _set("master_bot", "market_phase", "thresholds", "weak_pct", value=0.03),
     "master_bot.market_phase.thresholds.strong_pct", "greater than weak_pct"),
    ("adx thresholds unordered",
     _set("master_bot", "market_phase", "thresholds", "adx_strong", value=15),
     "master_bot.market_phase.thresholds.adx_strong", "greater than adx_trend"),
    ("volatility thresholds unordered",
     _set("sub_bots", 0, "dynamic_sizing", "volatility_thresholds", "low", value=0.05),
     "sub_bots[0].dynamic_sizing.volatility_thresholds.medium", "greater than low"),
    ("phase periods unordered", _set("master_bot", "market_phase", "short_period", value=60),
     "master_bot.market_phase.long_period", "greater than short_period"),
    ("ema periods unordered", _set("sub_bots", 1, "strategy_params", "fast_period", value=30),
     "sub_bots[1].strategy_params.slow_period", "greater than fast_period"),
    ("rsi bounds unordered", _set("sub_bots", 2, "strategy_params", "rsi_lower", value=80),
     "sub_bots[2].strategy_params.rsi_upper", "greater than rsi_lower"),
    ("range names a missing bot", _range("SubBot-X.strategy_params.sl_ratio"),
     'optimizer.param_ranges."SubBot-X.strategy_params.sl_ratio"', "no sub-bot named"),
    ("range names a non-numeric field", _range("SubBot-A.strategy_params.rule"),
     'optimizer.param_ranges."SubBot-A.strategy_params.rule"', "not a numeric parameter"),
    ("range names a bool field", _range("SubBot-A.dynamic_sizing.enabled"),
     'optimizer.param_ranges."SubBot-A.dynamic_sizing.enabled"', "not a numeric parameter"),
    ("range names no field", _range("SubBot-A.strategy_params.sl_ratoi"),
     'optimizer.param_ranges."SubBot-A.strategy_params.sl_ratoi"', "no parameter"),
    ("range is not dotted", _range("sl_ratio"), "optimizer.param_ranges.sl_ratio",
     "BOTNAME.section.key"),
    ("range start >= end", _range("SubBot-B.strategy_params.tp_ratio", start=2, end=2),
     'optimizer.param_ranges."SubBot-B.strategy_params.tp_ratio".end', "greater than start"),
    ("range step 0", _range("SubBot-B.strategy_params.tp_ratio", step=0),
     'optimizer.param_ranges."SubBot-B.strategy_params.tp_ratio".step', "greater than 0"),
    ("range step negative", _range("SubBot-B.strategy_params.tp_ratio", step=-0.5),
     'optimizer.param_ranges."SubBot-B.strategy_params.tp_ratio".step', "greater than 0"),
    ("int range with fractions", _range("SubBot-B.dynamic_sizing.atr_period", start=10.5, end=20),
     'optimizer.param_ranges."SubBot-B.dynamic_sizing.atr_period".start', "whole number"),
    ("range outside the field's limits", _range("SubBot-B.dynamic_sizing.atr_period", start=1),
     'optimizer.param_ranges."SubBot-B.dynamic_sizing.atr_period".start',
     "greater than or equal to 2"),
    ("bad cron hour", _set("optimizer", "schedule", value="0 25 * * *"), "optimizer.schedule",
     "hour: 25 is outside 0-23"),
    ("bad cron field count", _set("optimizer", "schedule", value="0 1 1 *"), "optimizer.schedule",
     "expected 5 fields"),
    ("cron that never fires", _set("optimizer", "schedule", value="0 0 30 2 *"),
     "optimizer.schedule", "never fires"),
    ("rate above 1", _set("master_bot", "profit_save_rate", value=1.5),
     "master_bot.profit_save_rate", "less than or equal to 1"),
    ("rate below 0", _set("risk", "max_drawdown_pct", value=-0.1), "risk.max_drawdown_pct",
     "greater than or equal to 0"),
    ("min_confidence above 1", _set("sub_bots", 0, "strategy_params", "min_confidence", value=2),
     "sub_bots[0].strategy_params.min_confidence", "less than or equal to 1"),
    ("spot cannot short", _set("sub_bots", 0, "allow_short", value=True),
     "sub_bots[0].allow_short", "must be false for spot"),
    ("duplicate bot name", _set("sub_bots", 1, "name", value="subbot_a"), "sub_bots[1].name",
     "clashes with 'SubBot-A'"),
    ("bad bot name", _set("sub_bots", 1, "name", value="Sub Bot.B"), "sub_bots[1].name",
     "only letters, digits"),
    ("unknown balance bot", _set("paper", "starting_balances", "SubBot-Z", value=10),
     "paper.starting_balances.SubBot-Z", "no sub-bot named"),
    ("bad timeframe", _set("sub_bots", 0, "timeframe", value="7"), "sub_bots[0].timeframe",
     "Bybit interval"),
    ("bad symbol", _set("master_bot", "index_symbol", value="BTC-USDT"), "master_bot.index_symbol",
     "BTCUSDT or BTC/USDT"),
    ("bad weekday", _set("master_bot", "profit_save_day", value="funday"),
     "master_bot.profit_save_day", "'sunday'"),
    ("bad hour", _set("master_bot", "profit_save_hour", value=24), "master_bot.profit_save_hour",
     "less than or equal to 23"),
    ("unknown time zone", _set("general", "timezone", value="Mars/Olympus"), "general.timezone",
     "unknown time zone"),
    ("db type disagrees with URL",
     _set("database", "db_url", value="postgresql://u@localhost/j"), "database.db_url",
     "db_type is 'sqlite'"),
    ("postgres needs a URL", _set("database", "db_type", value="postgresql"), "database.db_url",
     "needs db_url or db_url_env"),
    ("bad allowed ip", _set("dashboard", "allowed_ips", value=["127.0.0.1", "10.0.0.300"]),
     "dashboard.allowed_ips[1]", "not an IP address"),
    ("split entry never finishes", _set("sub_bots", 1, "split_entry", "timeout_seconds", value=60),
     "sub_bots[1].split_entry.timeout_seconds", "(count - 1) * interval_seconds = 120"),
    ("bad dask address", _set("optimizer", "scheduler", value="10.0.0.5:8786"),
     "optimizer.scheduler", "tcp://host:8786"),
    ("table expected", _set("risk", value=5), "risk", "must be a table"),
    ("no bots", _set("sub_bots", value=[]), "sub_bots", "at least 1 item"),
]  # fmt: skip


@pytest.mark.parametrize(("mutate", "key", "fragment"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_invalid_value_is_reported_at_its_key_path(
    write_config: WriteConfig, mutate: Callable[[Data], None], key: str, fragment: str
) -> None:
    exc = _error(write_config, mutate)
    assert any(fragment in msg for msg in messages(exc, key)), exc.problems
    assert all("pydantic" not in msg and "https://errors" not in msg for _, msg in exc.problems)


def test_pasted_secret_in_env_key_is_rejected_without_echoing_it(
    write_config: WriteConfig,
) -> None:
    pasted = "aB3xY9kL2mN8pQ4rZ7"

    def mutate(d: Data) -> None:
        d["api_keys"]["bybit_master_key_env"] = pasted
        d["sub_bots"][2]["api_secret_env"] = pasted

    exc = _error(write_config, mutate)
    for key in ("api_keys.bybit_master_key_env", "sub_bots[2].api_secret_env"):
        assert "NAME of an environment variable" in messages(exc, key)[0]
    assert pasted not in str(exc)


def test_override_style_names_cannot_be_secret_names(write_config: WriteConfig) -> None:
    exc = _error(write_config, _set("api_keys", "gemini_keys_env", value="JIRITSU_GEMINI__KEYS"))
    assert "configuration overrides" in messages(exc, "api_keys.gemini_keys_env")[0]


def test_db_password_never_appears_in_errors(write_config: WriteConfig) -> None:
    def mutate(d: Data) -> None:
        d["database"]["db_url"] = "postgresql://jiritsu:hunter2-secret@db.example/jiritsu"

    exc = _error(write_config, mutate)  # db_type is still sqlite
    assert "hunter2-secret" not in str(exc)


def test_several_errors_are_reported_at_once(write_config: WriteConfig) -> None:
    def mutate(d: Data) -> None:
        d["general"]["environment"] = "live"
        d["risk"]["daily_loss_pct"] = 2
        d["sub_bots"][1]["dynamic_sizing"]["atr_period"] = 1
        d["master_bot"]["allocations"]["ranging"] = {"SubBot-A": 0.5, "Ghost": 0.5}
        d["optimizer"]["schedule"] = "every day"
        d["optimizer"]["param_ranges"]["Ghost.strategy_params.sl_ratio"] = {
            "start": 1, "end": 2, "step": 0.5,
        }  # fmt: skip

    exc = _error(write_config, mutate)
    keys = {k for k, _ in exc.problems}
    assert {
        "general.environment",
        "risk.daily_loss_pct",
        "sub_bots[1].dynamic_sizing.atr_period",
        "master_bot.allocations.ranging.Ghost",
        "optimizer.schedule",
        'optimizer.param_ranges."Ghost.strategy_params.sl_ratio"',
    } <= keys


@pytest.mark.parametrize(
    ("environment", "url", "ok"),
    [
        ("paper", "http://example.com", True),
        ("production", "http://example.com", False),
        ("testnet", "http://example.com", False),
        ("production", "https://example.com", True),
        ("production", "http://127.0.0.1:8080", True),
        ("production", "http://localhost:8080", True),
        ("production", "http://[::1]:8080", True),
        ("paper", "ftp://example.com", False),
    ],
)
def test_external_urls_need_https_outside_paper_mode(
    write_config: WriteConfig, environment: str, url: str, ok: bool
) -> None:
    def mutate(d: Data) -> None:
        d["general"]["environment"] = environment
        d["exchange"]["base_url"] = url
        d["gemini"]["base_url"] = url
        d["news_sentiment"]["sources"] = ["feeds/local.xml", url]

    path = write_config(mutate)
    if ok:
        s = load_config(path).settings
        assert s.exchange.base_url == url
        assert s.news_sentiment.sources[0] == str(path.parent / "feeds" / "local.xml")
        return
    with pytest.raises(ConfigError) as info:
        load_config(path)
    keys = {k for k, _ in info.value.problems}
    assert keys == {"exchange.base_url", "gemini.base_url", "news_sentiment.sources[1]"}


def test_symbols_and_names_are_normalised(write_config: WriteConfig) -> None:
    def mutate(d: Data) -> None:
        d["sub_bots"][0]["symbol"] = "btc/usdt"
        d["sub_bots"][0]["timeframe"] = 60
        d["general"]["log_level"] = "debug"
        d["master_bot"]["market_phase"]["indicator"] = "adx"
        d["master_bot"]["profit_save_day"] = "Friday"

    s = load_config(write_config(mutate)).settings
    assert s.sub_bots[0].symbol == "BTCUSDT"
    assert s.sub_bots[0].timeframe == "60"
    assert s.general.log_level == "DEBUG"
    assert s.master_bot.market_phase.indicator == "ADX"
    assert s.master_bot.profit_save_weekday == 4


def test_key_names_default_from_the_bot_name(write_config: WriteConfig) -> None:
    def mutate(d: Data) -> None:
        del d["sub_bots"][2]["api_key_env"], d["sub_bots"][2]["api_secret_env"]

    loaded = load_config(write_config(mutate))
    assert loaded.settings.sub_bots[2].api_key_env == "BYBIT_SUBBOT_C_API_KEY"
    assert loaded.origins["sub_bots[2].api_key_env"] == "default"


def test_allocation_references_are_checked_even_when_a_bot_is_invalid(
    write_config: WriteConfig,
) -> None:
    def mutate(d: Data) -> None:
        d["sub_bots"][0]["base_lot"] = -1
        d["master_bot"]["allocations"]["ranging"] = {"SubBot-A": 0.5, "Ghost": 0.5}

    exc = _error(write_config, mutate)
    messages(exc, "sub_bots[0].base_lot")
    messages(exc, "master_bot.allocations.ranging.Ghost")


def test_toml_syntax_error_names_file_line_and_column(write_config: WriteConfig) -> None:
    path = write_config(text='[general]\nenvironment = "paper"\ndebug_mode = maybe\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    ((key, msg),) = info.value.problems
    assert key == "config.toml"
    assert "line 3" in msg
    assert "column" in msg


def test_missing_config_file_is_a_config_error(tmp_path: Any) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml")
    assert "not found" in messages(info.value, "config")[0]
    assert info.value.exit_code == 2


def test_minimal_file_gets_every_default(write_config: WriteConfig) -> None:
    loaded = load_config(write_config(text='[general]\nenvironment = "paper"\n'))
    assert loaded.settings.bot_names == ["SubBot-A", "SubBot-B", "SubBot-C"]
    assert loaded.origins["general.environment"] == "file"
    assert loaded.origins["sub_bots[1].strategy_params.sl_ratio"] == "default"


def test_default_tables_naming_bots_are_checked_against_custom_bots(
    write_config: WriteConfig,
) -> None:
    text = '[[sub_bots]]\nname = "Solo"\n[master_bot.allocations]\nranging = { "Solo" = 1 }\n'
    with pytest.raises(ConfigError) as info:
        load_config(write_config(text=text))
    (msg,) = messages(info.value, "master_bot.allocations.weak_bull.SubBot-A")
    assert "built-in default" in msg
    messages(info.value, "paper.starting_balances.SubBot-C")
    messages(info.value, 'optimizer.param_ranges."SubBot-B.strategy_params.sl_ratio"')
    assert not [k for k, _ in info.value.problems if k.startswith("master_bot.allocations.ranging")]


def test_custom_bots_with_their_own_tables_load(write_config: WriteConfig) -> None:
    phases = "\n".join(
        f'{p} = {{ "Solo" = 1 }}'
        for p in ("strong_bull", "weak_bull", "ranging", "weak_bear", "strong_bear")
    )
    text = (
        '[[sub_bots]]\nname = "Solo"\ncategory = "spot"\n'
        f"[master_bot.allocations]\n{phases}\n"
        '[paper]\nstarting_balances = { "Solo" = 1000 }\n'
        "[optimizer.param_ranges]\n"
    )
    s = load_config(write_config(text=text)).settings
    assert s.bot_names == ["Solo"]
    assert s.bot("Solo").api_key_env == "BYBIT_SOLO_API_KEY"
    assert s.param_grid() == {}
