"""Test doubles that speak real protocols; `messages_server` is a pytest fixture to import."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.messages_server import (
    Delay,
    ErrorReply,
    MessagesServer,
    delay,
    error_reply,
    message_reply,
    rate_limited,
    server_error,
    text_reply,
    tool_use_reply,
)

__all__ = [
    "Delay",
    "ErrorReply",
    "MessagesServer",
    "delay",
    "error_reply",
    "message_reply",
    "messages_server",
    "rate_limited",
    "server_error",
    "text_reply",
    "tool_use_reply",
]


@pytest.fixture
def messages_server() -> Iterator[MessagesServer]:
    """A started MessagesServer on 127.0.0.1, closed after the test."""
    with MessagesServer() as server:
        yield server
