"""Progress bars (tqdm), quiet when not attached to a terminal unless forced."""

from __future__ import annotations

from tqdm.auto import tqdm


def progress_bar(*, total: int, desc: str, disable: bool = False):
    """A tqdm bar that writes to stderr and leaves a final line."""
    return tqdm(total=total, desc=desc, disable=disable, leave=True, dynamic_ncols=True, mininterval=0.5)
