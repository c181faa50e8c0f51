"""Settings of the openai provider: a light module, so the config can validate them without the SDK."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class OpenAISettings(BaseModel):
    """Transport settings of the openai provider (any chat-completions server); none of them is part
    of a cache key."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    base_url: str | None = None
    """Chat-completions server, e.g. http://127.0.0.1:8000/v1 for vLLM, SGLang or Ollama; None means
    OPENAI_BASE_URL, else OpenAI itself."""
    text_model: str = "gpt-5.4-mini"
    """Model for role `text` (a local server's served model name)."""
    code_model: str = "gpt-5.4-mini"
    """Model for role `code`."""
    max_output_tokens: int = Field(32768, ge=256)
    """The most output tokens the model (or the server's context) allows: an answer cut at its cap
    (`output_caps`) is asked again with the cap doubled, up to this."""
    api_key_env: str = "OPENAI_API_KEY"
    """Environment variable holding the API key (the key itself never enters config). Unset is fine
    for a server other than OpenAI's: local servers accept any key, so a placeholder is sent."""
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
    temperature: float | None = None
    """Sampling temperature of rollout turns; None leaves the server's default. Structured requests
    send their own LLMRequest.temperature."""
    send_temperature: bool = True
    """Send a temperature at all (some reasoning models reject the parameter)."""
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    """Body field of the output budget: local servers read max_tokens; OpenAI's reasoning models
    want max_completion_tokens."""
