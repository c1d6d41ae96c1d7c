"""A delay line between two TUN devices: ``tc netem delay`` for kernels built without netem.

    python benchmarks/delayline.py --netns rdpt-bench-lab --delay-ms 25 rdptb0 rdptb1

Creates TUN device HOST_TUN in this network namespace and LAB_TUN in NETNS (Linux, root),
prints ``ready`` and then forwards every IP packet from one to the other after
``--delay-ms``, in both directions, in the order it came (a constant delay keeps the
order, as netem's does). With 25 ms each way every exchange pays a 50 ms round trip, the
SYN and each TLS flight included. The devices go away when the process ends (SIGTERM or
SIGINT). benchmarks/netem.py uses it when ``tc qdisc add ... netem`` is refused.
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import os
import select
import signal
import struct
import sys
import time
from collections import deque

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
CLONE_NEWNET = 0x40000000


def open_tun(name: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def enter(namespace_fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(namespace_fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns")


def forward(a: int, b: int, delay: float) -> None:
    """Forever: what *a* gives goes to *b* after *delay* seconds, and the other way."""
    due: dict[int, deque[tuple[float, bytes]]] = {a: deque(), b: deque()}
    other = {a: b, b: a}
    poller = select.epoll()
    poller.register(a, select.EPOLLIN)
    poller.register(b, select.EPOLLIN)
    while True:
        now = time.monotonic()
        for out, queue in due.items():
            while queue and queue[0][0] <= now:
                packet = queue.popleft()[1]
                try:
                    os.write(out, packet)
                except OSError:
                    pass  # a full device queue drops the packet, as a link would
        pending = [q[0][0] for q in due.values() if q]
        timeout = max(0.0, min(pending) - time.monotonic()) if pending else -1
        for fd, _ in poller.poll(timeout):
            arrived = time.monotonic() + delay
            queue = due[other[fd]]
            while True:
                try:
                    queue.append((arrived, os.read(fd, 65535)))
                except BlockingIOError:
                    break


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("host_tun")
    parser.add_argument("lab_tun")
    parser.add_argument("--netns", required=True, help="the namespace LAB_TUN is made in")
    parser.add_argument("--delay-ms", type=float, default=25.0, help="one way")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    here = os.open("/proc/self/ns/net", os.O_RDONLY)
    there = os.open(f"/run/netns/{args.netns}", os.O_RDONLY)
    host = open_tun(args.host_tun)
    enter(there)
    lab = open_tun(args.lab_tun)
    enter(here)
    print("ready", flush=True)
    try:
        forward(host, lab, args.delay_ms / 1000)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
