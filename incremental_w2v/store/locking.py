"""One writer at a time per store, and :func:`locked`: open, lock and sweep in one step.

A local store's lock is an OS file lock, so it dies with its holder: a
SIGKILLed run never blocks the next one; beside it, ``.lock.info`` names the
holder. An object store's lock is a lease object with an expiry, renewed
while its holder works (``store.lease``). Either way the lock is taken
before anything is swept or written, and only in a store that was
recognised as one (``Store.recognise``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from incremental_w2v.store.location import backend_for, check_publish_places
from incremental_w2v.store.store import Store

if TYPE_CHECKING:
    from incremental_w2v.config.schema import Config


@contextmanager
def locked(where: Config | Path, command: str, wait: float = 0.0, create: bool = False,
           repairing: bool = False) -> Iterator[Store]:
    """The store of ``where`` (a config, or a local folder), locked, leftovers swept.

    ``store.swept`` lists what the sweep removed. ``create``: make the store if
    there is none (only ``add-corpus`` creates one). ``repairing``: a store whose
    manifest is missing or damaged is opened, and nothing is swept.
    """
    if not isinstance(where, Path):
        check_publish_places(where)  # before anything is trained, read or written
    store = Store.open(backend_for(where), create=create, repairing=repairing)
    with store.backend.lock(command, wait):
        if not repairing:
            store.recognise()  # again, now that nobody else can change it meanwhile
            store.complete()
            store.swept = store.sweep()
        yield store
