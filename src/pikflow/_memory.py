"""The memory available to a run (used by the resource guards before large allocations)."""

from __future__ import annotations

import os


def available_memory() -> int:
    """Bytes of memory available: ``MemAvailable`` of /proc/meminfo, else the free physical pages, else 16 GiB."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 16 * 2**30
