"""The one object every adapter shares: config, engine, recorder, scan pool and hooks.

Usage (an adapter)::

    runtime = Runtime(config)            # or Runtime() -> Config.load()
    if runtime.stand_in("GET", path, headers) is None:  # else planned only if the response is held
        rq = runtime.plan_request("GET", host, path, query, headers, client=addr)
    ...                                  # see safemedia.http for the whole flow
    reply = runtime.conclude(rq, rp, status, headers, body)      # blocking, never raises
    reply = await runtime.run_blocking(runtime.conclude, rq, rp, status, headers, body)  # async

:meth:`Runtime.conclude` scans the body with the engine, records a detection for every block and
every uninspectable response durably (the recorder) *before* returning the block reply, then
runs the after-commit hooks (``on_detection``, the notifier) on a separate thread so they never
delay or break the response.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from time import monotonic
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from safemedia import http
from safemedia.config import Config, ConfigError
from safemedia.events import Detection, DetectionRecorder, LoggingRecorder, url_key, url_paths
from safemedia.http import Headers, Reply, RequestPlan, ResponsePlan
from safemedia.lookups import store_set
from safemedia.verdict import Reason, Verdict

if TYPE_CHECKING:
    from safemedia.notify import Notifier

__all__ = [
    "LOOP_DIGEST_BYTES",
    "HeldBody",
    "Runtime",
    "Scanner",
    "load_hook",
]

logger = logging.getLogger("safemedia")

T = TypeVar("T")
_VALIDATORS = http.REQUEST_VALIDATORS
_STAND_IN_GET, _STAND_IN_HEAD = http.unplanned("GET"), http.unplanned("HEAD")


class Scanner(Protocol):
    """What the runtime needs of :class:`safemedia.engine.Engine`."""

    @property
    def lists_generation(self) -> int: ...

    @property
    def lists_generation_in_force(self) -> int: ...

    def scan(
        self, body: bytes, content_type: str | None = None, *, sha256: str | None = None
    ) -> Verdict: ...

    def cached_verdict(self, sha256: str) -> Verdict | None: ...

    def close(self) -> None: ...


def load_hook(dotted: str) -> Callable[[Detection], object]:
    """Import ``module:function`` (or ``module.function``); :class:`ConfigError` if it fails."""
    module_name, sep, attr = dotted.partition(":")
    if not sep:
        module_name, _, attr = dotted.rpartition(".")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(
            f"bad value for 'on_detection': cannot import {dotted!r}: {exc}"
        ) from None
    if not callable(target):
        raise ConfigError(f"bad value for 'on_detection': {dotted!r} is not callable")
    hook: Callable[[Detection], object] = target
    return hook


# --- durable state and notifications (safemedia.store, safemedia.notify) ----------------------


def _open_recorder(config: Config) -> DetectionRecorder:
    """The durable store; if it cannot be opened, a loud error and a logging recorder.

    Blocking goes on either way (the engine does not need the store); only durability and
    sharing blocks between workers are lost, which the error says.
    """
    from safemedia.store import StoreError, open_store

    try:
        return open_store(config)
    except StoreError as exc:
        logger.error(
            "safemedia: %s; detections are only logged, blocks are NOT kept across restarts or "
            "shared between workers, and no alert is mailed until this is fixed",
            exc,
        )
        return LoggingRecorder()


def _start_notifier(config: Config, recorder: DetectionRecorder) -> Notifier | None:
    """Start the outbox notifier when ``recorder`` is the store (it warns if unverified)."""
    from safemedia.notify import Notifier
    from safemedia.store import Store

    if not isinstance(recorder, Store):
        return None
    notifier = Notifier(config, recorder)
    notifier.start()
    return notifier


# --- the runtime ------------------------------------------------------------------------------


def _open_engine(config: Config, is_allowed: Callable[[str], bool] | None) -> Scanner:
    from safemedia.engine import Engine  # type: ignore[import-not-found, unused-ignore]

    engine: Scanner = Engine(config, is_allowed=is_allowed)
    return engine


LOOP_DIGEST_BYTES = 1024 * 1024
"""Most bytes of a held body digested on an event loop in one loop step (:class:`HeldBody`).

SHA-256 runs at about 1.8 GB/s here, so 1 MiB is at most ~0.6 ms of event-loop time: a few plain
requests' worth, far below what asyncio itself calls slow (100 ms) and what the p99 target
allows (50 ms). Each turn of the loop between steps costs the request ~5 us with the caches the
digest left cold, so smaller steps cost more: a cached 3.84 MB body sent whole took digest +
137 us in 256 KiB steps and + 70 us in 1 MiB steps (docs/performance.md). Body parts of at most
this size are digested as they arrive, and once this much was digested since the loop last
turned, the adapter lets it turn (:meth:`HeldBody.turn`) before taking the next part, as a full
socket would; a larger part is digested when the body is complete, in slices of at most this
size, the loop free to run other tasks between slices (:meth:`HeldBody.digest_on_loop`). That
is cheaper for the request than the alternative, a hop to a worker thread and back (~50-120 us)
*plus* the same digest there, which runs ~5-10% slower on a thread other than the one that made
the body. Decoding and perceptual hashing never run on the loop."""


class HeldBody:
    """An image body held for checking: the chunks as they arrived, and their SHA-256 so far.

    :meth:`add` digests each chunk of at most :data:`LOOP_DIGEST_BYTES` as it arrives, on the
    calling thread (an event loop, where the chunk is still in the caches of the thread that
    made it), counting the bytes in :attr:`step`; an async caller awaits :meth:`turn` before a
    chunk that would take :attr:`step` over :data:`LOOP_DIGEST_BYTES`. From the first larger
    chunk on, nothing more is digested there: :meth:`digest_on_loop` digests what is left on
    an event loop in slices of at most :data:`LOOP_DIGEST_BYTES` (memoryview slices, no
    copies), the loop running its other work between slices; :meth:`digest_step` is one such
    slice, :meth:`digest` all of it at once (in a worker thread). Each continues the same
    hasher: nothing is digested twice. A content-encoded body (``rp.encodings``) is not
    digested as it arrives: its verdict is keyed by the digest of the decoded body.
    """

    __slots__ = ("_base", "_next", "_sha", "chunks", "fed", "size", "step")

    def __init__(self, rp: ResponsePlan | None = None) -> None:
        self.chunks: list[bytes] = []
        self.size = 0
        self.fed = 0 if rp is None or not rp.encodings else -1  # leading bytes digested
        self._sha = hashlib.sha256()
        self._next = 0  # index of the first chunk not wholly digested (digest_step) ...
        self._base = 0  # ... and the body offset it starts at
        self.step = 0  # bytes add() digested since the last turn()

    def add(self, chunk: bytes) -> None:
        if chunk:
            if type(chunk) is not bytes:
                chunk = bytes(chunk)
            self.chunks.append(chunk)
            if self.fed == self.size and len(chunk) <= LOOP_DIGEST_BYTES:
                self._sha.update(chunk)
                self.fed += len(chunk)
                self.step += len(chunk)
            self.size += len(chunk)

    async def turn(self) -> None:
        """Let the running event loop run its other ready tasks and I/O (asyncio, or trio
        through anyio), and start counting :attr:`step` again."""
        self.step = 0
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # not asyncio (trio)
            import anyio.lowlevel

            await anyio.lowlevel.checkpoint()
            return
        await asyncio.sleep(0)

    def value(self) -> bytes:
        """The body as one bytes object (joined once, for sniffing and small bodies)."""
        if len(self.chunks) == 1:
            return self.chunks[0]
        if not self.chunks:
            return b""
        joined = b"".join(self.chunks)
        self.chunks = [joined]
        self._next = self._base = 0
        return joined

    def digest_so_far(self) -> str | None:
        """The hex SHA-256 of the whole body once all of it is digested (as its chunks arrived,
        or by :meth:`digest_step` / :meth:`digest`), else None."""
        return self._sha.hexdigest() if self.fed == self.size else None

    def digest_step(self) -> bool:
        """Digest at most :data:`LOOP_DIGEST_BYTES` more of the body; True once all of it is
        (then :meth:`digest_so_far` has it), False while some is left for another step."""
        if self.fed < 0:
            self.fed = 0
        budget = LOOP_DIGEST_BYTES
        chunks = self.chunks
        while budget and self.fed < self.size:
            chunk = chunks[self._next]
            skip = self.fed - self._base
            if skip >= len(chunk):
                self._next += 1
                self._base += len(chunk)
                continue
            take = min(len(chunk) - skip, budget)
            self._sha.update(chunk if take == len(chunk) else memoryview(chunk)[skip : skip + take])
            self.fed += take
            budget -= take
        return self.fed == self.size

    async def digest_on_loop(self) -> None:
        """Digest what is left in :meth:`digest_step` slices on the running event loop, which
        runs its other ready tasks and I/O between slices.

        Under asyncio each further slice is a loop callback (``call_soon``) and the caller
        awaits one future: resuming the caller's task for every slice would pass through all
        its coroutine frames each time (a deep ASGI stack: ~1.5 us a slice more). Under trio
        (through anyio) the caller checkpoints between slices. The first slice also waits for
        the loop's next turn, so no slice shares a step with the work that came before it."""
        if self.fed == self.size:  # all digested as it arrived: nothing to wait for
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not asyncio (trio)
            import anyio.lowlevel

            while True:
                await anyio.lowlevel.checkpoint()
                if self.digest_step():
                    return
        done = loop.create_future()

        def step() -> None:
            if done.done():  # the caller was cancelled
                return
            try:
                finished = self.digest_step()
            except Exception as exc:  # pragma: no cover (a bug: surfaces in the caller)
                done.set_exception(exc)
                return
            if finished:
                done.set_result(None)
            else:
                loop.call_soon(step)

        loop.call_soon(step)
        await done

    def digest(self) -> str:
        """The hex SHA-256 of the whole body, digesting what is left at once (blocking)."""
        if self.fed < 0:
            self.fed = 0
        skip = self.fed
        for chunk in self.chunks:
            if skip >= len(chunk):
                skip -= len(chunk)
                continue
            self._sha.update(memoryview(chunk)[skip:] if skip else chunk)
            skip = 0
        self.fed = self.size
        return self._sha.hexdigest()


def _sha256_of(parts: Sequence[bytes]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return digest.hexdigest()


def _passed(
    rq: RequestPlan,
    status: int,
    headers: Headers,
    body: bytes,
    verdict: Verdict,
    parts: tuple[bytes, ...] = (),
) -> Reply:
    """The reply for a body that passed: exact length, tagged ETag, or a 304 for own ETags.
    With ``parts`` the body is those parts (``body`` is empty)."""
    length = sum(map(len, parts)) if parts else None
    headers = http.finalise_passed(headers, body, verdict, length=length)
    if verdict.sha256[:32] in rq.self_validate and status == 200:
        return http.not_modified_reply(headers)
    return Reply(status, headers, body, parts=parts)


class Runtime:
    """Config, engine, recorder, a bounded scan pool and the after-commit hooks.

    ``engine`` and ``recorder`` default to :class:`safemedia.engine.Engine` and the store
    (:func:`safemedia.store.open_store`, with its :class:`~safemedia.notify.Notifier` started);
    pass them to share one between adapters or in tests; the runtime closes only what it built.
    ``blocked_cache_seconds``: how long the store's blocked URLs and allow-list (kept in memory,
    see :class:`safemedia.lookups.StoreSet`) are trusted before the store is asked again (0:
    every time), so it is not queried on every request; an operator's unblock or allow-listing,
    or another process's block, applies within that time.
    """

    def __init__(
        self,
        config: Config | None = None,
        *,
        engine: Scanner | None = None,
        recorder: DetectionRecorder | None = None,
        on_detection: Callable[[Detection], object] | None = None,
        blocked_cache_seconds: float = 1.0,
    ) -> None:
        self.config = config if config is not None else Config.load()
        self._owns_recorder = recorder is None
        self.recorder = recorder if recorder is not None else _open_recorder(self.config)
        self.notifier = _start_notifier(self.config, self.recorder) if recorder is None else None
        self._blocked = store_set(
            self.recorder,
            "blocked_urls",
            self.recorder.is_blocked,
            blocked_cache_seconds,
            index=url_paths,
        )
        store_allows = getattr(self.recorder, "is_allowed", None)
        allowed = (
            store_set(self.recorder, "allowed_sha256", store_allows, blocked_cache_seconds)
            if callable(store_allows)
            else None
        )
        self._owns_engine = engine is None
        self.engine = engine if engine is not None else _open_engine(self.config, allowed)
        hooks: list[Callable[[Detection], object]] = []
        if self.config.on_detection:
            hooks.append(load_hook(self.config.on_detection))
        if on_detection is not None:
            hooks.append(on_detection)
        self._hooks = tuple(hooks)
        self._pool = self._new_pool()
        self._hook_pool: ThreadPoolExecutor | None = None
        self._scan_slots = threading.BoundedSemaphore(self.config.scan_concurrency)
        self._lock = threading.Lock()
        self._closed = False
        self._checked = time.monotonic()
        self._refreshing = False

    @property
    def lists_generation(self) -> int:
        """The lists generation in force (see :meth:`current_generation`)."""
        return self.current_generation(blocking=False)

    def current_generation(self, *, blocking: bool = True) -> int:
        """The lists generation in force.

        ``blocking``: ask the engine now (it may reload changed lists: file I/O). Otherwise, for
        an event loop, return the generation already in memory (a reload that another thread
        made is seen at once) and, once ``list_reload_interval`` has passed, have a short-lived
        thread check the files.
        """
        if blocking:
            generation = self.engine.lists_generation
            self._checked = time.monotonic()
            return generation
        if time.monotonic() - self._checked >= self.config.list_reload_interval:
            with self._lock:
                start = not self._refreshing
                self._refreshing = True
            if start:
                threading.Thread(
                    target=self._refresh_generation, name="safemedia-lists", daemon=True
                ).start()
        return self.engine.lists_generation_in_force

    def _refresh_generation(self) -> None:
        try:
            self.engine.lists_generation  # noqa: B018 (the property checks the files)
        except Exception:
            logger.exception("safemedia: could not check the hash lists")
        finally:
            self._checked = time.monotonic()
            self._refreshing = False

    # --- requests -----------------------------------------------------------------------------

    def stand_in(self, method: str, path: str, headers: Headers) -> RequestPlan | None:
        """What ``plan_response`` is given for a request that needs no plan before the app is
        called (:func:`safemedia.http.unplanned`), or None when it must be planned
        (:meth:`plan_request`) first.

        None when its URL may be blocked (no blocked URL has this path: a stand-in, from
        memory) or it carries ``Range`` or validators. Most requests need no plan: the adapter
        calls the app as it is, gives the stand-in to ``plan_response`` and plans the request
        only when its response must be held (it is, or may be, an image). ``path`` is the one
        the blocked-URL key is made of; ``headers`` as for :meth:`plan_request`.
        """
        if method == "GET":
            stand_in = _STAND_IN_GET
        elif method == "HEAD":
            stand_in = _STAND_IN_HEAD
        else:
            stand_in = http.unplanned(method)
            if method.upper() not in ("GET", "HEAD"):
                return stand_in  # never blocked, nothing stripped
        # StoreSet.might_contain and http.has_request_validators, inline: this runs per request
        blocked = self._blocked
        state = blocked.state
        if monotonic() >= state[3]:  # check_at
            state = blocked.refresh()
        terms = state[2]
        if terms is None or not path or path[0] != "/" or (terms and path in terms):
            return None  # (an empty index: the path not hashed)
        for name, _ in headers:
            if name in _VALIDATORS:
                return None
        return stand_in

    def plan_request(
        self,
        method: str,
        host: str,
        path: str,
        query: str,
        headers: Headers,
        *,
        client: str | None = None,
        blocking: bool = True,
    ) -> RequestPlan:
        """:func:`safemedia.http.plan_request` with the current generation and URL blocks.

        An async adapter passes ``blocking=False`` (see :meth:`current_generation`).
        """
        blocked = False
        if method in ("GET", "HEAD", "get", "head"):
            blocked = self._blocked(url_key(host, path, query))
        return http.plan_request(
            method,
            host,
            path,
            query,
            headers,
            generation=self.current_generation(blocking=blocking),
            blocked=blocked,
            client=client,
        )

    def is_blocked(self, url: str) -> bool:
        """The recorder's answer, reused for ``blocked_cache_seconds``. Errors: not blocked."""
        return self._blocked(url)

    def block_reply(self, rq: RequestPlan) -> Reply:
        """The block response for this request (HEAD: no body)."""
        return http.block_reply(self.config, rq.request.method)

    # --- responses (blocking: run in a worker thread from async code) ---------------------------

    def scan(
        self, body: bytes, content_type: str | None = None, *, sha256: str | None = None
    ) -> Verdict:
        """The engine's verdict, at most ``scan_concurrency`` scans at a time.

        ``sha256``: the hex SHA-256 of exactly ``body``, if already made (not made again)."""
        with self._scan_slots:
            return self.engine.scan(body, content_type, sha256=sha256)

    def conclude(
        self,
        rq: RequestPlan,
        rp: ResponsePlan,
        status: int,
        headers: Headers,
        body: bytes,
        *,
        sha256: str | None = None,
    ) -> Reply:
        """Scan a buffered image body and return what to send. Never raises (fails closed).

        ``sha256``: the hex SHA-256 of exactly ``body``, if already made; used only when the body
        is not content-encoded (an encoded body is scanned, and keyed, decoded)."""
        try:
            try:
                scanned = http.decode_for_scan(body, rp.encodings, rp.limit)
            except http.UninspectableError as exc:
                verdict = http.uninspectable_verdict(
                    exc.reason, exc.detail, body=body, generation=rq.generation
                )
                scanned = body
            else:
                verdict = self.scan(
                    scanned, rp.content_type, sha256=None if rp.encodings else sha256
                )
            judgement = http.judge(verdict, rq, self.config, body=scanned)
            if judgement.detection is not None:
                self.commit(judgement.detection)
            if judgement.block:
                return self.block_reply(rq)
            return _passed(rq, status, headers, body, verdict)
        except Exception:
            logger.exception("safemedia: error while checking %s; blocking it", rq.request.url)
            return self.block_reply(rq)

    def conclude_parts(
        self,
        rq: RequestPlan,
        rp: ResponsePlan,
        status: int,
        headers: Headers,
        parts: Sequence[bytes],
        *,
        held: HeldBody | None = None,
    ) -> Reply:
        """:meth:`conclude` for a body held in the parts the app sent (blocking, never raises).

        ``held``: the :class:`HeldBody` whose ``chunks`` are ``parts``; its digest so far is
        continued, not made again. The parts are digested in order; when the engine's verdict
        cache already holds that digest as clean for the lists in force, the reply carries the
        parts as they are (:attr:`Reply.parts`), never joined into one copy. Otherwise they are
        joined here (in the worker thread, not on an event loop) and scanned by
        :meth:`conclude`, with the digest already made.
        """
        sha256 = None
        if not rp.encodings:
            try:
                sha256 = held.digest() if held is not None else _sha256_of(parts)
                reply = self._cached_reply(rq, status, headers, parts, sha256)
                if reply is not None:
                    return reply
            except Exception:
                logger.exception("safemedia: cached check of %s failed; scanning", rq.request.url)
                sha256 = None
        body = parts[0] if len(parts) == 1 else b"".join(parts)
        return self.conclude(rq, rp, status, headers, body, sha256=sha256)

    def conclude_cached(
        self,
        rq: RequestPlan,
        rp: ResponsePlan,
        status: int,
        headers: Headers,
        parts: Sequence[bytes],
        *,
        held: HeldBody | None = None,
    ) -> Reply | None:
        """:meth:`conclude` without a worker thread, when that is cheaper; else None.

        ``parts``: the body as held (one part when the app sent it whole); ``held``: the
        :class:`HeldBody` whose ``chunks`` they are, if any. The body's SHA-256 is the one
        ``held`` made when that covers the whole body (as the chunks arrived, and for larger
        chunks in :meth:`HeldBody.digest_step` slices), else one made here for a body of at most
        :data:`LOOP_DIGEST_BYTES`. When the body is not content-encoded and the engine's verdict
        cache already holds that digest as clean for the lists in force (and for the generation
        the request was planned against), the reply is made here, with the parts as they are:
        a dictionary look-up, no decode, no perceptual hash, nothing recorded. Every other body
        (not digested yet, encoded, new, listed, uninspectable) gets None and goes to
        :meth:`conclude_parts` in a worker thread. Never raises (None on any error).
        """
        if rp.encodings:
            return None
        try:
            sha256 = held.digest_so_far() if held is not None else None
            if sha256 is None:
                if sum(map(len, parts)) > LOOP_DIGEST_BYTES:
                    return None
                sha256 = _sha256_of(parts)
            return self._cached_reply(rq, status, headers, parts, sha256)
        except Exception:
            logger.exception("safemedia: cached check of %s failed; scanning", rq.request.url)
            return None

    def _cached_reply(
        self, rq: RequestPlan, status: int, headers: Headers, parts: Sequence[bytes], sha256: str
    ) -> Reply | None:
        """The passed reply for a body whose digest the verdict cache holds as clean, made
        against the lists in force and the generation ``rq`` was planned with; else None."""
        verdict = self.engine.cached_verdict(sha256)
        if verdict is None or not verdict.is_clean or verdict.lists_generation != rq.generation:
            return None
        if len(parts) == 1:
            return _passed(rq, status, headers, parts[0], verdict)
        return _passed(rq, status, headers, b"", verdict, tuple(parts))

    def conclude_uninspectable(
        self,
        rq: RequestPlan,
        rp: ResponsePlan,
        reason: Reason | None = None,
        detail: str = "",
    ) -> Reply | None:
        """Record an uninspectable response; the block reply, or None when config allows it."""
        reason = reason or rp.reason or Reason.UNDECODABLE
        detail = detail or rp.detail
        try:
            verdict = http.uninspectable_verdict(reason, detail, generation=rq.generation)
            judgement = http.judge(verdict, rq, self.config, body=None)
            if judgement.detection is not None:
                self.commit(judgement.detection)
            return self.block_reply(rq) if judgement.block else None
        except Exception:
            logger.exception("safemedia: error while recording %s; blocking it", rq.request.url)
            return self.block_reply(rq)

    def commit(self, detection: Detection) -> None:
        """Record ``detection`` durably, then run the after-commit hooks (in the background).

        A recorder failure is logged, never raised: the caller still sends its block reply.
        """
        try:
            self.recorder.record(detection)
        except Exception:
            logger.exception("safemedia: could not record a detection for %s", detection.url)
            return
        self._blocked.forget(detection.url)
        if self._hooks:
            self._hooks_pool().submit(self._run_hooks, detection)

    def _hooks_pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._hook_pool is None:
                self._hook_pool = ThreadPoolExecutor(1, thread_name_prefix="safemedia-hooks")
            return self._hook_pool

    def _run_hooks(self, detection: Detection) -> None:
        for hook in self._hooks:
            try:
                hook(detection)
            except Exception:
                logger.exception("safemedia: on_detection hook %r failed", hook)

    # --- async support --------------------------------------------------------------------------

    async def run_blocking(self, func: Callable[..., T], *args: Any) -> T:
        """Run ``func(*args)`` in the runtime's bounded worker pool, off the event loop."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not asyncio (trio): anyio's worker threads
            import anyio.to_thread

            return await anyio.to_thread.run_sync(lambda: func(*args))
        if self._pool_pid != os.getpid():  # forked (a preloading server): threads did not survive
            self._pool = self._new_pool()
        return await loop.run_in_executor(self._pool, lambda: func(*args))

    def _new_pool(self) -> ThreadPoolExecutor:
        self._pool_pid = os.getpid()
        return ThreadPoolExecutor(self.config.scan_concurrency, thread_name_prefix="safemedia-scan")

    def close(self) -> None:
        """Stop the pools and the engine. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._pool.shutdown(wait=False)
        if self.notifier is not None:
            self.notifier.stop()
        if self._hook_pool is not None:
            self._hook_pool.shutdown(wait=True)
        if self._owns_engine:
            self.engine.close()
        closer = getattr(self.recorder, "close", None)
        if self._owns_recorder and callable(closer):
            closer()
