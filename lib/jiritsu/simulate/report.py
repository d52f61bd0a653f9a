"""``simulate --report DIR``: PNG charts and a self-contained report.html (images inlined, no
network). matplotlib is imported here only."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jiritsu.clock import from_ms

if TYPE_CHECKING:
    from jiritsu.simulate import SimRun
    from jiritsu.simulate.summary import Curves

PHASE_COLOURS = {
    "strong_bull": "#b7e4c7",
    "weak_bull": "#e3f5e9",
    "ranging": "#f1f1f1",
    "weak_bear": "#fbe3e3",
    "strong_bear": "#f4b6b6",
}


def _phases(engine: Any) -> list[tuple[int, str]]:
    """(time ms, phase) of every recorded reading, oldest first."""
    import sqlalchemy as sa

    from jiritsu.clock import to_ms
    from jiritsu.db.models import MarketPhase

    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(MarketPhase.ts, MarketPhase.phase).order_by(MarketPhase.ts)
        ).all()
    return [(to_ms(t), p) for t, p in rows]


def _index_closes(engine: Any, settings: Any, ts: list[int]) -> list[float]:
    """The index symbol's last close at or before each time in ``ts``."""
    import numpy as np

    from jiritsu.market.store import CandleStore, cache_root

    store = CandleStore(engine, cache_root(settings.general.data_dir))
    frame = store.load(settings.master_bot.index_symbol, "1", ts[0] - 86_400_000, ts[-1] + 1)
    bars = frame["ts"].to_numpy()
    closes = frame["close"].to_numpy()
    idx = np.searchsorted(bars, np.asarray(ts) - 60_000, side="right") - 1
    return [float(closes[max(i, 0)]) for i in idx]


def _marks(ax: Any, doc: dict[str, Any]) -> None:
    """Tunings (blue dashed) and breaker trips (red dotted) as vertical lines."""
    from datetime import datetime

    for t in doc["tunings"]:
        if t["applied"]:
            ax.axvline(datetime.fromisoformat(t["time"]), color="tab:blue", ls="--", lw=0.8)
    for trip in doc["breaker_trips"]:
        colour = "tab:red" if trip["scope"] == "global" else "salmon"
        ax.axvline(datetime.fromisoformat(trip["time"]), color=colour, ls=":", lw=0.8)


def charts(run: SimRun, doc: dict[str, Any], c: Curves, engine: Any, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    import numpy as np

    settings = run.loaded.settings
    when = np.array(c.ts, dtype="datetime64[ms]")  # bar times (UTC) on a date axis
    files: list[Path] = []

    def save(fig: Any, name: str, title: str) -> None:
        fig.suptitle(title)
        fig.autofmt_xdate()
        fig.tight_layout()
        path = out / name
        fig.savefig(path, dpi=90)
        plt.close(fig)
        files.append(path)

    fig, ax = plt.subplots(figsize=(10, 4))
    ax.plot(when, c.equity, label="portfolio (bots + savings)")
    closes = _index_closes(engine, settings, c.ts)
    start = doc["start_equity"]
    ax.plot(when, [start * x / closes[0] for x in closes], label="buy and hold", alpha=0.7)
    _marks(ax, doc)
    ax.set_ylabel(settings.paper.quote_coin)
    ax.legend(loc="best")
    save(fig, "equity.png", "Equity vs buy-and-hold (blue: tuning applied, red: breaker)")

    fig, ax = plt.subplots(figsize=(10, 4))
    for name, series in c.bots.items():
        ax.plot(when, series, label=name)
    _marks(ax, doc)
    ax.legend(loc="best")
    save(fig, "bots.png", "Equity per bot")

    fig, ax = plt.subplots(figsize=(10, 4))
    phases = _phases(engine)
    for (t0, phase), (t1, _) in zip(phases, [*phases[1:], (c.ts[-1], "")], strict=True):
        ax.axvspan(
            mdates.date2num(from_ms(t0)),
            mdates.date2num(from_ms(t1)),
            color=PHASE_COLOURS.get(phase, "white"),
            lw=0,
        )
    totals = [sum(v) for v in zip(*c.bots.values(), strict=True)]
    shares = [[v / tot if tot else 0.0 for v, tot in zip(s, totals, strict=True)]
              for s in c.bots.values()]  # fmt: skip
    ax.stackplot(when, *shares, labels=list(c.bots), alpha=0.6)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left")
    save(fig, "allocation.png", "Allocation (share of the bots' equity), market phase behind")

    fig, ax = plt.subplots(figsize=(10, 3))
    main0 = float(settings.paper.main_balance)
    ax.plot(when, [s - main0 for s in c.savings], color="tab:green")
    ax.set_ylabel(settings.paper.quote_coin)
    save(fig, "saved.png", "Cumulative profit saved")
    return files


def write_report(run: SimRun, doc: dict[str, Any], out: Path) -> Path:
    """Write the PNGs and report.html into ``out``; returns the HTML's path."""
    from jiritsu.db.migrate import open_database
    from jiritsu.simulate.summary import curves

    out.mkdir(parents=True, exist_ok=True)
    with open_database(run.loaded) as engine:
        c = curves(engine)
        files = charts(run, doc, c, engine, out) if len(c.ts) >= 2 else []
    esc = html.escape
    rows = "".join(
        f"<tr><th>{esc(k)}</th><td>{esc(_fmt(v))}</td></tr>"
        for k, v in doc.items()
        if not isinstance(v, (list, dict))
    )
    bots = "".join(
        f"<tr><th>{esc(n)}</th><td>{b['trades']}</td><td>{b['pnl']:+.2f}</td>"
        f"<td>{b['fees']:.2f}</td><td>{esc(_fmt(b['end_equity']))}</td></tr>"
        for n, b in doc["bots"].items()
    )
    tunings = "".join(
        f"<li>{esc(t['time'][:16])} {esc(t['bot'])}: {'applied' if t['applied'] else 'kept'} "
        f"{esc(', '.join(f'{k} {a} -> {b}' for k, (a, b) in t['changes'].items()))} "
        f"<small>{esc(t['reason'])}</small></li>"
        for t in doc["tunings"]
    )
    trips = "".join(
        f"<li>{esc(t['time'][:16])} {esc(t['scope'])}: {esc(t['message'] or '')}</li>"
        for t in doc["breaker_trips"]
    )
    notes = "".join(f"<li>{esc(b)}: {esc(n)}</li>" for b, n in doc["advisors"].items())
    images = "".join(
        f'<p><img alt="{esc(p.stem)}" src="data:image/png;base64,'
        f'{base64.b64encode(p.read_bytes()).decode()}"></p>'
        for p in files
    )
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>Jiritsu simulation {esc(doc['from'][:10])} .. {esc(doc['to'][:10])}</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:auto}}
table{{border-collapse:collapse}}th,td{{padding:2px 10px;text-align:right}}th{{text-align:left}}
img{{max-width:100%}}</style></head><body>
<h1>Simulation {esc(doc['from'][:10])} .. {esc(doc['to'][:10])}</h1>
<table>{rows}</table>
<h2>Bots</h2><table><tr><th>bot</th><th>trades</th><th>pnl</th><th>fees</th>
<th>end equity</th></tr>{bots}</table>
{images}
<h2>Tunings</h2><ul>{tunings or '<li>none</li>'}</ul>
<h2>Circuit breakers</h2><ul>{trips or '<li>none</li>'}</ul>
<h2>Advisors</h2><ul>{notes or '<li>every bot runs its rule</li>'}</ul>
</body></html>
"""
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    return "-" if v is None else str(v)
