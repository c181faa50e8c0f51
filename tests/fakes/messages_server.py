"""A scripted local server speaking the Anthropic Messages API, so provider tests use real HTTP."""
from __future__ import annotations

import hashlib
import json
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeAlias


@dataclass(frozen=True)
class ErrorReply:
    """Answer with a non-200 status (e.g. 429 with `Retry-After: 0`, 500)."""

    status: int
    body: dict[str, Any] | str | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Delay:
    """Hold the request for `seconds` (longer than the client timeout simulates a timeout),
    then send `then`, or drop the connection without an answer when `then` is None."""

    seconds: float
    then: Reply | None = None


# A dict is a 200 JSON body; a `(status, body, headers)` tuple is shorthand for ErrorReply.
Reply: TypeAlias = "dict[str, Any] | ErrorReply | Delay | tuple[int, Any, dict[str, str]]"
Responder: TypeAlias = Callable[[dict[str, Any]], "Reply"]


def message_reply(
    content: list[dict[str, Any]],
    *,
    stop_reason: str = "end_turn",
    stop_sequence: str | None = None,
    input_tokens: int = 10,
    output_tokens: int = 5,
    model: str | None = None,
) -> dict[str, Any]:
    """A Messages API response body; `model=None` echoes the model of the request."""
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]
    return {
        "id": f"msg_{digest}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }


def text_reply(text: str, *, stop_reason: str = "end_turn", stop_sequence: str | None = None,
               input_tokens: int = 10, output_tokens: int = 5, model: str | None = None) -> dict[str, Any]:
    return message_reply([{"type": "text", "text": text}], stop_reason=stop_reason,
                         stop_sequence=stop_sequence, input_tokens=input_tokens,
                         output_tokens=output_tokens, model=model)


def tool_use_reply(name: str, input: dict[str, Any], *, id: str | None = None, text: str = "",
                   input_tokens: int = 10, output_tokens: int = 5,
                   model: str | None = None) -> dict[str, Any]:
    """One tool_use block (optionally after some text); the default id is derived from
    name and input so scripts stay deterministic."""
    if id is None:
        id = "toolu_" + hashlib.sha256(json.dumps([name, input], sort_keys=True).encode()).hexdigest()[:16]
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    content.append({"type": "tool_use", "id": id, "name": name, "input": input})
    return message_reply(content, stop_reason="tool_use", input_tokens=input_tokens,
                         output_tokens=output_tokens, model=model)


def tokens_of(value: Any) -> int:
    """A token-ish size of an answer: characters of its JSON / 4 (the estimate output caps are sized by)."""
    return max(1, len(json.dumps(value, ensure_ascii=False)) // 4)


def _cut(value: Any, keep: float) -> Any:
    """`value` with its long lists and strings cut to a fraction, as a reply stopped mid-answer looks."""
    if isinstance(value, str):
        return value[: int(len(value) * keep)]
    if isinstance(value, list):
        return [_cut(v, keep) for v in value[: max(0, int(len(value) * keep))]]
    if isinstance(value, dict):
        return {k: _cut(v, keep) for k, v in value.items()}
    return value


def sized_tool_use_reply(name: str, input: dict[str, Any], max_tokens: int, **kwargs: Any) -> dict[str, Any]:
    """A tool_use reply of realistic size: `output_tokens` is the answer's size, and an answer larger than
    the request's `max_tokens` comes back cut (shortened lists and strings) with `stop_reason: max_tokens`."""
    size = tokens_of(input)
    if size <= max_tokens:
        return tool_use_reply(name, input, output_tokens=size, **kwargs)
    cut = _cut(input, max_tokens / size)
    reply = tool_use_reply(name, cut, output_tokens=max_tokens, **kwargs)
    return reply | {"stop_reason": "max_tokens"}


def error_reply(status: int, message: str = "", *, error_type: str | None = None,
                headers: dict[str, str] | None = None) -> ErrorReply:
    """An error in the Messages API's error envelope."""
    kind = error_type or {400: "invalid_request_error", 401: "authentication_error",
                          429: "rate_limit_error", 529: "overloaded_error"}.get(status, "api_error")
    body = {"type": "error", "error": {"type": kind, "message": message or f"fake {status}"}}
    return ErrorReply(status, body, dict(headers or {}))


def rate_limited(retry_after: str | None = "0") -> ErrorReply:
    return error_reply(429, "rate limited", headers={"retry-after": retry_after} if retry_after else None)


def server_error(status: int = 500) -> ErrorReply:
    return error_reply(status, "internal error")


def delay(seconds: float, then: Reply | None = None) -> Delay:
    return Delay(seconds, then)


class MessagesServer:
    """`with MessagesServer() as srv:` serves POST /v1/messages at `srv.base_url`.

    Replies are taken from the queue filled by `push` in arrival order; when it is empty
    the `responder` (if any) answers from the request body. With neither, the server
    answers 400 so a test's missing script fails fast instead of being retried.
    A subclass serves another API by changing `path` and `error`.
    """

    path = "/v1/messages"

    def __init__(self, responder: Responder | None = None) -> None:
        self.responder = responder
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.max_in_flight = 0
        self._in_flight = 0
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def push(self, *replies: Reply) -> None:
        with self._lock:
            self._queue.extend(replies)

    @property
    def pending(self) -> int:
        """Scripted replies not consumed yet."""
        with self._lock:
            return len(self._queue)

    def start(self) -> MessagesServer:
        self._closing.clear()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False  # a request held by Delay must not block close()
        # A short poll interval keeps close() (shutdown waits for one poll) fast.
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01},
                                        name="messages-server", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()  # wakes held requests at once
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> MessagesServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- called from handler threads -----------------------------------------------------

    def _record(self, body: dict[str, Any], headers: dict[str, str]) -> Reply:
        with self._lock:
            self.requests.append(body)
            self.headers.append(headers)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            if self._queue:
                return self._queue.popleft()
        if self.responder is not None:
            return self.responder(body)
        return self.error(400, "messages_server: no scripted reply left")

    @staticmethod
    def error(status: int, message: str) -> ErrorReply:
        """An error in the API's own envelope."""
        return error_reply(status, message)

    def _answered(self) -> None:
        with self._lock:
            self._in_flight -= 1


def _handler_for(server: MessagesServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
            pass

        def do_POST(self) -> None:
            if self.path.split("?", 1)[0] != server.path:
                self._send_reply(server.error(404, self.path), {})
                return
            raw = self.rfile.read(int(self.headers.get("content-length", 0)))
            body = json.loads(raw or b"{}")
            reply = server._record(body, {k.lower(): v for k, v in self.headers.items()})
            answered = False
            try:
                while isinstance(reply, Delay):
                    server._closing.wait(reply.seconds)
                    if reply.then is None:
                        self.close_connection = True
                        return
                    reply = reply.then
                # Count the request as answered before writing, so a client that reacts to
                # this answer can never be seen overlapping it.
                server._answered()
                answered = True
                self._send_reply(reply, body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout); nothing to answer
            finally:
                if not answered:
                    server._answered()

        def _send_reply(self, reply: Reply, request: dict[str, Any]) -> None:
            if isinstance(reply, tuple):
                reply = ErrorReply(*reply)
            if isinstance(reply, ErrorReply):
                self._send_json(reply.status, reply.body, reply.headers)
                return
            body = dict(reply)
            if body.get("model") is None:
                body["model"] = request.get("model", "fake-model")
            self._send_json(200, body, {})

        def _send_json(self, status: int, body: Any, headers: dict[str, str]) -> None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()

    return Handler
