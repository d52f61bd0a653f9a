"""The package stays cheap to import and exports what it documents."""

from __future__ import annotations

import subprocess
import sys

import jiritsu.market as market


def test_importing_the_package_does_not_load_polars() -> None:
    # timers start the CLI every minute: naming jiritsu.market must not cost a polars import
    code = (
        "import sys, jiritsu.market as m\n"
        "assert 'polars' not in sys.modules\n"
        "assert m.normalize_symbol('btc/usdt') == 'BTCUSDT'\n"
        "assert 'polars' not in sys.modules\n"
        "m.CandleCache\n"
        "assert 'polars' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_exported_name_resolves() -> None:
    for name in market.__all__:
        assert getattr(market, name) is not None
    assert "read_candle_file" in dir(market)
