"""Settings of the anthropic provider: a light module, so the config can validate them without the SDK."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AnthropicSettings(BaseModel):
    """Transport settings of the anthropic provider; none of them is part of a cache key."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    base_url: str | None = None
    """Messages API server; None means ANTHROPIC_BASE_URL, else Anthropic itself."""
    text_model: str = "claude-sonnet-5-5"
    """Model for role `text`."""
    code_model: str = "claude-sonnet-5-5"
    """Model for role `code`."""
    max_output_tokens: int = Field(64000, ge=256)
    """The most output tokens the model may give: an answer cut at its cap (`output_caps`) is asked
    again with the cap doubled, up to this."""
    api_key_env: str = "ANTHROPIC_API_KEY"
    """Environment variable holding the API key (the key itself never enters config)."""
    max_concurrency: int = Field(4, ge=1)
    """Requests in flight per (model, base_url); shrinks on 429, grows back on success."""
    max_retries: int = Field(4, ge=0)
    """Retries of a 429 / 5xx / timeout / connection error before giving up."""
    timeout_seconds: float = Field(120, gt=0)
    """Client timeout of one HTTP request."""
    max_validation_retries: int = Field(2, ge=0)
    """Times an answer that fails the response model is fed back for repair."""
    backoff_base: float = Field(0.5, ge=0)
    """First retry wait in seconds (doubled each retry, jittered) when no Retry-After is sent."""
    send_temperature: bool = False
    """Send LLMRequest.temperature in the body: the SDK's Messages API no longer lists it, but
    servers such as vLLM or llama.cpp honour it."""
