"""One helper that pauses Python's cyclic garbage collector, for the engine and ``fit``.

A graph of Values holds no reference cycles, so while one is built or swept the collector only
costs time: each of its passes rescans every live node. ``paused()`` turns it off for a block and
back on afterwards (only if it was on), without a collection on the way out.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["paused"]


@contextmanager
def paused(promote: bool = False) -> Iterator[None]:
    """Within this block the collector does not run (nestable; a no-op when it is off already).

    ``promote=True`` is for a block that makes many long-lived objects (a gradient graph being
    returned): on the way out they are moved to the oldest generation without a scan, so that
    the first allocation after the block does not rescan them all to find no garbage. (freeze()
    then unfreeze() moves every tracked object there; a full collection still sees them. It is
    skipped when the program has frozen objects itself, so that its freeze() is never undone.)
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            if promote and gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()
