"""Rewrite the shipped config.toml from the configuration models (their defaults and the comments
of jiritsu.config.template): run it after changing a default or a comment; the test suite fails
while the file and the models disagree."""

from __future__ import annotations

from jiritsu.config.template import render
from jiritsu.resources import default_config_path


def main() -> None:
    path = default_config_path()
    text = render()
    if path.read_text() == text:
        print(f"{path}: up to date")
        return
    path.write_text(text)
    print(f"{path}: rewritten")


if __name__ == "__main__":
    main()
