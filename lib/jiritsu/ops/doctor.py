"""``jiritsu doctor``: is everything the configured environment needs in place, and if not, what
exactly to fix (one line each)?

Against Bybit (testnet, demo, production) it asks each configured key about itself
(``/v5/user/query-api``: master or sub-account, read-write, trade and transfer permissions, IP
binding, expiry), lists the master's sub-accounts with their UIDs and USDT balances
(``/v5/user/query-sub-members``, then each one's wallet) and compares them with ``member_id`` /
``main_member_id``, and measures the clock skew against ``/v5/market/time``. It also checks the
keys and UIDs the configuration lacks (:func:`jiritsu.config.live.live_problems`), the database,
the Discord webhook (a test message only when asked) and Gemini (one tiny request only when
asked). Paper mode needs no key; only what it uses is checked.

Each finding is ``ok``, ``warn`` (works, but look at it), ``bad`` (needed and not in place) or
``skipped``. Nothing here moves money or places an order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from jiritsu.clock import wall_now
from jiritsu.errors import ExitCode
from jiritsu.exchange.types import MAIN
from jiritsu.ops.health import BAD, OK, PROBE_TIMEOUT_SECONDS, SKIPPED, WARN, probe_error

if TYPE_CHECKING:
    from jiritsu.config import LoadedConfig
    from jiritsu.exchange.bybit import ApiKeyInfo, BybitExchange
    from jiritsu.notify import Notifier

__all__ = ["DoctorReport", "Finding", "SubAccountLine", "run_doctor"]

EXPIRY_WARN_DAYS = 14


@dataclass
class Finding:
    """One check: its verdict, what was found, and (unless ok) the one thing to do about it."""

    check: str
    status: str
    message: str
    fix: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class SubAccountLine:
    """A sub-account of the master, as Bybit lists it, and the bot configured with its UID."""

    uid: int
    username: str
    status: str
    balance_usdt: Decimal | None
    bot: str | None

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["balance_usdt"] = None if self.balance_usdt is None else str(self.balance_usdt)
        return data


@dataclass
class DoctorReport:
    environment: str
    checked_at: datetime
    findings: list[Finding] = field(default_factory=list)
    sub_accounts: list[SubAccountLine] | None = None
    database_reachable: bool = True

    @property
    def ready(self) -> bool:
        """Everything needed is in place (warnings allowed)."""
        return self.database_reachable and not any(f.status == BAD for f in self.findings)

    @property
    def exit_code(self) -> ExitCode:
        """0 ready, 3 database unreachable or missing, 1 anything else needed is missing."""
        if not self.database_reachable:
            return ExitCode.DB_UNREACHABLE
        return ExitCode.OK if self.ready else ExitCode.FAILURE

    @property
    def fixes(self) -> list[str]:
        return [f.fix for f in self.findings if f.fix and f.status in (BAD, WARN)]

    def as_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "checked_at": self.checked_at.isoformat(),
            "ready": self.ready,
            "exit_code": int(self.exit_code),
            "findings": [f.as_dict() for f in self.findings],
            "sub_accounts": (
                None if self.sub_accounts is None else [s.as_dict() for s in self.sub_accounts]
            ),
            "fixes": self.fixes,
        }


# --------------------------------------------------------------------------- configuration


def _config_findings(loaded: LoadedConfig) -> list[Finding]:
    from jiritsu.config.live import live_problems

    found = [
        Finding(f"config {key}", BAD, message, f"set {key}: {message}")
        for key, message in live_problems(loaded)
    ]
    if not found:
        found.append(
            Finding(
                "config",
                OK,
                (
                    f"keys and UIDs present for {_env(loaded)}"
                    if not loaded.settings.is_paper
                    else "paper mode: no Bybit key or UID needed"
                ),
            )
        )
    return found


def _env(loaded: LoadedConfig) -> str:
    return loaded.settings.general.environment


# --------------------------------------------------------------------------- the database


def _database(loaded: LoadedConfig, report: DoctorReport) -> None:
    from jiritsu.db import migrate
    from jiritsu.db.engine import connect, mask_url
    from jiritsu.errors import DatabaseMissing, DatabaseUnavailable

    url = mask_url(loaded.db_url)
    try:
        engine = connect(loaded.db_url, attempts=1, create=False)
    except DatabaseMissing as exc:
        report.database_reachable = False
        report.findings.append(Finding("database", BAD, str(exc), "run `jiritsu db upgrade`"))
        return
    except DatabaseUnavailable as exc:
        report.database_reachable = False
        report.findings.append(
            Finding(
                "database",
                BAD,
                probe_error(exc),
                f"start the database server or fix the URL ({url}); for PostgreSQL see the "
                "README, 'From paper to testnet to mainnet'",
            )
        )
        return
    try:
        revision, head = migrate.current(loaded.db_url), migrate.head()
    finally:
        engine.dispose()
    if revision != head:
        report.findings.append(
            Finding(
                "database",
                BAD,
                f"{url}: schema {revision or 'empty'}, head is {head}",
                "run `jiritsu db upgrade`",
            )
        )
    else:
        report.findings.append(Finding("database", OK, f"{url}: schema {revision} (up to date)"))


# --------------------------------------------------------------------------- Bybit keys


def _key_findings(loaded: LoadedConfig, client: BybitExchange, now: datetime) -> list[Finding]:
    """Ask every configured key about itself and judge it for its role (and, for a bot's key,
    whether it belongs under this master)."""
    settings = loaded.settings
    findings: list[Finding] = []
    infos: dict[str, ApiKeyInfo] = {}
    roles = [(MAIN, None)] + [(b.name, b) for b in settings.sub_bots if b.enabled]
    for account, bot in roles:
        if not client.has_key(account):
            continue  # already a config finding
        label = "master key" if bot is None else f"{account} key"
        try:
            info = client.api_key_info(account)
        except Exception as exc:  # noqa: BLE001 - refused, unreachable: each is a finding
            findings.append(
                Finding(
                    label, BAD, f"query-api failed: {probe_error(exc)}", _key_error_fix(exc, label)
                )
            )
            continue
        infos[account] = info
        findings += _judge_key(loaded, label, info, bot, now)
    master = infos.get(MAIN)
    if master is not None:
        for account, info in infos.items():
            if account != MAIN and info.parent_uid not in (None, master.user_id):
                findings.append(
                    Finding(
                        f"{account} key",
                        BAD,
                        f"belongs to a sub-account of UID {info.parent_uid}, not of this master "
                        f"(UID {master.user_id})",
                        f"create {account}'s key in a sub-account of master UID "
                        f"{master.user_id}",
                    )
                )
    return findings


def _key_error_fix(exc: BaseException, label: str) -> str:
    code = getattr(exc, "code", None)
    if code in (10003, 10004):
        return f"the {label} or its secret is wrong: copy both again from Bybit"
    if code == 10010:
        return f"the {label} is bound to other IPs: add this server's public IP on Bybit"
    if code == 33004:
        return f"the {label} has expired: create a new one (bind it to the server's IP)"
    return f"check the {label} on Bybit and the network to {label.split()[0]}"


def _judge_key(
    loaded: LoadedConfig, label: str, info: ApiKeyInfo, bot: Any, now: datetime
) -> list[Finding]:
    settings = loaded.settings
    environment = _env(loaded)
    out: list[Finding] = []
    problems: list[tuple[str, str]] = []
    if bot is None:
        if not info.is_master:
            problems.append(("is a sub-account key", "create the master key on the main account"))
        if not (
            info.allows("Wallet", "SubMemberTransfer") or info.allows("Wallet", "AccountTransfer")
        ):
            problems.append(
                (
                    "lacks the Wallet transfer permission",
                    "tick Wallet > Subaccount Transfer on the master key",
                )
            )
        expected = settings.master_bot.main_member_id
        if expected is not None and expected != info.user_id:
            problems.append(
                (
                    f"belongs to UID {info.user_id}, but master_bot.main_member_id is {expected}",
                    f"set master_bot.main_member_id = {info.user_id}",
                )
            )
    else:
        if info.is_master:
            problems.append(
                (
                    "is a master key: the bot would trade on the main account",
                    f"create {bot.name}'s key inside its sub-account",
                )
            )
        trade = ("ContractTrade", "Order") if bot.category == "linear" else ("Spot", "SpotTrade")
        if not info.allows(*trade):
            what = "Contract > Orders and Positions" if bot.category == "linear" else "Spot Trade"
            problems.append((f"cannot trade {bot.category}", f"tick {what} on {bot.name}'s key"))
        if bot.category == "linear" and not info.allows("ContractTrade", "Position"):
            problems.append(
                (
                    "cannot manage positions (TP/SL, leverage)",
                    f"tick Contract > Positions on {bot.name}'s key",
                )
            )
        if bot.member_id is not None and bot.member_id != info.user_id:
            problems.append(
                (
                    f"belongs to UID {info.user_id}, but its member_id is {bot.member_id}",
                    f"set {bot.name}'s member_id = {info.user_id} (or use that sub-account's key)",
                )
            )
        if info.allows("Wallet", "Withdraw"):
            problems.append(("may withdraw", f"remove Withdraw from {bot.name}'s key"))
    if info.read_only:
        problems.append(("is read-only", f"recreate the {label} with Read-Write"))
    if info.expires_at is not None and info.expires_at <= now:
        problems.append(
            (
                f"expired on {info.expires_at:%Y-%m-%d}",
                f"create a new {label} bound to the server's IP",
            )
        )
    for what, fix in problems:
        out.append(Finding(label, BAD, f"UID {info.user_id}: {what}", fix))
    warnings: list[tuple[str, str]] = []
    if bot is None and info.allows("Wallet", "Withdraw"):
        warnings.append(
            ("may withdraw (Jiritsu never needs it)", "remove Withdraw from the master key")
        )
    unbound = not info.ips or "*" in info.ips
    if unbound and environment == "production":
        warnings.append(
            (
                "is not bound to an IP (Bybit expires such keys after 90 days)",
                f"bind the {label} to the server's public IP on Bybit",
            )
        )
    if info.expires_at is not None and now < info.expires_at <= now + timedelta(
        days=EXPIRY_WARN_DAYS
    ):
        warnings.append(
            (
                f"expires on {info.expires_at:%Y-%m-%d}",
                f"renew the {label} (binding it to an IP stops the expiry)",
            )
        )
    for what, fix in warnings:
        out.append(Finding(label, WARN, f"UID {info.user_id}: {what}", fix))
    if not problems and not warnings:
        role = "master" if bot is None else f"sub-account, trades {bot.category}"
        ips = "any IP" if unbound else ", ".join(info.ips)
        out.append(Finding(label, OK, f"UID {info.user_id} ({role}), read-write, {ips}"))
    return out


# --------------------------------------------------------------------------- sub-accounts


def _sub_accounts(loaded: LoadedConfig, client: BybitExchange, report: DoctorReport) -> None:
    settings = loaded.settings
    if not client.has_key(MAIN):
        report.findings.append(Finding("sub-accounts", SKIPPED, "skipped: no master key"))
        return
    try:
        subs = client.sub_accounts()
    except Exception as exc:  # noqa: BLE001 - the finding says why
        report.findings.append(
            Finding(
                "sub-accounts",
                BAD,
                f"cannot list them: {probe_error(exc)}",
                "give the master key the permission to read sub-accounts",
            )
        )
        return
    by_uid = {b.member_id: b.name for b in settings.sub_bots if b.member_id is not None}
    lines = []
    for sub in subs:
        try:
            balance: Decimal | None = client.member_balance(sub.uid)
        except Exception:  # noqa: BLE001 - a balance we cannot read is shown as unknown
            balance = None
        lines.append(
            SubAccountLine(sub.uid, sub.username, sub.status, balance, by_uid.get(sub.uid))
        )
    report.sub_accounts = lines
    known = {s.uid for s in subs}
    listed = ", ".join(f"{s.uid} ({s.username})" for s in subs) or "none"
    report.findings.append(
        Finding(
            "sub-accounts",
            OK if subs else WARN,
            f"{len(subs)} under the master: {listed}",
            "" if subs else "create one sub-account per bot on Bybit",
        )
    )
    for i, bot in enumerate(settings.sub_bots):
        if not bot.enabled or bot.member_id is None:
            continue
        if bot.member_id not in known:
            report.findings.append(
                Finding(
                    f"config sub_bots[{i}].member_id",
                    BAD,
                    f"{bot.name}: UID {bot.member_id} is not a sub-account of this master "
                    f"(sub-accounts: {listed})",
                    f"set sub_bots[{i}].member_id to {bot.name}'s sub-account UID from the list",
                )
            )
        else:
            sub = next(s for s in subs if s.uid == bot.member_id)
            if sub.status != "normal":
                report.findings.append(
                    Finding(
                        f"{bot.name} sub-account",
                        BAD,
                        f"UID {sub.uid} is {sub.status}",
                        "unfreeze it on Bybit",
                    )
                )


# --------------------------------------------------------------------------- the rest


def _clock(loaded: LoadedConfig) -> Finding:
    from jiritsu.ops.health import exchange_check
    from jiritsu.runtime import public_client

    def builder(quick: LoadedConfig, **_: Any) -> Any:
        return public_client(quick)

    check = exchange_check(loaded, builder=builder, timeout=PROBE_TIMEOUT_SECONDS)
    fix = ""
    if check.status == WARN:
        fix = "turn NTP on (`timedatectl set-ntp true`) and check `timedatectl`"
    elif check.status == BAD:
        fix = "check the network, DNS and exchange.base_url"
    return Finding("clock", BAD if check.status == WARN else check.status, check.message, fix)


def _discord(loaded: LoadedConfig, notify: bool, notifier: Notifier | None) -> Finding:
    from jiritsu.notify.discord import DiscordNotifier

    settings = loaded.settings
    name = settings.api_keys.discord_webhook_env
    webhook = loaded.secrets.discord_webhook()
    if not webhook or not settings.notifications.enabled:
        why = f"{name} is not set" if not webhook else "notifications.enabled is false"
        needed = settings.general.environment == "production"
        return Finding(
            "discord",
            BAD if needed else WARN,
            f"{why}: alerts (breaker trips, a stopped bot) go to the log only",
            f"create a Discord webhook and put its URL in {name}",
        )
    if not notify:
        return Finding("discord", OK, f"{name} is set (test message: --notify)")
    sender: Notifier
    if isinstance(notifier, DiscordNotifier):
        sender = notifier
    else:
        from jiritsu.notify import notifier_from_config

        sender = notifier_from_config(loaded)
    sent = sender.notify(
        "WARNING", "DOCTOR", "test message from `jiritsu doctor --notify`: alerts arrive here"
    )
    if sent:
        return Finding("discord", OK, "test message delivered")
    return Finding(
        "discord",
        BAD,
        "the test message was not delivered (see the log)",
        f"check the webhook URL in {name}: Discord refused or was unreachable",
    )


def _gemini(loaded: LoadedConfig, ask: bool) -> Finding:
    settings = loaded.settings
    users = [b.name for b in settings.enabled_bots if b.advisor in ("gemini", "hybrid")]
    scorer = settings.news_sentiment.enabled and settings.news_sentiment.scorer == "gemini"
    keys = loaded.secrets.gemini_keys()
    name = settings.api_keys.gemini_keys_env
    if not users and not scorer:
        return Finding("gemini", SKIPPED, "skipped: no bot or scorer uses Gemini")
    who = ", ".join(users + (["the news scorer"] if scorer else []))
    if not keys:
        return Finding(
            "gemini",
            WARN,
            f"{name} is not set: the rules decide instead of Gemini for {who}",
            f"put a Gemini API key in {name}",
        )
    if not ask:
        return Finding("gemini", OK, f"{len(keys)} key(s) for {who} (one request: --gemini)")
    return _gemini_request(loaded, name)


def _gemini_request(loaded: LoadedConfig, name: str) -> Finding:
    from pydantic import BaseModel

    from jiritsu.ai.gemini import build_gemini_client

    class Pong(BaseModel):
        ok: bool

    client = build_gemini_client(loaded, None)
    if client is None:  # pragma: no cover - keys were checked by the caller
        return Finding("gemini", WARN, f"{name} is not set")
    try:
        with client:
            result = client.generate_json('Answer {"ok": true}.', Pong, purpose="doctor")
    except Exception as exc:  # noqa: BLE001 - the finding says why
        return Finding(
            "gemini",
            BAD,
            f"the test request failed: {probe_error(exc)}",
            f"check the keys in {name} and gemini.model",
        )
    return Finding("gemini", OK, f"a test request was answered by {result.model}")


# --------------------------------------------------------------------------- the run


def run_doctor(
    loaded: LoadedConfig,
    *,
    notify: bool = False,
    gemini: bool = False,
    notifier: Notifier | None = None,
    now: Callable[[], datetime] = wall_now,
) -> DoctorReport:
    """Check everything the configured environment needs; never raises for what it finds."""
    from jiritsu.ops.health import probe_config
    from jiritsu.runtime import account_client

    settings = loaded.settings
    report = DoctorReport(_env(loaded), now())
    report.findings += _config_findings(loaded)
    _database(loaded, report)
    if not settings.is_paper:
        try:
            client = account_client(probe_config(loaded, PROBE_TIMEOUT_SECONDS))
        except Exception as exc:  # noqa: BLE001 - e.g. a bad base_url
            report.findings.append(
                Finding(
                    "bybit",
                    BAD,
                    f"cannot set up: {probe_error(exc)}",
                    "check exchange.base_url and exchange.ca_file",
                )
            )
        else:
            try:
                report.findings += _key_findings(loaded, client, report.checked_at)
                _sub_accounts(loaded, client, report)
            finally:
                client.close()
    if not settings.is_paper or settings.paper.price_source == "bybit":
        report.findings.append(_clock(loaded))
    report.findings.append(_discord(loaded, notify, notifier))
    report.findings.append(_gemini(loaded, gemini))
    return report
