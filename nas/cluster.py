"""Joining a Ray cluster: check, within a bounded time, that something answers at the address.

Ray itself retries a dead address for many minutes and then fails with a traceback; ``check_address``
fails in ``timeout_s`` (``ray.connect_timeout_s``, default 30 s) with one line naming the fix.  No Ray here.
"""

from __future__ import annotations

import socket
import time

from .config import ConfigError

DEFAULT_CONNECT_TIMEOUT_S = 30.0


def host_port(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of ``host:port`` or ``ray://host:port``; ``None`` for ``auto``/``local`` (Ray resolves)."""
    text = address.strip()
    if text in ("auto", "local"):
        return None
    if "://" in text:
        scheme, text = text.split("://", 1)
        if scheme != "ray":
            raise ConfigError(f"ray.address: {address!r}: only ray:// addresses, host:port or auto are understood")
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"ray.address: {address!r} is not host:port (e.g. 10.0.0.5:6379, ray://head:10001 or "
                          "auto)")
    return host, int(port)


def check_address(address: str, timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S) -> None:
    """Raise ConfigError unless a TCP connection to ``address`` opens within ``timeout_s`` (retried)."""
    target = host_port(address)
    if target is None:
        return
    deadline = time.monotonic() + timeout_s
    error: OSError | None = None
    while True:
        left = deadline - time.monotonic()
        try:
            with socket.create_connection(target, timeout=max(0.1, min(left, 5.0))):
                return
        except OSError as err:
            error = err
        if time.monotonic() + 0.5 >= deadline:
            break
        time.sleep(0.5)
    reason = getattr(error, "strerror", None) or type(error).__name__
    raise ConfigError(f"--address {address}: no Ray cluster answered within {timeout_s:g} s ({reason}); start it "
                      "(`ray start --head`), fix the address, raise ray.connect_timeout_s, or drop --address to "
                      "run a local Ray")
