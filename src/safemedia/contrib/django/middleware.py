"""``safemedia.contrib.django.SafeMediaMiddleware``: Django middleware, sync and async.

Settings, read when Django loads its middleware (and again after ``override_settings``); a wrong
one raises ``ImproperlyConfigured`` naming the key, so the worker does not start:

- ``SAFEMEDIA``: the keys of the TOML ``[safemedia]`` table as a dict, or the path of a TOML
  file; without it :meth:`Config.load` (``$SAFEMEDIA_CONFIG``, else ``./safemedia.toml``).
- ``SAFEMEDIA_RUNTIME`` (optional): the dotted path of a callable returning a
  :class:`~safemedia.runtime.Runtime`, to share one with other adapters or to supply your own
  engine or recorder.

It works on ``HttpResponse``, ``StreamingHttpResponse`` and ``FileResponse`` (WhiteNoise's and
``django.views.static.serve``'s): decisions come from :mod:`safemedia.http`; a non-image response
is returned untouched (a ``FileResponse`` keeps ``wsgi.file_wrapper``). Every body is sniffed
whatever its label (a FileResponse by peeking at its file, a stream only until its first bytes
cannot start an image), since browsers show image bytes whatever the label. An image is read up to
``max_body_bytes`` and checked; a block turns the response into the block reply in place, so
Django still closes the original file. In async mode, file reads and scans run in the runtime's
worker threads, never on the event loop.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from dataclasses import dataclass
from functools import partial
from http.cookies import SimpleCookie
from typing import Any

from asgiref.sync import async_to_sync, iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.http import HttpRequest
from django.http.response import HttpResponseBase, ResponseHeaders
from django.utils.module_loading import import_string

from safemedia import http
from safemedia.config import ConfigError
from safemedia.contrib import config_from_setting
from safemedia.http import Reply, RequestPlan, ResponseAction, ResponsePlan
from safemedia.runtime import Runtime
from safemedia.verdict import Reason
from safemedia.wsgi import peek_file, request_target

__all__ = ["SafeMediaMiddleware", "get_runtime"]

logger = logging.getLogger("safemedia")
_lock = threading.Lock()
_runtime: Runtime | None = None


def get_runtime() -> Runtime:
    """The site's :class:`Runtime`, built from the settings on first use.

    Raises ``ImproperlyConfigured`` naming the setting and the key when they are wrong.
    """
    global _runtime
    runtime = _runtime
    if runtime is not None:
        return runtime
    with _lock:
        if _runtime is None:
            try:
                _runtime = _build_runtime()
            except ConfigError as exc:
                raise ImproperlyConfigured(str(exc)) from None
        return _runtime


def _build_runtime() -> Runtime:
    factory = getattr(settings, "SAFEMEDIA_RUNTIME", None)
    if not factory:
        return Runtime(config_from_setting(getattr(settings, "SAFEMEDIA", None)))
    made = import_string(factory)() if isinstance(factory, str) else factory()
    if not isinstance(made, Runtime):
        raise ImproperlyConfigured(f"SAFEMEDIA_RUNTIME returned {type(made).__name__}")
    return made


def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    global _runtime
    if setting in ("SAFEMEDIA", "SAFEMEDIA_RUNTIME"):
        with _lock:
            _runtime = None


setting_changed.connect(_settings_changed)


class SafeMediaMiddleware:
    """Refuse blocked URLs, strip ``Range``/stale validators, check every image response."""

    sync_capable = True
    async_capable = True

    def __init__(
        self,
        get_response: Callable[[HttpRequest], HttpResponseBase]
        | Callable[[HttpRequest], Awaitable[HttpResponseBase]],
    ) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)
        get_runtime()  # a wrong configuration stops the worker from starting, named

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        runtime, rq, refused = _admit(request)
        if refused is not None:
            return refused
        check = _Check(runtime, rq, request, self.get_response(request))  # type: ignore[arg-type]
        op = check.advance(None)
        while op is not None:
            op = check.advance(check.body.read(op) if op.reads else op.run())
        if check.reply is not None:
            check.body.close_unread()
        return check.finish()

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        runtime, rq, refused = _admit(request)
        if refused is not None:
            return refused
        check = _Check(runtime, rq, request, await self.get_response(request))  # type: ignore[misc]
        op = check.advance(None)
        while op is not None:
            if op.reads:
                op = check.advance(await check.body.aread(op, runtime))
            else:
                op = check.advance(await runtime.run_blocking(op.run))
        if check.reply is not None:
            await check.body.aclose_unread()
        return check.finish()


def _admit(request: HttpRequest) -> tuple[Runtime, RequestPlan | None, HttpResponseBase | None]:
    """The runtime, the request's plan, and the block response when its URL is blocked.

    The plan is None when the request needs none before the view (:meth:`Runtime.stand_in`:
    a path no blocked URL has, no ``Range`` or validators); it is made if the response is held.
    """
    runtime = get_runtime()
    try:
        stand_in = runtime.stand_in(
            request.method or "GET", request.path, http.headers_from_environ(request.META)
        )
    except Exception:  # planned, which logs what went wrong
        stand_in = None
    if stand_in is not None:
        return runtime, None, None
    rq = _plan(runtime, request)
    if rq.blocked:
        return runtime, rq, _reply_response(runtime.block_reply(rq))
    return runtime, rq, None


def _plan(runtime: Runtime, request: HttpRequest) -> RequestPlan:
    meta = request.META
    method, host, _, query = request_target(meta)
    try:
        rq = runtime.plan_request(
            method,
            host,
            request.path,
            query,
            http.headers_from_environ(meta),
            client=meta.get("REMOTE_ADDR"),
        )
    except Exception:
        logger.exception("safemedia: error planning a request; stripping all validators")
        rq = http.conservative_plan(method, request.path)
    if rq.changes_headers:
        http.apply_to_environ(meta, rq)
        request.__dict__.pop("headers", None)  # HttpRequest.headers is cached from META
    return rq


# --- the decision, as steps a sync or an async driver runs ----------------------------------


@dataclass(frozen=True, slots=True)
class _Op:
    """Read the body until ``size`` bytes (or its end; ``peek`` may leave a file unread), or,
    with ``call``, make a blocking call into the runtime (scan, durable record)."""

    size: int = 0
    peek: bool = False
    call: Callable[[], Reply | None] | None = None
    sniff: ResponsePlan | None = None  # stop reading once these bytes cannot start an image

    @property
    def reads(self) -> bool:
        return self.call is None

    def run(self) -> Reply | None:
        assert self.call is not None
        return self.call()


class _Check:
    """One response being decided: the steps of :func:`_decide` and the body read so far."""

    def __init__(
        self,
        runtime: Runtime,
        rq: RequestPlan | None,
        request: HttpRequest,
        response: HttpResponseBase,
    ) -> None:
        self.response = response
        self.body = _Body(response)
        self.reply: Reply | None = None
        status = response.status_code
        headers = _headers(response)
        stand_in = http.unplanned(request.method or "GET") if rq is None else rq
        rp = http.plan_response(stand_in, status, headers, runtime.config, sniff_labelled=True)
        self.steps: Generator[_Op, Any, Reply | None] | None = None
        if rp.action is not ResponseAction.PASS:
            if rq is None:  # held: the request is planned now
                rq = _plan(runtime, request)
            self.steps = _decide(runtime, rq, rp, status, headers)
        elif rp.headers is not None:
            _set_headers(response, rp.headers)

    def advance(self, value: Any) -> _Op | None:
        """The next operation, given the result of the last one; None once decided."""
        if self.steps is None:
            return None
        try:
            return self.steps.send(value)
        except StopIteration as done:
            self.reply = done.value
            self.steps = None
            return None

    def finish(self) -> HttpResponseBase:
        return _finish(self.response, self.body, self.reply)


def _decide(
    runtime: Runtime, rq: RequestPlan, rp: ResponsePlan, status: int, headers: http.Headers
) -> Generator[_Op, Any, Reply | None]:
    if rp.action is ResponseAction.SNIFF:
        prefix: bytes = yield _Op(http.SNIFF_BYTES, peek=True, sniff=rp)
        rp = http.plan_after_sniff(rp, prefix)
    if rp.action is ResponseAction.PASS:
        return None
    if rp.action is ResponseAction.UNINSPECTABLE:
        reply: Reply | None = yield _Op(call=partial(runtime.conclude_uninspectable, rq, rp))
        return reply
    body: bytes = yield _Op(rp.limit + 1)
    if len(body) > rp.limit:
        detail = f"body exceeds max_body_bytes {rp.limit}"
        too_large = partial(runtime.conclude_uninspectable, rq, rp, Reason.TOO_LARGE, detail)
        reply = yield _Op(call=too_large)
        return reply
    reply = yield _Op(call=partial(runtime.conclude, rq, rp, status, headers, body))
    return reply


# --- reading a response body from the front -------------------------------------------------


class _Body:
    """A response's body as read so far (``held``), the rest still in the response."""

    def __init__(self, response: HttpResponseBase) -> None:
        self.response = response
        self.held: list[bytes] = []
        self.size = 0
        self.ended = False
        self.sync_iter: Iterator[bytes] | None = None
        self.async_iter: AsyncIterator[bytes] | None = None

    def _load_content(self) -> None:
        """A non-streaming response's content, all of it (it is in memory already)."""
        content: bytes = self.response.content  # type: ignore[attr-defined]
        self.held, self.size, self.ended = [content], len(content), True

    @property
    def is_async(self) -> bool:
        return bool(self.response.streaming and getattr(self.response, "is_async", False))

    @property
    def touched(self) -> bool:
        return self.sync_iter is not None or self.async_iter is not None

    def _peek(self) -> bytes | None:
        """A FileResponse's first bytes, its file left unread (``wsgi.file_wrapper`` kept)."""
        if self.touched:
            return None
        return peek_file(getattr(self.response, "file_to_stream", None), http.SNIFF_BYTES)

    def _enough(self, size: int, sniff: ResponsePlan | None) -> bool:
        if self.ended or self.size >= size:
            return True
        return sniff is not None and not http.sniff_needs_more(sniff, b"".join(self.held))

    def read(self, op: _Op) -> bytes:
        if op.peek and (data := self._peek()) is not None:
            return data
        if not self.response.streaming and not self.ended:
            self._load_content()
        if self.is_async:  # an async stream met by sync middleware (ASGI, sync layer below)
            return async_to_sync(self._aread_stream)(op)
        if not self.ended and self.sync_iter is None:
            self.sync_iter = iter(self.response.streaming_content)  # type: ignore[attr-defined]
        while not self._enough(op.size, op.sniff):
            assert self.sync_iter is not None
            try:
                self._hold(next(self.sync_iter))
            except StopIteration:
                self.ended = True
        return b"".join(self.held)

    async def aread(self, op: _Op, runtime: Runtime) -> bytes:
        if not self.response.streaming and not self.ended:
            self._load_content()
        if self.ended:
            return b"".join(self.held)
        if not self.is_async:  # a file or a sync iterator: read it in a worker thread
            return await runtime.run_blocking(self.read, op)
        return await self._aread_stream(op)

    async def _aread_stream(self, op: _Op) -> bytes:
        if self.async_iter is None:
            self.async_iter = aiter(self.response.streaming_content)  # type: ignore[attr-defined]
        while not self._enough(op.size, op.sniff):
            try:
                self._hold(await anext(self.async_iter))
            except StopAsyncIteration:
                self.ended = True
        return b"".join(self.held)

    def _hold(self, chunk: bytes) -> None:
        if chunk:
            self.held.append(chunk)
            self.size += len(chunk)

    async def aclose_unread(self) -> None:
        """Close an async body abandoned part way (a sync one closes with the response)."""
        if self.async_iter is not None and not self.ended:
            aclose = getattr(self.async_iter, "aclose", None)
            if aclose is not None:
                await aclose()

    def close_unread(self) -> None:
        if self.async_iter is not None and not self.ended:
            async_to_sync(self.aclose_unread)()

    def restore(self) -> None:
        """The response passes: put what was read back in front of the rest."""
        if not self.touched:
            return
        held = self.held
        if self.async_iter is not None:
            rest = self.async_iter

            async def chained() -> AsyncIterator[bytes]:
                for chunk in held:
                    yield chunk
                async for chunk in rest:
                    yield chunk

            self.response.streaming_content = chained()  # type: ignore[attr-defined]
        elif self.sync_iter is not None:
            streaming = itertools.chain(held, self.sync_iter)
            self.response.streaming_content = streaming  # type: ignore[attr-defined]


# --- sending --------------------------------------------------------------------------------


def _headers(response: HttpResponseBase) -> http.Headers:
    return [
        (name.lower().encode("latin-1", "replace"), value.encode("latin-1", "replace"))
        for name, value in response.items()
    ]


def _set_headers(response: HttpResponseBase, headers: http.Headers) -> None:
    """Replace the response's headers, keeping the spelling of names it already had."""
    spelled = {name.lower(): name for name in response.headers}
    fresh: dict[str, str] = {}
    for name, value in headers:
        key = name.decode("latin-1")
        fresh[spelled.get(key, key)] = value.decode("latin-1")
    response.headers = ResponseHeaders(fresh)


def _finish(response: HttpResponseBase, body: _Body, reply: Reply | None) -> HttpResponseBase:
    if reply is None:
        body.restore()
        return response
    if reply.status != response.status_code:
        response.status_code = reply.status
        response.reason_phrase = None  # type: ignore[assignment]
    if reply.blocked:
        response.cookies = SimpleCookie()
    if response.streaming:  # the same kind of iterator as before, as the handler expects
        content: Any = _one_async(reply.body) if body.is_async else [reply.body]
        response.streaming_content = content  # type: ignore[attr-defined]
    else:
        response.content = reply.body  # type: ignore[attr-defined]
    _set_headers(response, reply.headers)
    return response


async def _one_async(body: bytes) -> AsyncIterator[bytes]:
    yield body


def _reply_response(reply: Reply) -> HttpResponseBase:
    from django.http import HttpResponse

    response = HttpResponse(reply.body, status=reply.status)
    _set_headers(response, reply.headers)
    return response
