"""The rebalance plan, worked by hand: targets per phase, the tolerance band, the minimum
transfer, available balance only, rounding down to cents, bots that do not take part.

Defaults: tolerance 5 % of the total, minimum transfer 10 USDT; allocations (A/B/C)
strong_bull .2/.3/.5, weak_bull .3/.4/.3, ranging .4/.4/.2, weak_bear .5/.3/.2,
strong_bear .6/.2/.2.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from jiritsu.exchange.types import Balance
from jiritsu.master.rebalance import plan_rebalance
from tests.master import A, B, C, D, settings


def bal(bot: str, equity: str, available: str | None = None) -> Balance:
    return Balance(bot, "USDT", D(equity), D(equity), D(available or equity))


def balances(a: str, b: str, c: str) -> dict[str, Balance]:
    return {A: bal(A, a), B: bal(B, b), C: bal(C, c)}


MB = settings(Path("var")).master_bot


def moves(plan) -> list[tuple[str, str, str]]:
    return [(t.from_bot, t.to_bot, f"{t.amount:.2f}") for t in plan.transfers]


@pytest.mark.parametrize(
    ("phase", "targets", "expected"),
    [
        # total 10000, band 500. Deviations: A +1000, B +1000, C -2000 (tie broken by name)
        ("strong_bull", ("2000", "3000", "5000"), [(A, C, "1000.00"), (B, C, "1000.00")]),
        # the starting balances are the weak_bull allocation already
        ("weak_bull", ("3000", "4000", "3000"), []),
        # A -1000, B 0, C +1000
        ("ranging", ("4000", "4000", "2000"), [(C, A, "1000.00")]),
        # A -2000, B +1000, C +1000
        ("weak_bear", ("5000", "3000", "2000"), [(B, A, "1000.00"), (C, A, "1000.00")]),
        # A -3000, B +2000, C +1000 (largest donor first)
        ("strong_bear", ("6000", "2000", "2000"), [(B, A, "2000.00"), (C, A, "1000.00")]),
    ],
)
def test_each_phase_picks_its_allocation(phase: str, targets: tuple, expected: list) -> None:
    plan = plan_rebalance(phase, balances("3000", "4000", "3000"), MB)
    assert plan.phase == phase
    assert (plan.total, plan.band) == (D(10000), D(500))
    assert plan.targets == {A: D(targets[0]), B: D(targets[1]), C: D(targets[2])}
    assert moves(plan) == expected
    assert all(t.reason.startswith(f"{phase}: ") for t in plan.transfers)


def test_drift_within_the_tolerance_band_moves_nothing() -> None:
    # weak_bull targets 3000/4000/3000; deviations +500 (exactly the band), -300, -200
    plan = plan_rebalance("weak_bull", balances("3500", "3700", "2800"), MB)
    assert plan.transfers == ()
    assert plan.skipped == ("every bot is within the tolerance band (±500.00 = 5.0 % of 10000.00)",)


def test_one_bot_outside_the_band_is_brought_back_by_bots_inside_it() -> None:
    # deviations A +501 (outside), B -250 and C -251 (inside): A gives to both, C first
    plan = plan_rebalance("weak_bull", balances("3501", "3750", "2749"), MB)
    assert [b.out_of_band for b in plan.bots] == [True, False, False]
    assert moves(plan) == [(A, C, "251.00"), (A, B, "250.00")]


def test_a_leg_below_the_minimum_transfer_is_skipped() -> None:
    # ranging targets 4000/4000/2000: A -600 and C +592 are outside the band, B +8 inside.
    # C covers 592 of A's 600; the remaining 8 could only come from B: below 10, skipped.
    plan = plan_rebalance("ranging", balances("3400", "4008", "2592"), MB)
    assert moves(plan) == [(C, A, "592.00")]
    assert plan.skipped == ("SubBot-B -> SubBot-A: 8.00 is below min_transfer_usdt (10)",)


def test_only_available_balance_moves_never_margin() -> None:
    # strong_bull: A +1000 but only 600 available (the rest backs a position), B +1000,
    # C needs 2000: B gives 1000, A its 600; C stays 400 short rather than touching margin.
    equities = {A: bal(A, "3000", "600"), B: bal(B, "4000"), C: bal(C, "3000")}
    plan = plan_rebalance("strong_bull", equities, MB)
    assert moves(plan) == [(B, C, "1000.00"), (A, C, "600.00")]
    assert plan.skipped == (
        "SubBot-A is 1000.00 above target but only 600.00 is available (the rest backs open "
        "positions or orders)",
    )


def test_amounts_are_rounded_down_to_cents() -> None:
    # total 3000.01: targets 600.002 -> 600.00, 900.003 -> 900.00, 1500.005 -> 1500.00 (half
    # even); band 150.00. A +400.007 and C -500 are outside; B +100.003 is inside.
    plan = plan_rebalance("strong_bull", balances("1000.007", "1000.003", "1000"), MB)
    assert plan.targets == {A: D("600.00"), B: D("900.00"), C: D("1500.00")}
    # A gives 400.007 -> 400.00; C still needs 99.993, which B covers -> 99.99
    assert moves(plan) == [(A, C, "400.00"), (B, C, "99.99")]


def test_shares_of_bots_not_taking_part_are_spread_pro_rata() -> None:
    # B is halted or disabled: strong_bull's A .2 and C .5 become 2/7 and 5/7 of 6000.
    plan = plan_rebalance("strong_bull", {A: bal(A, "3000"), C: bal(C, "3000")}, MB)
    assert plan.targets == {A: D("1714.29"), C: D("4285.71")}
    assert moves(plan) == [(A, C, "1285.71")]
    assert plan.skipped[0] == (
        "SubBot-B not taking part (disabled or halted): their shares are spread pro rata over "
        "the others"
    )


def test_a_bot_left_out_of_the_phase_gives_everything_it_can() -> None:
    tables = {
        "strong_bull": {A: 0.5, C: 0.5},
        "weak_bull": {A: 0.3, B: 0.4, C: 0.3},
        "ranging": {A: 0.4, B: 0.4, C: 0.2},
        "weak_bear": {A: 0.5, B: 0.3, C: 0.2},
        "strong_bear": {A: 0.6, B: 0.2, C: 0.2},
    }
    mb = settings(Path("var"), master_bot={"allocations": tables}).master_bot
    # total 3000, band 150: targets 1500 / 0 / 1500; B gives its 1000 to A and C
    plan = plan_rebalance("strong_bull", balances("1000", "1000", "1000"), mb)
    assert plan.targets == {A: D(1500), B: D(0), C: D(1500)}
    assert moves(plan) == [(B, A, "500.00"), (B, C, "500.00")]


def test_nothing_to_plan_without_capital_or_bots() -> None:
    assert plan_rebalance("ranging", {}, MB).skipped == ("no bot takes part",)
    empty = plan_rebalance("ranging", balances("0", "0", "0"), MB)
    assert (empty.transfers, empty.skipped) == ((), ("the bots hold no capital",))
