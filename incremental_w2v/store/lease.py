"""The lock of a store on S3: a lease object, taken and kept with conditional writes.

``lease.json`` says who holds the store (host, pid, command), until when
(its Last-Modified plus ``ttl_seconds``, on the *server's* clock, so hosts'
clocks do not matter), and its fencing number (one more at every
acquisition). It is created with ``If-None-Match: *`` and from then on only
replaced with ``If-Match`` on the ETag that was read, so of two hosts that
race for it exactly one wins:

- **acquire**: a released lease is taken (``If-Match``); a held one makes the
  run wait (``--wait``) or fail with 75, naming the holder;
- **renew**: the holder rewrites it every third of ``ttl_seconds`` from a
  thread, and before each write of a commit it makes sure it still holds it
  (its own deadline is measured from the moment it *sent* the last renewal,
  which is never later than the server's);
- **break**: a lease whose holder stopped renewing is taken over once it
  expired (at once if its holder was a process of this host that is gone).
  The breaker first records the break in the manifest (a conditional write:
  from that moment the old holder's commit, conditional on the manifest it
  read, can only fail), then replaces the lease;
- **release**: the holder marks it released (``If-Match``: a lease taken over
  in the meantime is left alone).
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from incremental_w2v.errors import IncW2VError, LockedError
from incremental_w2v.store.bucket import Bucket, Obj, PreconditionFailed
from incremental_w2v.store.holder import alive_here, describe, holder_info

logger = logging.getLogger(__name__)

LEASE = "lease.json"
THREAD_NAME = "incw2v-lease"
POLL_SECONDS = 0.5
# Last-Modified has whole seconds: a lease counts as expired one second later.
CLOCK_SLACK = timedelta(seconds=1)
# A holder stops trusting its lease at this share of its length, measured locally.
SAFE_SHARE = 0.9


class LeaseLost(LockedError):
    """This run no longer holds the store's lease: nothing more may be written."""


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Lease:
    """The lease of one store (see the module's docstring)."""

    def __init__(self, bucket: Bucket, ttl: float, command: str,
                 on_break: Callable[[dict[str, Any], int], bool]) -> None:
        self.bucket = bucket
        self.ttl = ttl
        self.command = command
        # Records the break (in the manifest) before it happens; False: try again.
        self.on_break = on_break
        self.token = secrets.token_hex(8)
        self.etag: str | None = None
        self.fence = 0
        self.deadline = 0.0  # monotonic
        self.lost = False
        self.broke: dict[str, Any] | None = None
        self._body: dict[str, Any] = {}
        self._mutex = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- acquiring ------------------------------------------------------------------------

    def acquire(self, wait: float) -> None:
        deadline = time.monotonic() + max(wait, 0.0)
        while True:
            found = self.bucket.get(LEASE)
            if found is None:
                if self._take(None, 1, None):
                    return
                continue
            state = self._parse(found)
            if state.get("state") == "released":
                if self._take(found.etag, int(state.get("fence", 0)) + 1, None):
                    return
                continue
            why = self._breakable(found, state)
            if why is not None:
                fence = int(state.get("fence", 0)) + 1
                if not self.on_break({**state, "why": why}, fence):
                    continue
                if self._take(found.etag, fence, {**state.get("holder", {}), "why": why,
                                                  "fence": state.get("fence")}):
                    logger.warning("took over the lease of %s from %s: %s", self.bucket.location,
                                   describe(state.get("holder", {})), why)
                    return
                continue
            if time.monotonic() >= deadline:
                raise LockedError(
                    f"store {self.bucket.location} is locked by "
                    f"{describe(state.get('holder', {}))} (lease valid until "
                    f"{self._expiry(found, state):%H:%M:%S} UTC)"
                    + (f" after waiting {wait:g}s" if wait > 0 else ""),
                    hint="another incw2v run is working on this store; let it finish, or re-run "
                    "with --wait SECONDS to queue behind it (a lease whose holder died expires "
                    "by itself)",
                )
            time.sleep(min(POLL_SECONDS, max(deadline - time.monotonic(), 0.01)))

    @staticmethod
    def _parse(found: Obj) -> dict[str, Any]:
        try:
            state = json.loads(found.body)
            if isinstance(state, dict):
                return state
        except ValueError:
            pass
        return {"state": "held", "holder": {"command": "an unreadable lease"}}

    def _expiry(self, found: Obj, state: dict[str, Any]) -> datetime:
        ttl = state.get("ttl_seconds")
        seconds = float(ttl) if isinstance(ttl, (int, float)) and ttl > 0 else self.ttl
        return found.last_modified + timedelta(seconds=seconds) + CLOCK_SLACK

    def _breakable(self, found: Obj, state: dict[str, Any]) -> str | None:
        """Why the held lease ``state`` may be taken over now, or None."""
        expiry = self._expiry(found, state)
        if found.server_now > expiry:
            return (f"it expired at {expiry:%Y-%m-%d %H:%M:%S} UTC (server time "
                    f"{found.server_now:%H:%M:%S})")
        holder = state.get("holder", {})
        if isinstance(holder, dict) and holder.get("pid") and not alive_here(holder):
            return "its holder, a process of this host, no longer exists"
        return None

    def _take(self, etag: str | None, fence: int, broke: dict[str, Any] | None) -> bool:
        body = {"incw2v_lease": 1, "state": "held", "fence": fence, "token": self.token,
                "ttl_seconds": self.ttl, "holder": holder_info(self.command),
                "renewed_at": now_iso()}
        if broke is not None:
            body["broke"] = broke
        sent = time.monotonic()
        try:
            new = (self.bucket.put(LEASE, _dump(body), if_none_match=True) if etag is None
                   else self.bucket.put(LEASE, _dump(body), if_match=etag))
        except PreconditionFailed:
            adopted = self._adopt_own_write(sent)
            if not adopted:
                return False
            new = adopted
        self.etag, self.fence, self._body, self.broke = new, fence, body, broke
        self.deadline = sent + self.ttl * SAFE_SHARE
        self.lost = False
        return True

    def _adopt_own_write(self, sent: float) -> str | None:
        """After a refused write: our own, retried after a lost reply? Then its ETag."""
        found = self.bucket.get(LEASE)
        if found is not None and self._parse(found).get("token") == self.token:
            return found.etag
        return None

    # -- keeping it -----------------------------------------------------------------------

    def start_renewing(self) -> None:
        self._thread = threading.Thread(target=self._renew_loop, name=THREAD_NAME, daemon=True)
        self._thread.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                self.renew()
            except IncW2VError as exc:  # the server is unreachable: try again next time
                logger.debug("renewing the lease failed: %s", exc)
            if self.lost:
                return

    def renew(self) -> bool:
        """Extend the lease; False (and ``lost``) if another run holds it now."""
        with self._mutex:
            if self.lost or self.etag is None:
                return False
            body = {**self._body, "renewed_at": now_iso()}
            sent = time.monotonic()
            try:
                new: str | None = self.bucket.put(LEASE, _dump(body), if_match=self.etag)
            except PreconditionFailed:
                new = self._adopt_own_write(sent)
                if new is None:
                    self.lost = True
                    logger.warning("lost the lease of %s: another run took it over",
                                   self.bucket.location)
                    return False
            self.etag, self._body = new, body
            self.deadline = sent + self.ttl * SAFE_SHARE
            return True

    def check(self) -> None:
        """Raise LeaseLost unless this run surely holds the lease for a while longer."""
        if not self.lost and time.monotonic() > self.deadline - self.ttl / 2:
            try:
                self.renew()
            except IncW2VError as exc:
                if time.monotonic() > self.deadline:
                    raise LeaseLost(
                        f"this run's lease on store {self.bucket.location} expired and could "
                        f"not be renewed ({exc.message}); nothing more is written",
                        hint="check the network and the server, then re-run; committed "
                        "versions are intact",
                    ) from None
        if self.lost:
            raise LeaseLost(
                f"this run lost its lease on store {self.bucket.location}: it stopped "
                "renewing it for longer than the lease lasts (stopped, suspended or cut off), "
                "and another run took it over; nothing this run wrote became visible",
                hint="re-run; if this happens often, raise store_options.lease_seconds",
            )

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._mutex:
            if self.lost or self.etag is None:
                return
            body = {"incw2v_lease": 1, "state": "released", "fence": self.fence,
                    "released_at": now_iso(), "last_holder": self._body.get("holder")}
            try:
                self.bucket.put(LEASE, _dump(body), if_match=self.etag)
            except (PreconditionFailed, IncW2VError) as exc:
                # Taken over meanwhile, or unreachable: it expires by itself.
                logger.debug("releasing the lease: %s", exc)
            self.etag = None


def _dump(body: dict[str, Any]) -> bytes:
    return json.dumps(body, indent=1).encode()
