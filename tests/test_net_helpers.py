"""The /proc reader the loopback-only Ray test relies on: it must see a socket on every interface."""

from __future__ import annotations

import os
import socket

from net_helpers import is_loopback, listening, process_tree


def test_listening_sockets_are_read_with_their_addresses():
    with socket.socket() as anywhere, socket.socket(socket.AF_INET6) as anywhere6, socket.socket() as local:
        for s, host in ((anywhere, "0.0.0.0"), (anywhere6, "::"), (local, "127.0.0.1")):
            s.bind((host, 0))
            s.listen()
        found = {(ip, port) for _, ip, port in listening(process_tree(os.getpid()))}
        assert ("0.0.0.0", anywhere.getsockname()[1]) in found
        assert ("::", anywhere6.getsockname()[1]) in found
        assert ("127.0.0.1", local.getsockname()[1]) in found
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and is_loopback("127.0.0.1")
