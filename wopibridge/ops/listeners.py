"""Closing a listening socket without resetting the connections waiting in its queue.

When a listening TCP socket closes, Linux resets every connection that finished its handshake
but was not accepted yet, and every handshake still under way. A client that connected a moment
before the close sees ``ECONNRESET`` on a connection it believed open, and cannot tell whether
its request was read. With workers sharing the port (``SO_REUSEPORT``), the kernel keeps
hashing new connections to a worker's socket until the very moment it closes, so a rolling
restart under load meets this every so often.

So a stopping instance first stops taking *new* handshakes on its sockets: a socket filter
drops every incoming SYN that carries no ACK (a packet filter on a listener sees the TCP header
first). Handshakes already answered still complete (their final ACK passes), and the loop keeps
accepting them for :data:`SETTLE` seconds. Only then does the socket close, with an empty
queue. A client whose SYN was dropped sends it again after its retransmission timeout (one
second): by then the socket is gone, so the SYN reaches another worker of the port, or is
refused, which a client or balancer retries elsewhere. Nothing it sent is lost.

Where the filter cannot be attached (not Linux, not TCP), the socket simply closes, as before.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import socket
import struct
from collections.abc import Iterable

from aiohttp import web

log = logging.getLogger("wopibridge.server")

#: How long the accept loop keeps taking the handshakes answered before the filter went on:
#: several round trips to a client in the same data centre (a balancer, a proxy: well under a
#: millisecond), and short, as every SYN that comes meanwhile waits for its retransmission (a
#: second). A handshake slower than this is reset at the close, as without the filter.
SETTLE = 0.005

SO_ATTACH_FILTER = getattr(socket, "SO_ATTACH_FILTER", 26)

#: Classic BPF: load the TCP flags byte; a SYN (0x02) is dropped (return 0), anything else
#: (the ACK that completes an answered handshake) is kept (return all of it).
_DROP_NEW_SYN = (
    (0x30, 0, 0, 13),  # ldb [13]       the flags byte of the TCP header
    (0x45, 1, 0, 0x02),  # jset #0x02   SYN set: jump to the drop
    (0x06, 0, 0, 0xFFFFFFFF),  # ret #-1
    (0x06, 0, 0, 0),  # ret #0
)


def refuse_new_handshakes(sock: socket.socket) -> bool:
    """Attach the SYN-dropping filter to the listening ``sock``; ``False`` where it cannot be."""
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.type != socket.SOCK_STREAM:
        return False
    code = b"".join(struct.pack("HBBI", *insn) for insn in _DROP_NEW_SYN)
    buffer = ctypes.create_string_buffer(code, len(code))
    program = struct.pack("HP", len(_DROP_NEW_SYN), ctypes.addressof(buffer))
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, program)
    except OSError as exc:
        log.debug("the listener closes without a handshake filter: %s", exc)
        return False
    return True


def _listening_sockets(site: web.BaseSite) -> list[socket.socket]:
    # aiohttp keeps the asyncio server of a site in ``_server`` (its runner's ``addresses``
    # reads it the same way); asyncio's ``Server.sockets`` is public.
    server = getattr(site, "_server", None)
    sockets: Iterable[socket.socket] = getattr(server, "sockets", None) or ()
    return list(sockets)


async def stop_sites_quietly(sites: Iterable[web.BaseSite], settle: float = SETTLE) -> None:
    """Stop ``sites`` as the module says: no new handshakes, the queue accepted, then closed."""
    sites = list(sites)
    filtered = [refuse_new_handshakes(s) for site in sites for s in _listening_sockets(site)]
    if any(filtered):
        await asyncio.sleep(settle)
    for site in sites:
        await site.stop()
