"""The backtest driver passes over quiet stretches (nothing out, nothing watched) in one go: the
outcome must be the one of stepping every minute, to the bit, gaps and loss-streak pauses
included."""

from __future__ import annotations

import numpy as np
import pytest

from jiritsu.strategy import driver
from jiritsu.strategy import kernel as K
from jiritsu.strategy import params as P

MIN = 60_000
T0 = 1_704_067_200_000


def market(n: int, seed: int) -> tuple[np.ndarray, ...]:
    """``n`` minutes of a random walk with about 2 % of the minutes missing (some in runs)."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    spread = np.abs(rng.normal(0, 0.001, n)) * close
    keep = rng.random(n) > 0.01
    keep[n // 3 : n // 3 + 40] = False  # a 40-minute hole
    ts = (T0 + np.arange(n) * MIN).astype(np.float64)[keep]
    c = close[keep]
    o = np.concatenate(([c[0]], c[:-1]))
    return ts, o, np.maximum(o, c) + spread[keep], np.minimum(o, c) - spread[keep], c


def timeframe(ts: np.ndarray, c: np.ndarray, tf_min: int, seed: int) -> tuple[np.ndarray, ...]:
    """Bars of ``tf_min`` minutes that have at least one minute, with random BUY/SELL."""
    opens = np.unique((ts - T0) // (tf_min * MIN)) * tf_min * MIN + T0
    idx = np.searchsorted(ts, opens + tf_min * MIN) - 1
    rng = np.random.default_rng(seed)
    sig = rng.choice([-1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0], opens.shape[0])
    conf = rng.random(opens.shape[0])
    atr = np.full(opens.shape[0], 0.5)
    return opens + tf_min * MIN, c[idx], atr, sig, conf


def run(params: np.ndarray, tf_min: int, seed: int) -> list[np.ndarray]:
    ts, o, h, low, c = market(3000, seed)
    tf_close_ms, tf_close, atr, sig, conf = timeframe(ts, c, tf_min, seed)
    params[P.P_TF_MS] = tf_min * MIN
    acts = np.zeros((4000, K.NACT))
    fills = np.zeros((4000, K.NFILL))
    equity = np.zeros(ts.shape[0])
    na, nf, state, acct = K.simulate(
        ts, o, h, low, c, np.zeros(ts.shape[0]), tf_close_ms, tf_close, atr, sig, conf, params,
        1000.0, ts[0] + 7 * MIN, ts[-1] - 11 * MIN, acts, fills, equity, K.no_halts(),
    )  # fmt: skip
    return [acts[:na], fills[:nf], equity, state, acct]


def variants(params_a: np.ndarray, params_b: np.ndarray) -> list[np.ndarray]:
    plain = params_b.copy()  # linear, no TP/SL, no split, no maximum holding time
    for key, value in ((P.P_TPSL, 0.0), (P.P_SPLIT, 0.0), (P.P_MAX_HOLD_MS, 0.0),
                       (P.P_MIN_CONF, 0.0), (P.P_ALLOW_SHORT, 1.0)):  # fmt: skip
        plain[key] = value
    streak = plain.copy()  # paused after two losses in a row, for two hours
    streak[P.P_MAX_LOSSES] = 2.0
    streak[P.P_COOLDOWN_MS] = 120.0 * MIN
    spot = params_a.copy()
    spot[P.P_TPSL] = 0.0
    spot[P.P_MAX_HOLD_MS] = 0.0
    return [plain, streak, spot, params_b.copy()]


@pytest.mark.parametrize("tf_min", [1, 5])
def test_skipping_quiet_steps_changes_nothing(
    params_a: np.ndarray, params_b: np.ndarray, monkeypatch: pytest.MonkeyPatch, tf_min: int
) -> None:
    for seed, params in enumerate(variants(params_a, params_b)):
        skipped = run(params.copy(), tf_min, seed)
        with monkeypatch.context() as m:
            m.setattr(driver, "quiet", lambda state, acct, params: False)  # step every minute
            stepped = run(params.copy(), tf_min, seed)
        assert skipped[1].shape[0] > 4, "the case must trade"
        for got, want in zip(skipped, stepped, strict=True):
            assert np.array_equal(got, want), (seed, tf_min)


def test_a_tripped_loss_streak_is_never_skipped(params_b: np.ndarray) -> None:
    """The pause is taken at the first decision step after the losing trade, a HOLD included."""
    streak = variants(params_b, params_b)[1]
    acts, fills, *_ = run(streak, 5, 1)
    ts, *_, c = market(3000, 1)
    tf_close_ms = timeframe(ts, c, 5, 1)[0]
    paused = acts[acts[:, 1] == K.ACT_PAUSE]
    assert paused.shape[0] > 1
    closes = fills[fills[:, 7] != 0.0]
    for t in paused[:, 0]:
        last = closes[closes[:, 0] < t][-1]  # a fill comes after the step of its minute
        assert last[7] < 0.0
        assert t == tf_close_ms[tf_close_ms > last[0]][0]
