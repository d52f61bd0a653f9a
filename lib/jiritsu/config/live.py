"""What an environment that talks to Bybit needs beyond a valid file: the keys and the UIDs.

Paper trading needs none of it, so loading a configuration does not insist on it (``status``,
``health`` and ``doctor`` must still run to say what is missing). ``jiritsu config check`` and
``jiritsu doctor`` call :func:`live_problems` and report each missing item by the environment
variable or the key that supplies it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jiritsu.config.loader import LoadedConfig
    from jiritsu.config.settings import Settings

__all__ = ["live_problems", "transfers_on"]

UID_HINT = "`jiritsu doctor` lists the sub-accounts and their UIDs"


def transfers_on(settings: Settings) -> bool:
    """Whether money moves between accounts: profit saving (a positive ``profit_save_rate``)
    or rebalancing (two or more enabled bots). Both need every account's UID."""
    return settings.master_bot.profit_save_rate > 0 or len(settings.enabled_bots) >= 2


def live_problems(loaded: LoadedConfig) -> list[tuple[str, str]]:
    """(dotted key, message) for every key or UID the configured environment lacks.

    Empty in paper mode. Outside it: the master account's key and secret, each enabled bot's
    key and secret, and, when transfers are on, each enabled bot's ``member_id`` (and the
    master's ``main_member_id`` when profit is saved).
    """
    settings = loaded.settings
    environment = settings.general.environment
    if settings.is_paper:
        return []
    secrets = loaded.secrets
    api = settings.api_keys
    problems: list[tuple[str, str]] = []

    def need(key: str, names: tuple[str, str], what: str) -> None:
        unset = [name for name in names if not secrets.is_set(name)]
        if unset:
            verb = "is" if len(unset) == 1 else "are"
            problems.append((key, f"{' and '.join(unset)} {verb} not set ({what}, {environment})"))

    need(
        "api_keys.bybit_master_key_env",
        (api.bybit_master_key_env, api.bybit_master_secret_env),
        "the master account's key: transfers, sub-account queries",
    )
    for i, bot in enumerate(settings.sub_bots):
        if bot.enabled:
            need(
                f"sub_bots[{i}].api_key_env",
                (bot.api_key_env, bot.api_secret_env),
                f"{bot.name}'s trading key",
            )
    if not transfers_on(settings):
        return problems
    for i, bot in enumerate(settings.sub_bots):
        if bot.enabled and bot.member_id is None:
            problems.append(
                (
                    f"sub_bots[{i}].member_id",
                    f"missing: transfers to and from {bot.name} need its sub-account UID "
                    f"({UID_HINT})",
                )
            )
    if settings.master_bot.profit_save_rate > 0 and settings.master_bot.main_member_id is None:
        problems.append(
            (
                "master_bot.main_member_id",
                f"missing: profit saving sends to the master account's UID ({UID_HINT})",
            )
        )
    return problems
