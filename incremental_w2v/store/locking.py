"""One run at a time per store, and :func:`locked`: open, lock and sweep in one step.

The lock is an OS file lock (``filelock``), so it dies with its holder: a
SIGKILLed run never blocks the next one. Beside it, ``.lock.info`` says who
holds it, so the refusal can name the holder.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from filelock import FileLock, Timeout

from incremental_w2v.errors import LockedError
from incremental_w2v.fsutil import os_error
from incremental_w2v.store.store import Store

logger = logging.getLogger(__name__)

LOCK_NAME = ".lock"
INFO_NAME = ".lock.info"


def _alive_here(info: dict[str, object]) -> bool:
    """False if the info names a process of this host that no longer exists."""
    pid = info.get("pid")
    if info.get("host") != socket.gethostname() or not isinstance(pid, int):
        return True  # cannot tell; trust it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def holder_description(store: Path) -> str:
    # The holder writes its info just after taking the lock: until then the file is
    # missing, empty, or names a previous (dead) holder, so look again briefly.
    for _ in range(20):
        try:
            info = json.loads((store / INFO_NAME).read_text())
            if isinstance(info, dict) and _alive_here(info):
                return (
                    f"pid {info.get('pid')} on host {info.get('host')} "
                    f"({info.get('command')}, since {info.get('since')})"
                )
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    return "another process (no holder information)"


@contextmanager
def store_lock(store: Path, command: str, wait: float = 0.0) -> Iterator[None]:
    """Hold the store's lock; raise LockedError if another run holds it after ``wait`` seconds."""
    lock = FileLock(str(store / LOCK_NAME), thread_local=False)
    try:
        lock.acquire(timeout=wait if wait > 0 else 0, poll_interval=0.1)
    except Timeout:
        waited = f" after waiting {wait:g}s" if wait > 0 else ""
        raise LockedError(
            f"store {store} is locked by {holder_description(store)}{waited}",
            hint="another incw2v run is working on this store; let it finish, or re-run with "
            "--wait SECONDS to queue behind it",
        ) from None
    except OSError as exc:  # (Timeout is an OSError too: caught above)
        raise os_error(exc, f"taking the lock of store {store}") from None
    try:
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": command,
            "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "acquired_monotonic": time.monotonic(),
        }
        try:
            (store / INFO_NAME).write_text(json.dumps(info))
        except OSError as exc:  # holder info is a courtesy; the lock itself is what matters
            logger.debug("cannot write lock info: %s", exc)
        yield
    finally:
        lock.release()


@contextmanager
def locked(root: Path, command: str, wait: float = 0.0, create: bool = False) -> Iterator[Store]:
    """The store at ``root``, under its lock, with an interrupted run's leftovers swept.

    ``store.swept`` lists what the sweep removed. ``create``: make the store if
    there is none (only ``add-corpus`` creates one).
    """
    store = Store.open(root, create=create)
    with store_lock(store.root, command, wait):
        store.swept = store.sweep()
        yield store
