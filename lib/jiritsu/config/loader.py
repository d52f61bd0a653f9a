"""Load the configuration: defaults < config file < tuned overlay < environment.

The operator's ``config.toml`` is never written by the system: the tuner's winners live in a
separate overlay (``<data_dir>/tuned.toml``) merged on top, and ``JIRITSU_<SECTION>__<KEY>``
variables override both. Every effective key remembers where its value came from, so that
``jiritsu config show`` can answer "why is this value what it is?".

Secrets come only from the environment (or a ``.env`` file, which is read, never exported and
never written); the configuration holds the NAMES of the variables. Every secret value found is
registered with :mod:`jiritsu.redact` at load time so that no log line, event or notification can
carry it.
"""

from __future__ import annotations

import copy
import json
import os
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, get_args, get_origin
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from jiritsu.config.base import KeyPath, PathSeg, env_stem, format_path, resolve_path, url_problem
from jiritsu.config.general import check_db_url
from jiritsu.config.params import set_bot_param, split_param_key, tunable_kind
from jiritsu.config.schema import is_model, unwrap_annotation, validation_problems
from jiritsu.config.settings import OVERLAY_FILENAME, Settings
from jiritsu.errors import ConfigError
from jiritsu.redact import register_secret

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "CONFIG_ENV",
    "LoadedConfig",
    "Overlay",
    "Secrets",
    "find_config_path",
    "load_config",
    "mask_db_url",
    "read_dotenv",
    "read_overlay",
    "resolve_db_url",
    "write_overlay",
]

CONFIG_ENV = "JIRITSU_CONFIG"
ENV_PREFIX = "JIRITSU_"
NOT_OVERRIDES = frozenset({CONFIG_ENV, "JIRITSU_TEST_PG_URL"})
Origin = Literal["default", "file", "overlay", "env"]


# --------------------------------------------------------------------------- secrets


class Secrets:
    """Secret values, looked up by the variable names the configuration gives.

    Values come from the real environment or ``.env``; each value handed out is registered with
    :func:`jiritsu.redact.register_secret`. ``repr`` never shows a value.
    """

    def __init__(self, env: Mapping[str, str], settings: Settings) -> None:
        self._env = dict(env)
        self._settings = settings

    def __repr__(self) -> str:
        return "Secrets(<hidden>)"

    def get(self, name: str) -> str | None:
        """The value of environment variable ``name`` (None when unset or blank)."""
        value = self._env.get(name)
        if value is None or not value.strip():
            return None
        value = value.strip()
        register_secret(value)
        return value

    def is_set(self, name: str) -> bool:
        """Whether ``name`` has a non-blank value (without handing the value out)."""
        value = self._env.get(name)
        return bool(value and value.strip())

    def _pair(self, key_env: str, secret_env: str) -> tuple[str, str] | None:
        key, secret = self.get(key_env), self.get(secret_env)
        return (key, secret) if key and secret else None

    def bybit_master(self) -> tuple[str, str] | None:
        """(API key, API secret) of the master account, None unless both are set."""
        api = self._settings.api_keys
        return self._pair(api.bybit_master_key_env, api.bybit_master_secret_env)

    def bybit_bot(self, name: str) -> tuple[str, str] | None:
        """(API key, API secret) of sub-bot ``name`` (KeyError for an unknown bot)."""
        bot = self._settings.bot(name)
        return self._pair(bot.api_key_env, bot.api_secret_env)

    def gemini_keys(self) -> list[str]:
        """The Gemini API keys (one variable, comma-separated), in order."""
        raw = self.get(self._settings.api_keys.gemini_keys_env)
        keys = [k.strip() for k in raw.split(",") if k.strip()] if raw else []
        for key in keys:
            register_secret(key)
        return keys

    def discord_webhook(self) -> str | None:
        """The Discord webhook URL (secret as a whole: the token is part of it)."""
        return self.get(self._settings.api_keys.discord_webhook_env)

    def dashboard_password_hash(self, username: str) -> str | None:
        """The password hash of dashboard user ``username`` (KeyError for an unknown user)."""
        for user in self._settings.dashboard.users:
            if user.username == username:
                return self.get(user.password_hash_env)
        raise KeyError(username)

    def referenced(self) -> list[tuple[str, str, str]]:
        """(config key, purpose, variable name) for every secret the configuration names."""
        s = self._settings
        api = s.api_keys
        refs = [
            ("api_keys.bybit_master_key_env", "Bybit master API key", api.bybit_master_key_env),
            (
                "api_keys.bybit_master_secret_env",
                "Bybit master API secret",
                api.bybit_master_secret_env,
            ),
            ("api_keys.gemini_keys_env", "Gemini API keys", api.gemini_keys_env),
            ("api_keys.discord_webhook_env", "Discord webhook URL", api.discord_webhook_env),
        ]
        for i, bot in enumerate(s.sub_bots):
            refs.append((f"sub_bots[{i}].api_key_env", f"{bot.name} API key", bot.api_key_env))
            refs.append(
                (f"sub_bots[{i}].api_secret_env", f"{bot.name} API secret", bot.api_secret_env)
            )
        for i, user in enumerate(s.dashboard.users):
            refs.append(
                (
                    f"dashboard.users[{i}].password_hash_env",
                    f"dashboard password hash of {user.username}",
                    user.password_hash_env,
                )
            )
        if s.database.db_url_env:
            refs.append(("database.db_url_env", "database URL", s.database.db_url_env))
        return refs


def _secret_problems(secrets: Secrets, settings: Settings) -> list[tuple[str, str]]:
    """Register every secret; refuse values too short to be masked and insecure webhooks."""
    problems: list[tuple[str, str]] = []
    for key, _purpose, name in secrets.referenced():
        value = secrets.get(name)
        if value is not None and len(value) < 4:
            problems.append(
                (key, f"{name} is set but shorter than 4 characters: not a real secret")
            )
    for key in secrets.gemini_keys():
        if len(key) < 4:
            problems.append(
                ("api_keys.gemini_keys_env", "a Gemini key is shorter than 4 characters")
            )
    webhook = secrets.discord_webhook()
    if webhook:
        problem = url_problem(webhook, settings.general.environment)
        if problem:
            name = settings.api_keys.discord_webhook_env
            problems.append(("api_keys.discord_webhook_env", f"the URL in {name} {problem}"))
    if not settings.is_paper:
        api = settings.api_keys
        master = api.bybit_master_key_env, api.bybit_master_secret_env
        pairs = [("api_keys.bybit_master_key_env", *master)]
        pairs += [
            (f"sub_bots[{i}].api_key_env", b.api_key_env, b.api_secret_env)
            for i, b in enumerate(settings.sub_bots)
        ]
        for key, key_env, secret_env in pairs:
            if secrets.is_set(key_env) != secrets.is_set(secret_env):
                have, missing = (
                    (key_env, secret_env) if secrets.is_set(key_env) else (secret_env, key_env)
                )
                problems.append((key, f"{have} is set but {missing} is not"))
    return problems


# --------------------------------------------------------------------------- database URL


def mask_db_url(url: str) -> str:
    """The URL with its password replaced by ``***`` (for display)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    netloc, slash, tail = rest.partition("/")
    if "@" not in netloc:
        return url
    userinfo, _, host = netloc.rpartition("@")
    if ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}{slash}{tail}"


def _absolute_sqlite(url: str, base: Path) -> str:
    scheme, _, rest = url.partition("://")
    if not rest.startswith("/"):
        return url  # sqlite:// (in memory)
    file, sep, query = rest[1:].partition("?")
    if file in ("", ":memory:") or file.startswith("file:"):
        return url
    return f"{scheme}:///{resolve_path(file, base)}{sep}{query}"


def resolve_db_url(settings: Settings, environ: Mapping[str, str], config_dir: Path) -> str:
    """The SQLAlchemy URL to connect to.

    ``db_url`` empty means ``sqlite:///<data_dir>/jiritsu.db``; relative SQLite paths count from
    ``config_dir``; ``postgresql://`` gets the psycopg driver. The password (if any) is
    registered as a secret.
    """
    db = settings.database
    if db.db_url_env:
        raw = (environ.get(db.db_url_env) or "").strip()
        if not raw:
            raise ConfigError(
                [("database.db_url_env", f"environment variable {db.db_url_env} is not set")]
            )
        url, problem = check_db_url(db.db_type, raw)
        if problem:
            raise ConfigError([("database.db_url_env", f"the URL in {db.db_url_env}: {problem}")])
    elif db.db_url:
        url, _ = check_db_url(db.db_type, db.db_url)
    else:
        return f"sqlite:///{settings.general.data_dir / 'jiritsu.db'}"
    if url.startswith("sqlite"):
        return _absolute_sqlite(url, config_dir)
    return url


def _db_password_problems(url: str, key: str) -> list[tuple[str, str]]:
    try:
        password = urlsplit(url).password
    except ValueError:
        return [(key, "is not a valid URL")]
    if not password:
        return []
    register_secret(password)
    register_secret(unquote(password))
    if len(unquote(password)) < 4:
        return [(key, "the database password is shorter than 4 characters and cannot be masked")]
    return []


# --------------------------------------------------------------------------- files


def _read_toml(path: Path, label: str) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh, parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([(label, f"TOML syntax error: {exc}")], source=str(path)) from None
    except UnicodeDecodeError:
        raise ConfigError([(label, "is not UTF-8 text")], source=str(path)) from None
    except OSError as exc:
        raise ConfigError([(label, f"cannot read: {exc.strerror}")], source=str(path)) from None


def find_config_path(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Path:
    """The file to load: ``path``, else $JIRITSU_CONFIG, else ./config.toml, else the default."""
    from jiritsu.resources import default_config_path

    env = os.environ if environ is None else environ
    given = None
    if path is not None and str(path) != "":
        chosen, given = Path(path).expanduser(), "--config"
    elif env.get(CONFIG_ENV):
        chosen, given = Path(env[CONFIG_ENV]).expanduser(), CONFIG_ENV
    else:
        local = Path.cwd() / "config.toml"
        chosen = local if local.is_file() else default_config_path()
    if not chosen.exists():
        how = f" (given by {given})" if given else ""
        raise ConfigError(
            [("config", f"configuration file not found: {chosen}{how}")], source=str(chosen)
        )
    if not chosen.is_file():
        raise ConfigError([("config", f"not a file: {chosen}")], source=str(chosen))
    return chosen.resolve()


def _unquote_double(text: str) -> str:
    escapes = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in escapes:
            out.append(escapes[text[i + 1]])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _closing_quote(text: str, quote: str) -> int:
    i = 1
    while i < len(text):
        if text[i] == "\\" and quote == '"':
            i += 2
            continue
        if text[i] == quote:
            return i
        i += 1
    return -1


def read_dotenv(path: Path) -> dict[str, str]:
    """Parse a ``.env`` file (KEY=VALUE, ``export`` prefix, quotes, comments); {} if absent.

    Malformed lines are a ConfigError naming the line, never echoing its content (it may be a
    secret).
    """
    if not path.is_file():
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([(str(path), f"cannot read: {exc}")], source=str(path)) from None
    values: dict[str, str] = {}
    problems: list[tuple[str, str]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("export "):
            stripped = stripped[len("export ") :].lstrip()
        key, sep, value = stripped.partition("=")
        key = key.strip()
        if not sep or not key.replace("_", "a").isalnum() or key[0].isdigit():
            problems.append((f"{path}:{lineno}", "expected KEY=VALUE"))
            continue
        value = value.strip()
        if value[:1] in ('"', "'"):
            end = _closing_quote(value, value[0])
            rest = value[end + 1 :].strip() if end > 0 else ""
            if end < 0 or (rest and not rest.startswith("#")):
                problems.append((f"{path}:{lineno}", "unterminated or malformed quoted value"))
                continue
            inner = value[1:end]
            value = _unquote_double(inner) if value[0] == '"' else inner
        else:
            hash_at = value.find(" #")
            if hash_at >= 0:
                value = value[:hash_at].rstrip()
        values[key] = value
    if problems:
        raise ConfigError(problems, source=str(path))
    return values


# --------------------------------------------------------------------------- tuned overlay


@dataclass(frozen=True)
class Overlay:
    """The tuner's winning parameters: ``{"BOT.section.key": value}`` plus free-form meta."""

    path: Path
    params: dict[str, Any]
    meta: dict[str, Any]


def _overlay_label(path: Path, *keys: PathSeg) -> str:
    return f"{path.name}: {format_path(keys)}" if keys else path.name


def read_overlay(path: str | Path) -> Overlay | None:
    """Read ``tuned.toml`` (None if it does not exist); checks its shape, not the bots."""
    path = Path(path)
    if not path.exists():
        return None
    data = _read_toml(path, path.name)
    problems: list[tuple[str, str]] = []
    for key in data:
        if key not in ("meta", "params"):
            problems.append(
                (_overlay_label(path, key), "unknown table; expected only meta and params")
            )
    meta, params = data.get("meta", {}), data.get("params", {})
    if not isinstance(meta, dict):
        problems.append((_overlay_label(path, "meta"), "must be a table"))
        meta = {}
    if not isinstance(params, dict):
        problems.append((_overlay_label(path, "params"), "must be a table"))
        params = {}
    for key, value in params.items():
        label = _overlay_label(path, "params", key)
        try:
            split_param_key(key)
        except ValueError as exc:
            problems.append((label, str(exc)))
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
            problems.append((label, "must be a number"))
    if problems:
        raise ConfigError(problems, source=str(path))
    return Overlay(path=path, params=dict(params), meta=dict(meta))


def _tomlable(value: Any) -> Any:
    if isinstance(value, Decimal):
        exponent = value.as_tuple().exponent  # a letter for NaN and infinity
        return int(value) if isinstance(exponent, int) and exponent >= 0 else float(value)
    if isinstance(value, Mapping):
        return {str(k): _tomlable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_tomlable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def write_overlay(path: str | Path, params: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
    """Atomically replace the overlay (temp file + ``os.replace``): readers see old or new.

    Integer parameters are written as integers; raises ValueError for a malformed key or a
    non-numeric value (a bug in the caller, not an operator error).
    """
    import tomli_w

    path = Path(path)
    clean: dict[str, Any] = {}
    for key in sorted(params):
        value = params[key]
        _, field_path = split_param_key(key)
        if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
            raise ValueError(f"{key}: overlay values must be numbers")
        if tunable_kind(field_path) == "int":
            if value != int(value):
                raise ValueError(f"{key}: {value} is not a whole number")
            value = int(value)
        clean[key] = _tomlable(value)
    text = tomli_w.dumps({"meta": _tomlable(dict(meta)), "params": clean})
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- env overrides


@dataclass(frozen=True)
class _Override:
    var: str
    segments: tuple[str, ...]
    value: str


def _collect_overrides(env: Mapping[str, str]) -> tuple[list[_Override], list[tuple[str, str]]]:
    overrides: list[_Override] = []
    problems: list[tuple[str, str]] = []
    for name, value in env.items():
        if not name.upper().startswith(ENV_PREFIX) or name.upper() in NOT_OVERRIDES:
            continue
        body = name[len(ENV_PREFIX) :]
        if "__" not in body:
            continue  # e.g. JIRITSU_DASHBOARD_PASSWORD_HASH: a secret's name, not an override
        segments = tuple(body.split("__"))
        if any(not s for s in segments):
            problems.append((name, "malformed override; use JIRITSU_<SECTION>__<KEY>"))
            continue
        overrides.append(_Override(name, segments, value))
    # Whole tables first, so that a more specific variable wins over a table set as JSON.
    overrides.sort(key=lambda o: (len(o.segments), o.var))
    return overrides, problems


def _to_raw(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="python")
    if isinstance(value, list):
        return [_to_raw(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_raw(v) for k, v in value.items()}
    return value


def _default_raw(info: FieldInfo) -> Any:
    default = info.get_default(call_default_factory=True)
    return {} if isinstance(default, BaseModel) else _to_raw(default)


def _env_value(text: str, annotation: Any) -> Any:
    """Env text -> raw value: strings stay strings for text fields, JSON otherwise."""
    kind = unwrap_annotation(annotation)
    if kind in (str, Path, Decimal) or (
        get_origin(kind) is Literal and all(isinstance(a, str) for a in get_args(kind))
    ):
        return text
    try:
        return json.loads(text, parse_float=Decimal)
    except ValueError:
        if get_origin(kind) is list:
            return [item.strip() for item in text.split(",") if item.strip()]
        return text


def _item_name(item: Any) -> str | None:
    if isinstance(item, dict):
        for key in ("name", "username"):
            if isinstance(item.get(key), str):
                return str(item[key])
    return None


def _apply_override(data: dict[str, Any], override: _Override) -> KeyPath:
    """Set one override in raw data; ValueError (with a readable reason) if it names no key."""
    import difflib

    annotation: Any = Settings
    node: Any = data
    path: list[PathSeg] = []
    for i, seg in enumerate(override.segments):
        kind = unwrap_annotation(annotation)
        where = f"'{format_path(path)}'" if path else "the configuration"
        key: PathSeg
        if is_model(kind):
            if not isinstance(node, dict):
                raise ValueError(f"cannot apply: {where} is not a table")
            key = seg.lower()
            last = i == len(override.segments) - 1
            if key in kind.model_fields:
                child_annotation = kind.model_fields[key].annotation
                if key not in node and not last:
                    node[key] = _default_raw(kind.model_fields[key])
            elif last and kind.model_config.get("extra") == "allow":
                child_annotation = Any  # a strategy's own parameter: its Params checks it
            else:
                msg = f"unknown key {key!r} in {where}"
                close = difflib.get_close_matches(key, list(kind.model_fields), n=1, cutoff=0.6)
                raise ValueError(msg + (f"; did you mean {close[0]!r}?" if close else ""))
        elif get_origin(kind) is list:
            if not isinstance(node, list):
                raise ValueError(f"cannot apply: {where} is not a list")
            if seg.isdigit():
                key = int(seg)
                if key >= len(node):
                    raise ValueError(f"{where} has {len(node)} items; there is no item {key}")
            else:
                wanted = env_stem(seg)
                matches = [
                    j for j, item in enumerate(node) if env_stem(_item_name(item) or "") == wanted
                ]
                if not matches:
                    raise ValueError(f"{where} has no item named like {seg!r}")
                key = matches[0]
            child_annotation = get_args(kind)[0]
        elif get_origin(kind) is dict:
            if not isinstance(node, dict):
                raise ValueError(f"cannot apply: {where} is not a table")
            found = (
                seg
                if seg in node
                else next(
                    (k for k in node if isinstance(k, str) and env_stem(k) == env_stem(seg)), None
                )
            )
            if found is None:
                raise ValueError(f"{where} has no key matching {seg!r}")
            key = found
            child_annotation = get_args(kind)[1]
        else:
            raise ValueError(f"{where} is a single value, not a table")
        path.append(key)
        if i == len(override.segments) - 1:
            node[key] = _env_value(override.value, child_annotation)
            return tuple(path)
        node = node[key]
        annotation = child_annotation
    raise AssertionError("unreachable")  # pragma: no cover


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class LoadedConfig:
    """The validated configuration plus where each value came from and the secrets."""

    settings: Settings
    path: Path
    origins: dict[str, str]
    secrets: Secrets = field(repr=False)
    db_url: str = field(repr=False)
    overlay_path: Path
    overlay: Overlay | None = None
    env_overrides: dict[str, str] = field(default_factory=dict)  # dotted key -> env var

    @property
    def config_dir(self) -> Path:
        """Relative paths in the configuration count from here."""
        return self.path.parent


def flatten_settings(settings: BaseModel) -> list[tuple[KeyPath, Any]]:
    """Every leaf key of the settings (lists of plain values count as one leaf)."""
    out: list[tuple[KeyPath, Any]] = []

    def walk(value: Any, path: KeyPath) -> None:
        if isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name), (*path, name))
        elif isinstance(value, list) and value and all(isinstance(v, BaseModel) for v in value):
            for i, item in enumerate(value):
                walk(item, (*path, i))
        elif isinstance(value, dict) and value:
            for key, item in value.items():
                walk(item, (*path, key))
        else:
            out.append((path, value))

    walk(settings, ())
    return out


def _present(data: Any, path: KeyPath) -> bool:
    node = data
    for seg in path:
        if isinstance(seg, int) and isinstance(node, list) and seg < len(node):
            node = node[seg]
        elif isinstance(seg, str) and isinstance(node, dict) and seg in node:
            node = node[seg]
        else:
            return False
    return True


def _origin(
    path: KeyPath, file_data: dict[str, Any], overlay: set[KeyPath], env: dict[KeyPath, str]
) -> Origin:
    if any(path[: len(p)] == p for p in env):
        return "env"
    if path in overlay:
        return "overlay"
    return "file" if _present(file_data, path) else "default"


def _fill_sections(data: dict[str, Any], model: type[BaseModel]) -> None:
    """Add every missing (sub)section as an empty table.

    Defaults are then built by validation, with the context, like written tables: relative
    paths resolve against the config file and default tables naming bots are checked too.
    """
    for name, info in model.model_fields.items():
        kind = unwrap_annotation(info.annotation)
        if is_model(kind):
            if name not in data:
                data[name] = {}
            if isinstance(data[name], dict):
                _fill_sections(data[name], kind)
        elif get_origin(kind) is list and is_model(unwrap_annotation(get_args(kind)[0])):
            item_model = unwrap_annotation(get_args(kind)[0])
            for item in data.get(name) or []:
                if isinstance(item, dict):
                    _fill_sections(item, item_model)


def _peek_data_dir(file_data: dict[str, Any], overrides: list[_Override], base: Path) -> Path:
    """data_dir before validation: the overlay lives there, so it must be known first."""
    value: Any = None
    general = file_data.get("general")
    if isinstance(general, dict):
        value = general.get("data_dir")
    for override in overrides:
        if tuple(s.lower() for s in override.segments) == ("general", "data_dir"):
            value = override.value
    if not isinstance(value, str) or not value.strip():
        value = "var"
    return resolve_path(value, base)


def load_config(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> LoadedConfig:
    """Load, merge and validate the configuration; ConfigError lists every problem at once.

    ``path`` None means $JIRITSU_CONFIG, else ./config.toml, else the shipped default.
    ``environ`` defaults to ``os.environ``; ``.env`` files next to the config file and in the
    current directory fill in variables the environment does not set.
    """
    real_env = dict(os.environ if environ is None else environ)
    config_path = find_config_path(path, real_env)
    config_dir = config_path.parent
    file_data = _read_toml(config_path, config_path.name)

    dotenv: dict[str, str] = {}
    for directory in dict.fromkeys([config_dir, Path.cwd().resolve()]):
        dotenv.update(read_dotenv(directory / ".env"))
    env = {**dotenv, **real_env}

    problems: list[tuple[str, str]] = []
    overrides, override_problems = _collect_overrides(env)
    problems += override_problems

    merged = copy.deepcopy(file_data)
    _fill_sections(merged, Settings)

    overlay_path = _peek_data_dir(file_data, overrides, config_dir) / OVERLAY_FILENAME
    overlay: Overlay | None = None
    overlay_paths: dict[KeyPath, str] = {}
    try:
        overlay = read_overlay(overlay_path)
    except ConfigError as exc:
        problems += exc.problems
    if overlay is not None:
        for key, value in overlay.params.items():
            try:
                overlay_paths[set_bot_param(merged, key, value)] = key
            except ValueError as exc:
                problems.append((_overlay_label(overlay_path, "params", key), str(exc)))

    env_paths: dict[KeyPath, str] = {}
    for override in overrides:
        try:
            env_paths[_apply_override(merged, override)] = override.var
        except ValueError as exc:
            problems.append((override.var, str(exc)))

    settings: Settings | None = None
    try:
        settings = Settings.model_validate(merged, context={"config_dir": config_dir})
    except ValidationError as exc:
        for key_path, msg in validation_problems(exc, Settings):
            var = next((v for p, v in env_paths.items() if key_path[: len(p)] == p), None)
            if var:
                msg += f" (set by {var})"
            elif key_path in overlay_paths:
                msg += f" (from {overlay_path})"
            elif msg.startswith("no sub-bot named") and not _present(file_data, key_path):
                msg += " (a built-in default: write this table in the configuration file)"
            problems.append((format_path(key_path), msg))
    if problems or settings is None:
        raise ConfigError(problems, source=str(config_path))

    secrets = Secrets(env, settings)
    problems += _secret_problems(secrets, settings)
    db_url = ""
    try:
        db_url = resolve_db_url(settings, env, config_dir)
    except ConfigError as exc:
        problems += exc.problems
    db_key = "database.db_url_env" if settings.database.db_url_env else "database.db_url"
    problems += _db_password_problems(db_url, db_key) if db_url else []
    if problems:
        raise ConfigError(problems, source=str(config_path))

    origins: dict[str, str] = {
        format_path(p): _origin(p, file_data, set(overlay_paths), env_paths)
        for p, _ in flatten_settings(settings)
    }
    return LoadedConfig(
        settings=settings,
        path=config_path,
        origins=origins,
        secrets=secrets,
        db_url=db_url,
        overlay_path=overlay_path,
        overlay=overlay,
        env_overrides={format_path(p): v for p, v in env_paths.items()},
    )
