"""Test doubles that speak real protocols; `messages_server` and `chat_completions_server` are pytest
fixtures to import."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.chat_completions_server import (
    ChatCompletionsServer,
    chat_text_reply,
    completion_reply,
    function_call,
    openai_error,
    openai_rate_limited,
    tool_calls_reply,
)
from tests.fakes.messages_server import (
    Delay,
    ErrorReply,
    MessagesServer,
    delay,
    error_reply,
    message_reply,
    rate_limited,
    server_error,
    sized_tool_use_reply,
    text_reply,
    tokens_of,
    tool_use_reply,
)

__all__ = [
    "ChatCompletionsServer",
    "Delay",
    "ErrorReply",
    "MessagesServer",
    "delay",
    "chat_completions_server",
    "chat_text_reply",
    "completion_reply",
    "error_reply",
    "function_call",
    "message_reply",
    "messages_server",
    "openai_error",
    "openai_rate_limited",
    "rate_limited",
    "server_error",
    "sized_tool_use_reply",
    "text_reply",
    "tokens_of",
    "tool_calls_reply",
    "tool_use_reply",
]


@pytest.fixture
def messages_server() -> Iterator[MessagesServer]:
    """A started MessagesServer on 127.0.0.1, closed after the test."""
    with MessagesServer() as server:
        yield server


@pytest.fixture
def chat_completions_server() -> Iterator[ChatCompletionsServer]:
    """A started ChatCompletionsServer on 127.0.0.1, closed after the test."""
    with ChatCompletionsServer() as server:
        yield server
