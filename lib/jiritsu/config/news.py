"""``[gemini]`` and ``[news_sentiment]``: the AI advisor's client and budgets, and the news feeds
the sentiment score comes from."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from jiritsu.config.base import (
    CTX_ENVIRONMENT,
    Float,
    Int,
    KeyPath,
    Model,
    Problems,
    checked_ca_file,
    checked_url,
    config_dir,
    from_context,
    is_url,
    raise_if,
    resolve_path,
    url_problem,
)


class GeminiSettings(Model):
    model: str = Field(default="gemini-2.5-flash", min_length=1)
    request_timeout_seconds: Float = Field(default=20, gt=0)
    retry_attempts: Int = Field(default=3, ge=0)
    daily_request_budget: Int = Field(default=1000, ge=0)
    daily_token_budget: Int = Field(default=2_000_000, ge=0)
    base_url: str = ""
    # A CA bundle for Gemini's TLS certificate (a TLS-inspecting proxy, the tests' fake);
    # google-genai's HTTP client is given it explicitly, as pybit is given exchange.ca_file.
    ca_file: str = ""
    temperature: Float = Field(default=0.2, ge=0, le=2)

    @field_validator("base_url")
    @classmethod
    def _https(cls, value: str, info: ValidationInfo) -> str:
        return checked_url(value, info)

    @field_validator("ca_file")
    @classmethod
    def _ca(cls, value: str) -> str:
        return checked_ca_file(value)


def _shipped_file(relative: str) -> str:
    """A file shipped next to config.toml, as its relative path there resolves to."""
    from jiritsu.resources import default_config_path

    return str(resolve_path(relative, default_config_path().parent))


class NewsSentimentSettings(Model):
    enabled: bool = True
    fetch_interval_minutes: Int = Field(default=15, ge=1)
    keywords: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=lambda: ["bitcoin", "btc", "crypto", "ethereum"]
    )
    sources: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=lambda: [
            "https://www.coindesk.com/arc/outboundfeeds/rss/",
            "https://cointelegraph.com/rss",
            _shipped_file("examples/news/sample_feed.xml"),  # offline demo feed, dated 2025
        ]
    )
    moving_average_period_hours: Int = Field(default=24, ge=1)
    scorer: Literal["gemini", "lexicon"] = "lexicon"
    request_timeout_seconds: Float = Field(default=10, gt=0)
    max_bytes: Int = Field(default=2_000_000, ge=1024)
    max_text_chars: Int = Field(default=2000, ge=1)
    use_page_text: bool = False

    @field_validator("sources")
    @classmethod
    def _local_paths_absolute(cls, value: list[str], info: ValidationInfo) -> list[str]:
        environment = from_context(info, CTX_ENVIRONMENT)
        problems: list[tuple[KeyPath, str]] = []
        for i, source in enumerate(value):
            problem = url_problem(source, environment) if environment and is_url(source) else None
            if problem:
                problems.append(((i,), problem))
        raise_if(problems)
        base = config_dir(info)
        return [s if is_url(s) else str(resolve_path(s, base)) for s in value]

    @model_validator(mode="after")
    def _keywords_when_enabled(self) -> NewsSentimentSettings:
        if self.enabled and not self.keywords:
            raise Problems([(("keywords",), "needs at least one keyword when enabled")])
        return self
