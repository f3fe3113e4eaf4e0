"""The notifier: a thread with its own event loop that drains the outbox by SMTP.

It runs the same under WSGI and ASGI, and in every worker process: the outbox hands each entry to
one process at a time (an atomic claim with a lease), so a mail is sent once. The first detection is
mailed at once, later ones within ``notify_digest_window`` wait and go together in one digest. Mail
goes only to ``notify_to`` once it is verified; until then entries wait, nothing is dropped. SMTP
failures are retried with capped exponential backoff; a process killed mid-send leaves a claim that
expires, and another (or the restarted) process sends the mail.

Usage::

    notifier = Notifier(config, store)
    notifier.start()          # returns at once; logs a warning when no verified address is set
    ...
    notifier.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import uuid

from safemedia.config import Config
from safemedia.notify import messages
from safemedia.notify.smtp import SendError, send
from safemedia.store import Claim, Store, StoreError

logger = logging.getLogger("safemedia.notify")


def unverified_warning(config: Config) -> str:
    """What the operator must run before alerts can be mailed."""
    if not config.notify_to:
        return (
            "safemedia: no notify_to address is set, so detection alerts wait in the outbox; "
            "set notify_to, then run `safemedia email verify ADDRESS` and "
            "`safemedia email confirm CODE`"
        )
    return (
        f"safemedia: detection alerts wait in the outbox until {config.notify_to} is verified; "
        f"run `safemedia email verify {config.notify_to}` and then "
        "`safemedia email confirm CODE` with the code it mails "
        "(on a Django site: `python manage.py safemedia email ...`)"
    )


class Notifier:
    """Drains the store's outbox on its own thread and asyncio event loop."""

    def __init__(self, config: Config, store: Store, *, poll_interval: float = 1.0) -> None:
        self.config = config
        self.store = store
        self.poll_interval = poll_interval
        self.lease = 2 * config.smtp.timeout + 5.0
        self._owner = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stopping = threading.Event()
        self._started = threading.Event()
        self._warned = False

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the thread (idempotent) and hook the store's enqueue to wake it."""
        if self._thread is not None and self._thread.is_alive():
            return
        try:
            verified = self.store.is_verified(self.config.notify_to)
        except StoreError:
            logger.exception("safemedia: the notifier cannot read the store")
            verified = False
        if not verified:
            logger.warning(unverified_warning(self.config))
            self._warned = True
        self._stopping.clear()
        self._started.clear()
        self._thread = threading.Thread(target=self._run, name="safemedia-notifier", daemon=True)
        self._thread.start()
        self._started.wait(5.0)
        self.store.on_enqueue = self.wake

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to finish its current step and wait for it."""
        self._stopping.set()
        self.wake()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self.store.on_enqueue == self.wake:
            self.store.on_enqueue = None

    def wake(self) -> None:
        """Look at the outbox now (thread-safe; called after a detection is committed)."""
        loop, event = self._loop, self._wake
        if loop is not None and event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                loop.call_soon_threadsafe(event.set)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._started.set()
        try:
            while not self._stopping.is_set():
                delay = await self.step()
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=delay)
        finally:
            self._loop = None

    # -- one pass ----------------------------------------------------------------------------

    async def step(self) -> float:
        """Send what is due (at most one mail); returns how long to sleep before the next look."""
        to = self.config.notify_to
        try:
            if not self.store.is_verified(to):
                return self.poll_interval
            if self._warned:
                logger.warning("safemedia: %s is now verified; sending waiting alerts", to)
                self._warned = False
            claim = self.store.outbox.claim(
                owner=self._owner, window=self.config.notify_digest_window, lease=self.lease
            )
        except StoreError:
            logger.exception("safemedia: the notifier cannot read the outbox")
            return max(self.poll_interval, 5.0)
        if claim is None:
            return self.poll_interval
        if isinstance(claim, float):
            return min(max(claim, 0.01), self.poll_interval)
        assert to is not None
        await self._send(claim, to)
        return 0.0

    async def _send(self, claim: Claim, to: str) -> None:
        smtp = self.config.smtp
        message = messages.alert(claim.detections, sender=smtp.sender, to=to, digest=claim.digest)
        try:
            await send(message, smtp, to=to)
        except SendError as exc:
            try:
                delay = self.store.outbox.mark_failed(
                    claim.ids,
                    owner=self._owner,
                    error=str(exc),
                    initial=self.config.notify_retry_initial,
                    cap=self.config.notify_retry_max,
                )
            except StoreError:
                logger.exception("safemedia: cannot release failed notifications")
                return
            logger.warning(
                "safemedia: cannot mail %d alert(s) to %s (%s); retrying in %.1f s",
                len(claim.ids),
                to,
                exc,
                delay,
            )
            return
        try:
            self.store.outbox.mark_sent(claim.ids, owner=self._owner, to=to)
        except StoreError:
            logger.exception("safemedia: alert mailed but not marked sent (may be sent again)")
            return
        logger.info("safemedia: mailed %d alert(s) to %s", len(claim.ids), to)
