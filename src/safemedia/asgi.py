"""Pure ASGI middleware: every image an ASGI app serves is checked before it leaves.

Usage::

    from safemedia import Config
    from safemedia.asgi import SafeMediaMiddleware

    app = SafeMediaMiddleware(app, config=Config.from_file("safemedia.toml"))
    # or, in Starlette / FastAPI:
    app.add_middleware(SafeMediaMiddleware, config=Config.from_file("safemedia.toml"))

Without ``config`` it is :meth:`Config.load` (``$SAFEMEDIA_CONFIG`` or ``./safemedia.toml``).
Each request gets a responder that holds ``http.response.start`` until the policy
(:mod:`safemedia.http`) has decided: non-image responses are passed on at once and streamed;
images are buffered (up to ``max_body_bytes``, across ``more_body`` messages and
``http.response.pathsend``) and checked in the runtime's worker threads. Only SHA-256, in
bounded steps, runs on the event loop (:class:`~safemedia.runtime.HeldBody`): body parts of at
most 1 MiB (``LOOP_DIGEST_BYTES``) are digested as they arrive, with a yield to the loop
before a part that would take one loop step's digest over 1 MiB (an app sending many parts
without a pause), and what larger parts leave is digested when the body is complete, in slices
of at most 1 MiB with a yield to the loop between slices (a file sent with ``pathsend`` is
digested in the worker thread that reads it).
A body whose digest the verdict cache already holds as clean is then answered on the loop, no
worker thread; any other body goes to a worker with its digest, which is not made again there.
Decoding and perceptual hashing never run on the loop.
Lifespan and websocket scopes pass through untouched.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from safemedia.config import Config
from safemedia.http import (
    SNIFF_BYTES,
    Reply,
    RequestPlan,
    ResponseAction,
    ResponsePlan,
    apply_to_headers,
    conservative_plan,
    plan_after_sniff,
    plan_response,
    sniff_image,
    sniff_needs_more,
)
from safemedia.runtime import LOOP_DIGEST_BYTES, HeldBody, Runtime
from safemedia.verdict import Reason

__all__ = ["SafeMediaMiddleware"]

logger = logging.getLogger("safemedia")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Response states; the last two hold back the response start.
_WAITING, _PASSING, _DONE, _HOLDING, _SNIFFING = 0, 1, 2, 3, 4
# Enum members read once: through the class each read costs ~70 ns (3.11), per message.
_PASS, _SNIFF, _INSPECT, _UNINSPECTABLE = (
    ResponseAction.PASS,
    ResponseAction.SNIFF,
    ResponseAction.INSPECT,
    ResponseAction.UNINSPECTABLE,
)


class SafeMediaMiddleware:
    """Check every image response of ``app``; see the module docstring.

    ``runtime`` shares one :class:`~safemedia.runtime.Runtime` (engine, recorder, pool) between
    several middlewares; otherwise one is built from ``config``.
    """

    def __init__(
        self, app: ASGIApp, config: Config | None = None, *, runtime: Runtime | None = None
    ) -> None:
        self.app = app
        self.runtime = runtime if runtime is not None else Runtime(config)
        self.config = self.runtime.config
        self._stand_in = self.runtime.stand_in

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            stand_in = self._stand_in(scope["method"], scope["path"], scope["headers"])
        except Exception:
            logger.exception("safemedia: error checking a request; planning it")
            stand_in = None
        if stand_in is None:  # may be blocked, or its validators or Range the plan changes
            planned = await self._plan_before_app(scope, send)
            if planned is None:
                return  # refused: the block reply was sent
            scope, rq = planned
            stand_in = rq
        else:  # most requests: the app is called as it is; planned only if the response is held
            rq = None
        # the responder's slots set here, not in an __init__ (a frame of its own, per request)
        responder = _new_responder(_Responder)
        responder.middleware = self
        responder.scope = scope
        responder.rq = rq
        responder.stand_in = stand_in
        responder.send_next = send
        responder.state = _WAITING
        responder.buffer = _NO_BODY
        await self.app(scope, receive, responder.send)
        if responder.state > _DONE:  # holding: the app ended without finishing its body
            await responder.app_ended_early()

    async def _plan_before_app(self, scope: Scope, send: Send) -> tuple[Scope, RequestPlan] | None:
        """Plan the request now: None when its URL is blocked (the block reply is sent), else
        the scope to call the app with (Range and stale validators stripped) and the plan."""
        try:
            rq = self.plan(scope)
        except Exception:
            logger.exception("safemedia: error planning a request; stripping all validators")
            rq = conservative_plan(scope["method"], scope["path"])
        if rq.blocked:
            await _send_reply(send, self.runtime.block_reply(rq))
            return None
        if rq.strip or rq.set:  # rq.changes_headers, without a property call per request
            scope = dict(scope)
            scope["headers"] = apply_to_headers(list(scope["headers"]), rq)
        return scope, rq

    def plan(self, scope: Scope) -> RequestPlan:
        """The request's plan (:meth:`Runtime.plan_request`), from its scope."""
        headers = scope.get("headers") or []
        host = ""
        for name, value in headers:
            if name == b"host":
                host = value.decode("latin-1")
                break
        else:
            server = scope.get("server")
            if server:
                host = f"{server[0]}:{server[1]}" if server[1] is not None else str(server[0])
        query = scope.get("query_string")
        client = scope.get("client")
        return self.runtime.plan_request(
            scope["method"],
            host,
            scope["path"],
            query.decode("latin-1") if query else "",
            headers,
            client=client[0] if client else None,
            blocking=False,
        )

    def close(self) -> None:
        """Release the runtime (worker threads, engine, recorder)."""
        self.runtime.close()


async def _send_reply(send: Send, reply: Reply) -> None:
    await send({"type": "http.response.start", "status": reply.status, "headers": reply.headers})
    parts = reply.parts
    if not parts:
        await send({"type": "http.response.body", "body": reply.body})
        return
    last = len(parts) - 1
    for i, part in enumerate(parts):  # as the app sent them: no copy of the whole body
        await send({"type": "http.response.body", "body": part, "more_body": i < last})


class _Responder:
    """One response: passes non-images on, holds and buffers images until checked.

    Made by :meth:`SafeMediaMiddleware.__call__`, which sets its slots (no ``__init__``).
    """

    __slots__ = (
        "buffer",
        "middleware",
        "plan",
        "rq",
        "scope",
        "send_next",
        "stand_in",
        "start",
        "state",
    )

    middleware: SafeMediaMiddleware
    scope: Scope
    rq: RequestPlan | None  # None until the response is held (or the request needed a plan)
    stand_in: RequestPlan  # rq, or what plan_response needs of an unplanned request
    send_next: Send
    state: int
    buffer: HeldBody  # _NO_BODY until a body chunk is held
    # set when the response starts, not before:
    start: Message  # the app's http.response.start, held
    plan: ResponsePlan  # the decision on the response's headers (then on its first bytes)

    async def send(self, message: Message) -> None:
        # most responses are a start and one body message: their states are tested first
        state = self.state
        if state == _WAITING:  # the response start: held unless its headers settle it
            if message["type"] != "http.response.start":
                await self.send_next(message)
                return
            self.start = message
            try:
                plan = plan_response(
                    self.stand_in,
                    message["status"],
                    message.get("headers") or [],
                    self.middleware.config,
                    True,
                )
            except Exception:
                await self._failed("planning")
                return
            self.plan = plan
            action = plan.action
            if action is _SNIFF and not plan.encodings:  # the common case: held, sniffed next
                self.state = _SNIFFING
                return
            if action is _PASS:
                self.state = _PASSING
                if plan.headers is not None:
                    message = {**message, "headers": plan.headers}
                await self.send_next(message)
                return
            self.state = _HOLDING  # until it is checked
            if action is _UNINSPECTABLE:
                await self._uninspectable(plan.reason, plan.detail, more=True)
        elif state == _SNIFFING:  # is the first chunk plainly not an image?
            try:
                if message["type"] == "http.response.body":
                    body = message.get("body", b"")
                    if not sniff_image(body) and (
                        not message.get("more_body", False) or not sniff_needs_more(self.plan, body)
                    ):
                        self.state = _PASSING
                        await self.send_next(self.start)
                        await self.send_next(message)
                        return
            except Exception:
                await self._failed("handling")
                return
            self.state = _HOLDING
            await self.send(message)
        elif state == _PASSING:
            await self.send_next(message)
        elif state == _HOLDING:
            try:
                plan = self.plan
                if (
                    plan.action is _INSPECT
                    and message["type"] == "http.response.body"
                    and message.get("more_body", False)
                ):
                    buffer = self._held()  # an image chunk: held, no coroutine per chunk
                    body = message.get("body", b"")
                    if buffer.step and buffer.step + len(body) > LOOP_DIGEST_BYTES:
                        await buffer.turn()  # as a full socket would: the loop runs first
                    buffer.add(body)
                    if buffer.size <= plan.limit:
                        return
                    await self._progress(more=True)
                    return
                await self._on_held(message)
            except OSError:
                raise
            except Exception:
                await self._failed("handling")
        # _DONE: a reply was sent instead; the app's further messages are dropped

    def request(self) -> RequestPlan:
        """The request's plan, made now if it was not needed before the app was called."""
        rq = self.rq
        if rq is None:
            try:
                rq = self.middleware.plan(self.scope)
            except Exception:
                logger.exception("safemedia: error planning a request; stripping all validators")
                rq = conservative_plan(self.scope["method"], self.scope["path"])
            self.rq = rq
        return rq

    async def _failed(self, doing: str) -> None:
        """An error in safemedia while ``doing`` something: logged, the block reply sent."""
        rq = self.request()
        logger.exception("safemedia: error %s %s", doing, rq.request.url)
        await self._finish(self.middleware.runtime.block_reply(rq))

    def _held(self) -> HeldBody:
        buffer = self.buffer
        if buffer is _NO_BODY:
            buffer = self.buffer = HeldBody(self.plan)
        return buffer

    async def _on_held(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.body":
            held, body = self._held(), message.get("body", b"")
            if held.step and held.step + len(body) > LOOP_DIGEST_BYTES:
                await held.turn()  # this loop step digested its share already
            held.add(body)
            await self._progress(more=bool(message.get("more_body", False)))
        elif kind in ("http.response.pathsend", "http.response.zerocopysend"):
            await self._read_file(message)
        # trailers and unknown extensions: nothing to check; the response is held or replaced

    async def _progress(self, *, more: bool) -> None:
        plan = self.plan
        if plan.action is _SNIFF:
            if more and sniff_needs_more(plan, self.buffer.value()):
                return
            plan = self.plan = plan_after_sniff(plan, self.buffer.value())
            if plan.action is _PASS:
                await self._release(more)
                return
            if plan.action is _UNINSPECTABLE:
                await self._uninspectable(plan.reason, plan.detail, more=more)
                return
        if self.buffer.size > plan.limit:
            await self._uninspectable(
                Reason.TOO_LARGE, f"body over max_body_bytes {plan.limit}", more=more
            )
            return
        if more:
            return
        held = self.buffer
        if not plan.encodings:  # what add() left (parts over 1 MiB): in bounded slices
            await held.digest_on_loop()
        start = self.start
        status, headers, parts = start["status"], start.get("headers") or [], held.chunks
        runtime = self.middleware.runtime
        rq = self.request()
        reply = runtime.conclude_cached(rq, plan, status, headers, parts, held=held)
        if reply is None:  # not known yet (or not digested here): a worker thread
            reply = await runtime.run_blocking(
                lambda: runtime.conclude_parts(rq, plan, status, headers, parts, held=held)
            )
        await self._finish(reply)

    async def _read_file(self, message: Message) -> None:
        """Bring a ``pathsend`` / ``zerocopysend`` file into the buffer (bounded)."""
        plan = self.plan
        room = plan.limit + 1 - self.buffer.size
        if plan.action is _SNIFF and not self.buffer.size:
            head = await self.middleware.runtime.run_blocking(_read, message, SNIFF_BYTES)
            if plan_after_sniff(plan, head).action is _PASS:
                await self._release(more=True)
                await self.send_next(message)  # zero-copy kept for non-images
                return
        # read and digested in one worker hop: nothing of the file is left to digest on the loop
        await self.middleware.runtime.run_blocking(
            _read_into, self._held(), message, max(room, 0), plan
        )
        await self._progress(more=False)

    async def _uninspectable(self, reason: Reason | None, detail: str, *, more: bool) -> None:
        plan = self.plan
        reply = await self.middleware.runtime.run_blocking(
            self.middleware.runtime.conclude_uninspectable, self.request(), plan, reason, detail
        )
        if reply is not None:
            await self._finish(reply)
        else:  # allowed by config: the original goes on, streamed
            await self._release(more)

    async def _release(self, more: bool) -> None:
        """Send the held start and what was buffered, then pass the rest through."""
        start = self.start
        self.state = _PASSING
        await self.send_next(start)
        if self.buffer.size or not more:
            body, self.buffer = self.buffer.value(), _NO_BODY
            await self.send_next({"type": "http.response.body", "body": body, "more_body": more})

    async def _finish(self, reply: Reply) -> None:
        self.state = _DONE
        self.buffer = _NO_BODY
        await _send_reply(self.send_next, reply)

    async def app_ended_early(self) -> None:
        """The app returned without finishing its body: what it sent goes on if it cannot be
        an image; an image (or what may be one) is uninspectable (truncated)."""
        plan = self.plan
        if (
            plan is not None
            and plan.action is _SNIFF
            and plan_after_sniff(plan, self.buffer.value()).action is _PASS
        ):
            await self._release(more=False)
            return
        await self._uninspectable(Reason.TRUNCATED, "the app ended the body early", more=False)


_NO_BODY = HeldBody()
_new_responder = object.__new__


def _read_into(held: HeldBody, message: Message, limit: int, plan: ResponsePlan) -> None:
    """Add what :func:`_read` returns to ``held`` and digest it (blocking: a worker thread).

    Not digested when content-encoded (keyed by the decoded body) or over ``plan.limit``."""
    held.add(_read(message, limit))
    if not plan.encodings and held.size <= plan.limit:
        held.digest()


def _read(message: Message, limit: int) -> bytes:
    """Up to ``limit`` bytes of the file a pathsend / zerocopysend message names."""
    if message["type"] == "http.response.pathsend":
        with open(message["path"], "rb") as f:
            return f.read(limit)
    file = message["file"]
    offset = message.get("offset")
    count = message.get("count")
    want = limit if count is None else min(limit, count)
    fd = file.fileno()
    if offset is None:  # from the current position, which must not move
        offset = os.lseek(fd, 0, os.SEEK_CUR)
    return os.pread(fd, want, offset)
