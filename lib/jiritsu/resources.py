"""Where the files that ship with Jiritsu live, in a source checkout and in an installed wheel."""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent
_CHECKOUT = _PKG.parent.parent  # lib/jiritsu -> repository root


def default_config_path() -> Path:
    """The embedded default configuration (config.toml at the repository root)."""
    packaged = _PKG / "default_config.toml"
    return packaged if packaged.exists() else _CHECKOUT / "config.toml"


def migrations_dir() -> Path:
    """The Alembic environment (migrations/ at the repository root)."""
    packaged = _PKG / "_migrations"
    return packaged if packaged.exists() else _CHECKOUT / "migrations"
