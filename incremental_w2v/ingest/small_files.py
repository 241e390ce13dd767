"""Small files a user names (evaluation sets, anchor lists), read whole but within bounds.

An evaluation set or an anchor list is read into memory at once, so it must
be a regular file of sensible size: ``/dev/zero`` would grow without end, and
a named pipe with no writer would block the run with the store's lock held.
The file is opened without blocking and checked on the opened descriptor
(no race with a swap after a ``stat``), then read up to a byte and a line cap.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from incremental_w2v.errors import DataError, InputMissingError, StoreIOError
from incremental_w2v.uris import printable

# The largest sets in use are far below these (questions-words.txt: 0.6 MB, 19,544 lines;
# MUSE's bilingual dictionaries: about 2 MB, 100,000 pairs).
MAX_BYTES = 64 << 20
MAX_LINES = 2_000_000


def read_lines(path: Path, what: str, hint: str, max_bytes: int = MAX_BYTES,
               max_lines: int = MAX_LINES) -> list[str]:
    """The lines of the UTF-8 text file ``path`` (``what`` names it in errors).

    Raises InputMissingError when it does not exist, DataError when it is not a
    regular file, is larger than ``max_bytes`` or ``max_lines``, or not UTF-8.
    """
    shown = printable(str(path))
    not_regular = DataError(
        f"{what} {shown} is not a regular file (a pipe, a device or a socket): it cannot be "
        "read whole within bounds", hint="copy its content to a file and name that file")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise InputMissingError(f"{what} {shown} does not exist", hint=hint) from None
    except IsADirectoryError:
        raise DataError(f"{what} {shown} is a folder, not a file", hint=hint) from None
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a socket, or a pipe end that cannot be opened so
            raise not_regular from None
        raise StoreIOError(f"cannot open {what} {shown}: {exc.strerror}", hint=hint) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise DataError(f"{what} {shown} is a folder, not a file", hint=hint)
        if not stat.S_ISREG(info.st_mode):
            raise not_regular
        if info.st_size > max_bytes:
            raise DataError(f"{what} {shown} is {info.st_size} bytes; at most {max_bytes} are "
                            "read", hint="an evaluation or anchor file is small: check the path")
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read(max_bytes + 1)  # it may have grown since
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise DataError(f"{what} {shown} is larger than {max_bytes} bytes",
                        hint="an evaluation or anchor file is small: check the path")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1)
        raise DataError(f"{what} {shown}:{line}: not valid UTF-8 (byte {column} of the line)",
                        hint="save it as UTF-8") from None
    lines = text.splitlines()
    if len(lines) > max_lines:
        raise DataError(f"{what} {shown} has {len(lines)} lines; at most {max_lines} are read",
                        hint="an evaluation or anchor file is small: check the path")
    return lines
