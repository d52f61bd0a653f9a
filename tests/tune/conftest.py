"""Stored synthetic candles and small settings for the tuner's tests."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from jiritsu.config.settings import Settings


def make_settings(data_dir: Path, **optimizer: Any) -> Settings:
    base = Settings()
    data = base.model_dump(mode="python")
    data["general"]["data_dir"] = data_dir
    data["optimizer"].update(
        {
            "backtest_period_months": 1,
            "walk_forward_folds": 2,
            "min_trades": 0,
            "workers": 1,
            "param_ranges": {
                "SubBot-C.strategy_params.sl_ratio": {
                    "start": Decimal("1.0"), "end": Decimal("2.0"), "step": Decimal("0.5"),
                },
                "SubBot-C.dynamic_sizing.atr_period": {
                    "start": Decimal("10"), "end": Decimal("14"), "step": Decimal("4"),
                },
            },
        }
    )  # fmt: skip
    data["optimizer"].update(optimizer)
    return Settings.model_validate(data, context={"config_dir": data_dir})


@pytest.fixture
def stored(engine: Any, isolated_env: Path) -> Any:
    """24 days of synthetic 1-minute BTCUSDT candles in the store."""
    from jiritsu.market.store import CandleStore, cache_root
    from jiritsu.market.synth import synth_candles

    CandleStore(engine, cache_root(isolated_env)).write(
        "BTCUSDT", "1", synth_candles(days=24, seed=11)
    )
    return engine
