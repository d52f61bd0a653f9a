"""Where the files that ship with Jiritsu live.

Jiritsu runs from its checkout (the Docker image copies the checkout too), so config.toml and
migrations/ sit at the repository root, two levels above this package.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def default_config_path() -> Path:
    """The embedded default configuration (config.toml at the repository root)."""
    return ROOT / "config.toml"


def migrations_dir() -> Path:
    """The Alembic environment (migrations/ at the repository root)."""
    return ROOT / "migrations"
