"""What ``jiritsu config check`` and ``jiritsu config show`` present, computed as plain data.

The CLI only renders these rows; keeping the flattening and masking here means the masking is
tested once and every other front end (dashboard, status) can reuse it. Nothing returned here
ever contains a secret value: ``*_env`` keys show the variable's name and whether it is set,
database URLs lose their password, and every string passes through :func:`jiritsu.redact.redact`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from jiritsu.clock import wall_now
from jiritsu.config.base import KeyPath, format_path
from jiritsu.config.loader import LoadedConfig, flatten_settings, mask_db_url
from jiritsu.redact import redact, redact_obj

__all__ = ["Row", "effective_rows", "rows_as_json", "summary"]


@dataclass(frozen=True)
class Row:
    """One effective leaf key."""

    key: str  # dotted, e.g. sub_bots[1].strategy_params.sl_ratio
    value: Any  # JSON-ready, masked
    display: str  # the value as text for a table
    origin: str  # default | file | overlay | env
    env_var: str | None = None  # the JIRITSU_* variable that set it
    secret_set: bool | None = None  # for *_env keys: is the named variable set?


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return (
            int(value)
            if value == value.to_integral_value() and "." not in str(value)
            else (float(value))
        )
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def _display(value: Any) -> str:
    import json

    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (Decimal, int, float)):
        return str(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(_jsonable(value), ensure_ascii=False)


def _env_var_for(key: str, overrides: dict[str, str]) -> str | None:
    for target, var in overrides.items():
        if key == target or key.startswith((target + ".", target + "[")):
            return var
    return None


def _is_env_key(path: KeyPath) -> bool:
    return isinstance(path[-1], str) and path[-1].endswith("_env")


def effective_rows(loaded: LoadedConfig) -> list[Row]:
    """Every leaf key of the effective configuration with its (masked) value and origin."""
    rows: list[Row] = []
    for path, value in flatten_settings(loaded.settings):
        key = format_path(path)
        secret_set: bool | None = None
        if _is_env_key(path) and isinstance(value, str):
            if value:
                secret_set = loaded.secrets.is_set(value)
                display = f"{value} ({'set' if secret_set else 'not set'})"
            else:
                display = '""'
            json_value: Any = value
        elif path[-1] == "db_url" and isinstance(value, str):
            json_value = mask_db_url(value)
            display = _display(json_value)
        else:
            json_value = _jsonable(value)
            display = _display(value)
        rows.append(
            Row(
                key=key,
                value=redact_obj(json_value),
                display=redact(display),
                origin=loaded.origins.get(key, "default"),
                env_var=_env_var_for(key, loaded.env_overrides),
                secret_set=secret_set,
            )
        )
    return rows


def rows_as_json(rows: list[Row]) -> list[dict[str, Any]]:
    """Rows as plain dicts for ``--json`` output."""
    out = []
    for row in rows:
        item: dict[str, Any] = {"key": row.key, "value": row.value, "origin": row.origin}
        if row.env_var:
            item["env_var"] = row.env_var
        if row.secret_set is not None:
            item["is_set"] = row.secret_set
        out.append(item)
    return out


def summary(loaded: LoadedConfig, now: datetime | None = None) -> dict[str, Any]:
    """The few facts an operator checks first; JSON-ready and free of secrets."""
    s = loaded.settings
    now = now or wall_now()
    overlay = loaded.overlay
    overlay_info: dict[str, Any] = {
        "path": str(loaded.overlay_path),
        "present": overlay is not None,
    }
    if overlay is not None:
        run_id = overlay.meta.get("tuning_run_id")
        applied = overlay.meta.get("applied_at")
        overlay_info.update(
            params=len(overlay.params),
            tuning_run_id=None if run_id is None else str(run_id),
            applied_at=applied.isoformat() if isinstance(applied, datetime) else applied,
        )
    secrets = [
        {"purpose": purpose, "name": name, "set": loaded.secrets.is_set(name)}
        for _key, purpose, name in loaded.secrets.referenced()
    ]
    return redact_obj(
        {
            "config_file": str(loaded.path),
            "environment": s.general.environment,
            "data_dir": str(s.general.data_dir),
            "database": mask_db_url(loaded.db_url),
            "bots": [
                {
                    "name": b.name,
                    "enabled": b.enabled,
                    "symbol": b.symbol,
                    "category": b.category,
                    "timeframe": b.timeframe,
                    "advisor": b.advisor,
                }
                for b in s.sub_bots
            ],
            "news": {"enabled": s.news_sentiment.enabled, "scorer": s.news_sentiment.scorer},
            "tuning": {
                "enabled": s.optimizer.auto_tuning_enabled,
                "schedule": s.optimizer.schedule,
                "next_run": s.optimizer.cron.next_after(now).isoformat(),
                "grid_size": _grid_size(loaded),
            },
            "overlay": overlay_info,
            "env_overrides": sorted(set(loaded.env_overrides.values())),
            "secrets": secrets,
        }
    )


def _grid_size(loaded: LoadedConfig) -> int:
    """Backtests per fold: each enabled bot's grid is the product of its own ranges."""
    enabled = {b.name for b in loaded.settings.sub_bots if b.enabled}
    per_bot: dict[str, int] = {}
    for key, rng in loaded.settings.optimizer.param_ranges.items():
        bot = key.split(".", 1)[0]
        if bot in enabled:
            per_bot[bot] = per_bot.get(bot, 1) * rng.count()
    return sum(per_bot.values())
