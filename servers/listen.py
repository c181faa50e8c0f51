"""The serving socket, bound before an environment starts: a bad host or port is one line, and nothing ran.

Apart from the MCP server so that the command line can name these errors without importing `mcp`.
"""
from __future__ import annotations

import errno
import socket

__all__ = ["ServeError", "listen"]


class ServeError(Exception):
    """The server cannot listen (port in use, bad host or port), as one line."""


def listen(host: str, port: int) -> socket.socket:
    """A bound, listening TCP socket, or ServeError naming what is wrong with host or port."""
    if not 0 <= port <= 65535:
        raise ServeError(f"port {port} is out of range (0-65535; 0 picks a free port)")
    try:
        return socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
    except socket.gaierror as exc:
        raise ServeError(f"host '{host}' cannot be resolved ({exc.strerror}); use an address such as 127.0.0.1") from None
    except OSError as exc:
        why = {errno.EADDRINUSE: f"port {port} on {host} is already in use; pick another --port (0 picks a free one)",
               errno.EADDRNOTAVAIL: f"host {host} is not an address of this machine; use 127.0.0.1",
               errno.EACCES: f"no permission to listen on port {port} (ports below 1024 need privileges)"}
        raise ServeError(why.get(exc.errno, f"cannot listen on {host}:{port} ({exc.strerror or exc})")) from None
    except (OverflowError, ValueError, UnicodeError) as exc:
        raise ServeError(f"cannot listen on {host}:{port} ({exc})") from None
