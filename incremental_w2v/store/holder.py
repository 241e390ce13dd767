"""Who holds a store's lock or lease: this process's host, pid and command.

``INCW2V_HOST`` names the host instead of ``socket.gethostname()``: containers
and CI runners often share or randomise host names, and the lease of an
object store says which host holds it.
"""

from __future__ import annotations

import os
import socket
import time
from datetime import datetime, timezone
from typing import Any

HOST_ENV = "INCW2V_HOST"


def host_name() -> str:
    return os.environ.get(HOST_ENV) or socket.gethostname()


def holder_info(command: str) -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "host": host_name(),
        "command": command,
        "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "acquired_monotonic": time.monotonic(),
    }


def alive_here(info: dict[str, Any]) -> bool:
    """False if ``info`` names a process of this host that no longer exists."""
    pid = info.get("pid")
    if info.get("host") != host_name() or not isinstance(pid, int):
        return True  # cannot tell; trust it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def describe(info: dict[str, Any]) -> str:
    return (f"pid {info.get('pid')} on host {info.get('host')} "
            f"({info.get('command')}, since {info.get('since')})")
