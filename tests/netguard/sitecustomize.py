"""Test-suite network guard: every Python process of the test run stays on loopback.

The test suite puts this folder on PYTHONPATH, so Python starts every process it runs
(pytest itself, the rdptrust CLI in subprocesses) with name lookups limited to loopback
names and addresses, and connections limited to 127.0.0.0/8, ::1 and local sockets.
Anything else fails at once, as if the name did not exist or nothing listened, so a test
that forgot to override an outside URL cannot send traffic off this machine.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

_getaddrinfo = socket.getaddrinfo
_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def _is_loopback(host: object) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    text = str(host).strip("[]").split("%")[0].lower()
    if text in _LOOPBACK_NAMES or text == "":
        return True
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback or address.is_unspecified


def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if not _is_loopback(host):
        raise socket.gaierror(
            socket.EAI_NONAME, f"test network guard: no name lookups outside loopback ({host!r})"
        )
    return _getaddrinfo(host, *args, **kwargs)


def _check(sock: socket.socket, address: Any) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
        raise ConnectionRefusedError(
            111, f"test network guard: no connections outside loopback ({address[0]})"
        )


def guarded_connect(self: socket.socket, address: Any) -> None:
    _check(self, address)
    _connect(self, address)


def guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _check(self, address)
    return _connect_ex(self, address)


socket.getaddrinfo = guarded_getaddrinfo
socket.socket.connect = guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = guarded_connect_ex  # type: ignore[method-assign]


def _guard_uvloop() -> None:
    """uvloop connects and resolves in C: guard its loop methods the same way."""
    try:
        import uvloop
    except ImportError:
        return
    loop_class: Any = uvloop.Loop
    create_connection = loop_class.create_connection
    getaddrinfo = loop_class.getaddrinfo
    sock_connect = loop_class.sock_connect
    create_datagram_endpoint = loop_class.create_datagram_endpoint

    def refuse(host: object) -> None:
        raise ConnectionRefusedError(
            111, f"test network guard: no connections outside loopback ({host})"
        )

    async def guarded_create_connection(
        self: Any, protocol_factory: Any, host: Any = None, port: Any = None, **kwargs: Any
    ) -> Any:
        if host is not None and not _is_loopback(host):
            refuse(host)
        return await create_connection(self, protocol_factory, host, port, **kwargs)

    async def guarded_loop_getaddrinfo(self: Any, host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _is_loopback(host):
            raise socket.gaierror(
                socket.EAI_NONAME,
                f"test network guard: no name lookups outside loopback ({host!r})",
            )
        return await getaddrinfo(self, host, *args, **kwargs)

    async def guarded_sock_connect(self: Any, sock: socket.socket, address: Any) -> Any:
        _check(sock, address)
        return await sock_connect(self, sock, address)

    async def guarded_create_datagram_endpoint(
        self: Any, protocol_factory: Any, local_addr: Any = None, remote_addr: Any = None, **kw: Any
    ) -> Any:
        if remote_addr is not None and not _is_loopback(remote_addr[0]):
            refuse(remote_addr[0])
        return await create_datagram_endpoint(self, protocol_factory, local_addr, remote_addr, **kw)

    loop_class.create_connection = guarded_create_connection
    loop_class.getaddrinfo = guarded_loop_getaddrinfo
    loop_class.sock_connect = guarded_sock_connect
    loop_class.create_datagram_endpoint = guarded_create_datagram_endpoint


_guard_uvloop()


def _force_windows_paths() -> None:
    """``RDPTRUST_FORCE_WINDOWS_PATHS=1``: the Windows-only paths (see force_windows.py)."""
    import force_windows

    if force_windows.wanted():
        force_windows.install()


_force_windows_paths()
