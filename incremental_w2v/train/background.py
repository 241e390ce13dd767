"""Work that runs in a thread while the streaming pass reads the corpus.

An update loads the current version (checking its hashes, importing gensim,
unpickling) while its pass reads, tokenises and writes the new corpus; the
two need nothing from each other until training starts. The thread is
started only once the pass has forked its tokenising workers (``start`` is
handed to the pass as its ``on_started`` callback): a process forked while
another thread holds an import or allocator lock can deadlock.

Whatever the job imports is imported by :meth:`start` on the calling thread
first (``imports``): Python's import system hands a module that another
thread is still initialising to whoever asks for it, so a reader importing
``gensim.corpora.wikicorpus`` while the thread imports ``gensim`` failed with
"cannot import name ... from partially initialized module".
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Background(Generic[T]):
    """``fn`` run in a thread from :meth:`start` on; :meth:`result` waits for it."""

    def __init__(self, fn: Callable[[], T], name: str, imports: tuple[str, ...] = ()) -> None:
        self._fn = fn
        self._imports = imports
        self._thread: threading.Thread | None = None
        self._value: T | None = None
        self._error: BaseException | None = None
        self._done = False
        self._name = name

    def start(self) -> None:
        """Start the thread; calling it again does nothing."""
        if self._done or self._thread is not None:
            return
        for module in self._imports:  # on this thread, before the job's thread exists
            importlib.import_module(module)
        # A daemon, so that Ctrl-C during the pass does not wait for a large model to load.
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._fn()
        except BaseException as exc:  # handed to result(), in the caller's thread
            self._error = exc

    def wait(self) -> None:
        """Let a started job finish (its result and error are kept for :meth:`result`)."""
        if self._thread is not None:
            self._thread.join()

    def result(self) -> T:
        """The value, computing it here if the job was never started; re-raises its error."""
        if not self._done:
            if self._thread is None:
                self._run()
            else:
                self._thread.join()
            self._done = True
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]
