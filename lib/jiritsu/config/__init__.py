"""The configuration: ``config.toml`` < tuned overlay < ``JIRITSU_*`` environment, validated.

Typical use::

    from jiritsu.config import load_config

    loaded = load_config()              # ConfigError (exit 2) lists every problem at once
    loaded.settings.sub_bots[0].base_lot
    loaded.secrets.bybit_master()       # secrets only from the environment or .env

Importing this package loads pydantic but nothing heavier.
"""

from __future__ import annotations

from jiritsu.config.base import format_path
from jiritsu.config.bots import SubBot
from jiritsu.config.cron import CronError, CronSchedule, parse_cron
from jiritsu.config.loader import (
    LoadedConfig,
    Overlay,
    Secrets,
    find_config_path,
    load_config,
    mask_db_url,
    read_overlay,
    resolve_db_url,
    write_overlay,
)
from jiritsu.config.master import PHASES
from jiritsu.config.params import ParamRange, expand_range, tunable_kind
from jiritsu.config.settings import Settings

__all__ = [
    "PHASES",
    "CronError",
    "CronSchedule",
    "LoadedConfig",
    "Overlay",
    "ParamRange",
    "Secrets",
    "Settings",
    "SubBot",
    "expand_range",
    "find_config_path",
    "format_path",
    "load_config",
    "mask_db_url",
    "parse_cron",
    "read_overlay",
    "resolve_db_url",
    "tunable_kind",
    "write_overlay",
]
