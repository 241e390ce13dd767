"""Fault-injection driver: runs ``incw2v`` commands in forked children and breaks them.

Started once per test module as a real subprocess (``python tests/fault_driver.py``),
it imports gensim and incremental_w2v once, then serves JSON requests on stdin,
one per line, answering one JSON line each on stdout. Each command runs in a
*forked* child (a real process with its own pid, locks and signals), so a
crash sweep of hundreds of runs does not pay gensim's import time each time.

In the child, ``sys.addaudithook`` counts every write operation (open for
writing, rename/replace, remove/unlink, mkdir, rmdir, rmtree, chmod, truncate,
symlink, link) and a wrapper counts ``os.fsync`` (which has no audit event).
A fault can be planted at the N-th write operation:

- ``kill-before``: SIGKILL before the operation happens;
- ``kill-after``: perform the operation, then SIGKILL (an ``open`` for writing
  leaves the file created/truncated but empty: the torn state);
- ``enospc`` / ``eio``: make the operation fail with that errno.

For a store on S3 the write points are the *requests that write* (PutObject,
DeleteObject(s), CopyObject and the multipart calls), seen through botocore's
event system (``before-parameter-build`` and ``after-call`` on every client
the child creates). A fault ``{"s3": true, "at": N, "kind": K, "key": SUB}``
is planted at the N-th of them (counting only keys containing SUB, if given):
``kill-before`` (before the request is sent), ``kill-after`` (once its reply
is in), or ``stop-before`` (the child SIGSTOPs itself, for lease tests). The
lease's renewals are not numbered: they come from a thread at times that
differ from run to run (the lease tests cover them).

Deliberately broken variants of the store (``naive-manifest``, ``in-place``,
and on S3 ``unconditional-writes``, ``unconditional-manifest``, ``no-renewal``) can be patched
in, to prove the checks catch real bugs. They live here, in the tests, never
in the package.

Requests (all keys optional unless said):
  {"op": "start", "argvs": [[...], ...], "out": PATH, "fault": {...},
   "variant": NAME, "cwd": PATH, "env": {...}, "kill_after_seconds": S}  -> {"pid": N}
  {"op": "wait", "pid": N, "timeout": S}                    -> {"status": CODE or -SIGNAL}
  {"op": "run", ...same as start...}                        -> start + wait
  {"op": "kill", "pid": N}                                  -> {}
The child writes ``OUT.json`` ({"codes": [...], "writes": [[kind, path], ...],
"s3_writes": [[operation, key], ...]})
when it finishes, and its stdout/stderr to ``OUT.stdout`` / ``OUT.stderr``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

# One BLAS thread: forking a process whose BLAS pool is running can hang the child.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import importlib  # noqa: E402
import pkgutil  # noqa: E402

import boto3  # noqa: E402,F401  (preloaded for the children, as gensim is)
import gensim.models  # noqa: E402  (preloaded for the children)
import gensim.models.word2vec_corpusfile  # noqa: E402,F401

import incremental_w2v  # noqa: E402
from incremental_w2v.cli import main as cli  # noqa: E402
from incremental_w2v.store import local, store  # noqa: E402

# Every module of the package, imported once here instead of in each child.
for _mod in pkgutil.walk_packages(incremental_w2v.__path__, "incremental_w2v."):
    if not _mod.name.endswith("__main__"):
        importlib.import_module(_mod.name)

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_PATH_EVENTS = {
    "os.rename": "rename",  # also raised by os.replace
    "os.remove": "remove",  # also raised by os.unlink
    "os.mkdir": "mkdir",
    "os.rmdir": "rmdir",
    "shutil.rmtree": "rmtree",
    "os.chmod": "chmod",
    "os.truncate": "truncate",
    "os.symlink": "symlink",
    "os.link": "link",
}
_IGNORED_PREFIXES = ("/dev/null", "/dev/tty", "/dev/pts/", "/proc/")


def _mode_flags(mode: str) -> int:
    flags = os.O_WRONLY if "+" not in mode else os.O_RDWR
    if "w" in mode:
        flags |= os.O_CREAT | os.O_TRUNC
    elif "a" in mode:
        flags |= os.O_CREAT | os.O_APPEND
    elif "x" in mode:
        flags |= os.O_CREAT | os.O_EXCL
    return flags


class Injector:
    """Counts write operations in this process and plants the fault."""

    def __init__(self, fault: dict[str, Any] | None) -> None:
        self.fault = fault or {}
        self.at = int(self.fault.get("at", 0))
        self.kind = self.fault.get("kind", "")
        self.writes: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.local = threading.local()

    # -- classification ----------------------------------------------------

    def classify(self, event: str, args: tuple[Any, ...]) -> tuple[str, str] | None:
        if event == "open":
            path, mode, flags = args
            if isinstance(path, int) or path is None:
                return None
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & _WRITE_FLAGS
            )
            return ("open", os.fsdecode(path)) if writing else None
        kind = _PATH_EVENTS.get(event)
        if kind is None:
            return None
        target = args[0]
        return kind, target if isinstance(target, int) else os.fsdecode(target)

    # -- the hook ----------------------------------------------------------

    def hook(self, event: str, args: tuple[Any, ...]) -> None:
        if getattr(self.local, "busy", False):
            return
        op = self.classify(event, args)
        if op is None or (isinstance(op[1], str) and op[1].startswith(_IGNORED_PREFIXES)):
            return
        self.local.busy = True
        try:
            self.step(op, lambda: self.perform(event, args))
        finally:
            self.local.busy = False

    def fsync(self, fd: int) -> None:
        if getattr(self.local, "busy", False):
            return _real_fsync(fd)
        self.local.busy = True
        try:
            self.step(("fsync", _fd_path(fd)), lambda: _real_fsync(fd))
        finally:
            self.local.busy = False
        return _real_fsync(fd)

    def step(self, op: tuple[str, str], perform: Any) -> None:
        with self.lock:
            self.writes.append(op)
            n = len(self.writes)
        if n != self.at:
            return
        if self.kind == "kill-before":
            _die()
        elif self.kind == "kill-after":
            with contextlib.suppress(OSError):  # e.g. O_EXCL on a file that exists
                perform()
            _die()
        elif self.kind in ("enospc", "eio") and op[0] != "rmtree":
            # (rmtree's own event is not an I/O call; its unlinks and rmdirs are.)
            code = errno.ENOSPC if self.kind == "enospc" else errno.EIO
            raise OSError(code, os.strerror(code), op[1])

    @staticmethod
    def perform(event: str, args: tuple[Any, ...]) -> None:
        """Do what the audited call was about to do (for ``kill-after``)."""
        if event == "open":
            path, mode, flags = args
            if isinstance(mode, str):
                flags = _mode_flags(mode)
            os.close(os.open(path, flags, 0o666))
        elif event == "os.rename":
            src, dst, src_fd, dst_fd = args
            os.rename(src, dst, src_dir_fd=_fd(src_fd), dst_dir_fd=_fd(dst_fd))
        elif event == "os.remove":
            path, dir_fd = args
            os.remove(path, dir_fd=_fd(dir_fd))
        elif event == "os.mkdir":
            path, mode, dir_fd = args
            os.mkdir(path, mode, dir_fd=_fd(dir_fd))
        elif event == "os.rmdir":
            path, dir_fd = args
            os.rmdir(path, dir_fd=_fd(dir_fd))
        elif event == "shutil.rmtree":
            import shutil

            shutil.rmtree(args[0], ignore_errors=True)


def _fd(value: Any) -> int | None:
    return None if value is None or value == -1 else int(value)


def _fd_path(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return f"fd:{fd}"


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(60)  # not reached


_real_fsync = os.fsync


S3_WRITES = {"PutObject", "DeleteObject", "DeleteObjects", "CopyObject",
             "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload",
             "AbortMultipartUpload"}


class S3Injector:
    """Numbers the child's S3 requests that write, and plants an S3 fault."""

    def __init__(self, fault: dict[str, Any] | None) -> None:
        fault = fault or {}
        self.active = bool(fault.get("s3"))
        self.at = int(fault.get("at", 0)) if self.active else 0
        self.kind = fault.get("kind", "")
        self.key = fault.get("key", "")
        self.writes: list[tuple[str, str]] = []
        self.lease_tokens: set[str] = set()
        self.lock = threading.Lock()

    def install(self) -> None:
        import botocore.session

        original = botocore.session.Session.create_client
        injector = self

        def create_client(session: Any, *args: Any, **kw: Any) -> Any:
            client = original(session, *args, **kw)
            client.meta.events.register("before-parameter-build.s3", injector.before)
            client.meta.events.register("after-call.s3", injector.after)
            return client

        botocore.session.Session.create_client = create_client  # type: ignore[method-assign]

    def _renewal(self, operation: str, key: str, params: dict[str, Any]) -> bool:
        if operation != "PutObject" or not key.endswith("lease.json"):
            return False
        body = params.get("Body")
        try:
            lease = json.loads(body) if isinstance(body, (bytes, str)) else {}
        except ValueError:
            return False
        token = lease.get("token")
        if lease.get("state") != "held" or not token:
            return False
        renewal = token in self.lease_tokens
        self.lease_tokens.add(token)
        return renewal

    def before(self, params: dict[str, Any], model: Any, context: dict[str, Any],
               **_: Any) -> None:
        operation = model.name
        if operation not in S3_WRITES or threading.current_thread().name == "incw2v-lease":
            return
        key = str(params.get("Key") or "")
        if not key and operation == "DeleteObjects":
            objects = params.get("Delete", {}).get("Objects", [])
            key = objects[0]["Key"] if objects else ""
        with self.lock:
            if self._renewal(operation, key, params):
                return
            if self.key and self.key not in key:
                return
            self.writes.append((f"s3:{operation}", key))
            n = len(self.writes)
        context["incw2v_write"] = n
        if n == self.at:
            if self.kind == "kill-before":
                _die()
            elif self.kind == "stop-before":
                os.kill(os.getpid(), signal.SIGSTOP)

    def after(self, context: dict[str, Any], **_: Any) -> None:
        if self.at and context.get("incw2v_write") == self.at and self.kind == "kill-after":
            _die()


# -- deliberately broken variants (for the test that the harness can fail) --------------


def _naive_write_manifest(self: local.LocalBackend, data: bytes, upload: Any = None) -> None:
    # Truncate-and-write in place: a crash between the two leaves an empty manifest.
    with open(self.root / store.MANIFEST, "wb") as handle:
        handle.write(data)


def _in_place_save_model(self: store.Staging, model: Any) -> None:
    # Save over the current version's own files, as a hand-written script does.
    root = self.path.parent
    manifest = store.Store(root).read_manifest()
    if manifest.current is None:
        store.save_model(model, self.path / store.MODEL)
        return
    current = root / store.VERSIONS / manifest.current
    store.save_model(model, current / store.MODEL)
    for path in current.glob(f"{store.MODEL}*"):
        os.link(path, self.path / path.name)


def _unconditional(only: str | None) -> None:
    """S3 writes without If-None-Match / If-Match (for every object, or only ``only``)."""
    from incremental_w2v.store import bucket

    original = bucket.Bucket.put

    def put(self: Any, name: str, body: bytes, if_none_match: bool = False,
            if_match: str | None = None, **kw: Any) -> str:
        if only is None or name == only:
            if_none_match, if_match = False, None
        return original(self, name, body, if_none_match, if_match, **kw)

    bucket.Bucket.put = put  # type: ignore[method-assign]


def _no_renewal() -> None:
    """The lease is never renewed while the run works (only its commit's checks renew it)."""
    from incremental_w2v.store import lease

    lease.Lease.start_renewing = lambda self: None  # type: ignore[method-assign]


def _small_parts() -> None:
    """Files over 32 KiB go up as multipart uploads (as files over 256 MiB do)."""
    from incremental_w2v.store import bucket

    bucket.MULTIPART_BYTES = 32 << 10


VARIANTS = {
    "small-parts": _small_parts,
    "naive-manifest": lambda: setattr(local.LocalBackend, "write_manifest_bytes",
                                      _naive_write_manifest),
    "in-place": lambda: setattr(store.Staging, "save_model", _in_place_save_model),
    "unconditional-writes": lambda: _unconditional(None),
    "unconditional-manifest": lambda: _unconditional(store.MANIFEST),
    "no-renewal": _no_renewal,
}


# -- the child ---------------------------------------------------------------------------


def child(request: dict[str, Any]) -> None:
    out = Path(request["out"])
    code = 70
    fault = request.get("fault") or {}
    injector = Injector(None if fault.get("s3") else fault)
    s3 = S3Injector(fault)
    try:
        with open(f"{out}.stdout", "wb") as so, open(f"{out}.stderr", "wb") as se:
            os.dup2(so.fileno(), 1)
            os.dup2(se.fileno(), 2)
        if request.get("cwd"):
            os.chdir(request["cwd"])
        os.environ.update(request.get("env") or {})
        s3.install()
        if request.get("variant"):
            VARIANTS[request["variant"]]()
        sys.addaudithook(injector.hook)
        os.fsync = injector.fsync
        codes = []
        for argv in request["argvs"]:
            codes.append(cli.main(argv))
            if codes[-1] != 0:
                break
        code = codes[-1] if codes else 0
        sys.stdout.flush()
        sys.stderr.flush()
        injector.local.busy = True  # the report itself is not a write of the run
        report = {"codes": codes, "writes": injector.writes, "s3_writes": s3.writes}
        tmp = f"{out}.json.tmp"
        with open(tmp, "w") as handle:
            json.dump(report, handle)
        os.replace(tmp, f"{out}.json")
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
    finally:
        os._exit(code)


def wait(pid: int, timeout: float | None = None, kill_after: float | None = None) -> int:
    started = time.monotonic()
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        elapsed = time.monotonic() - started
        if kill_after is not None and elapsed >= kill_after:
            os.kill(pid, signal.SIGKILL)
            kill_after = None
        if timeout is not None and elapsed >= timeout:
            os.kill(pid, signal.SIGKILL)
            timeout = None
        time.sleep(0.002)


def serve() -> None:
    children: dict[int, float | None] = {}
    for line in sys.stdin:
        request = json.loads(line)
        op = request["op"]
        reply: dict[str, Any] = {}
        if op in ("start", "run"):
            sys.stdout.flush()
            pid = os.fork()
            if pid == 0:
                child(request)
            children[pid] = request.get("kill_after_seconds")
            reply["pid"] = pid
            if op == "run":
                reply["status"] = wait(pid, request.get("timeout", 300), children.pop(pid))
        elif op == "wait":
            pid = request["pid"]
            reply["status"] = wait(pid, request.get("timeout", 300), children.pop(pid, None))
        elif op == "kill":
            os.kill(request["pid"], signal.SIGKILL)
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    serve()
