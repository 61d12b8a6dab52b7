"""Resident memory of a server process, and its peak while a benchmark phase runs."""

from __future__ import annotations

import threading
import time


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class RssSampler:
    """Samples a process's RSS every few milliseconds in a thread; ``start`` is the RSS when
    the phase began and ``peak`` the highest seen, both in bytes."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.start = self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes(self.pid))
            time.sleep(0.005)

    @property
    def growth(self) -> int:
        return self.peak - self.start

    def __enter__(self) -> RssSampler:
        self.start = self.peak = rss_bytes(self.pid)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
