"""PEP 3333 WSGI middleware: every image the app serves is checked before it is sent.

Usage::

    from safemedia import Config
    from safemedia.wsgi import SafeMediaMiddleware

    app.wsgi_app = SafeMediaMiddleware(app.wsgi_app, config=Config.from_file("safemedia.toml"))
    application = SafeMediaMiddleware(application)   # Config.load()

Every decision is made by :mod:`safemedia.http` and :class:`safemedia.runtime.Runtime`; this
module only moves bytes. A blocked URL is refused before the app is called. Every body's first
bytes are sniffed, whatever its label (a browser shows image bytes in an ``<img>`` whatever
their ``Content-Type``): a ``wsgi.file_wrapper``'s file is peeked without reading it, a stream
is held only until its first bytes cannot start an image. A response that is not an image is
then passed on untouched: the app's own iterable (a ``wsgi.file_wrapper`` too, when it was
peeked) and its ``write`` callable go straight to the server. An image is buffered up to
``max_body_bytes`` (from the iterable and from ``write``), the app's iterable is closed, and the
body is scanned before anything is sent. Lazy ``start_response`` (called on the first
iteration) and ``exc_info`` restarts are handled.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import itertools
import logging
import sys
import types
from collections.abc import Callable, Iterable, Iterator
from enum import Enum
from http import HTTPStatus
from types import CodeType
from typing import TYPE_CHECKING, Any

from safemedia import http
from safemedia.config import Config
from safemedia.http import Reply, RequestPlan, ResponseAction, ResponsePlan
from safemedia.runtime import Runtime
from safemedia.verdict import Reason

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

    from _typeshed import OptExcInfo

__all__ = ["SafeMediaMiddleware", "peek_file", "request_target"]

logger = logging.getLogger("safemedia")

Write = Any  # the server's ``write(data: bytes) -> object`` callable


class SafeMediaMiddleware:
    """Wrap a WSGI application so that every image it serves is checked first.

    ``config`` defaults to :meth:`Config.load`; pass ``runtime`` to share one
    :class:`~safemedia.runtime.Runtime` (engine, recorder, scan pool) with other adapters.
    """

    def __init__(
        self,
        app: WSGIApplication,
        config: Config | None = None,
        *,
        runtime: Runtime | None = None,
    ) -> None:
        self.app = app
        self.runtime = runtime if runtime is not None else Runtime(config)
        self._stand_in = self.runtime.stand_in

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        get = environ.get
        method = get("REQUEST_METHOD", "GET")
        try:
            path = get("SCRIPT_NAME", "") + get("PATH_INFO", "")  # request_path, ASCII, inline
            if type(path) is not str or not path.isascii():
                path = request_path(environ)
            stand_in = self._stand_in(
                method,
                path,
                _NO_HEADERS  # most requests: no list to build
                if environ.keys().isdisjoint(_VALIDATOR_KEYS)
                else http.headers_from_environ(environ),
            )
        except Exception:
            logger.exception("safemedia: error checking a request; planning it")
            stand_in = None
        exchange = _Exchange()  # no __init__ (see _Exchange)
        if stand_in is not None:  # most requests: no plan yet, what it is made of as it came
            host = get("HTTP_HOST") or _host(environ, None)
            exchange.target = (method, path, host, get("QUERY_STRING", ""), get("REMOTE_ADDR"))
        else:
            rq = self._plan_before_app(environ)
            if rq.blocked:
                reply = self.runtime.block_reply(rq)
                start_response(_status_line(reply.status), http.headers_to_wsgi(reply.headers))
                return [reply.body]
            exchange.target = _PLANNED
            exchange.rq = stand_in = rq
        exchange.runtime = self.runtime
        exchange.stand_in = stand_in
        exchange.server_start = start_response
        exchange.mode = _STARTING
        exchange.buffer = None
        return exchange.finish(self.app(environ, exchange.start_response))

    def _plan_before_app(self, environ: WSGIEnvironment) -> RequestPlan:
        """The plan of a request that may be blocked or carries validators or ``Range``, its
        stripped and rewritten headers applied to ``environ`` unless it is blocked."""
        try:
            rq = self.plan(environ)
        except Exception:
            logger.exception("safemedia: error planning a request; stripping all validators")
            try:
                path = request_path(environ)
            except Exception:
                path = ""
            rq = http.conservative_plan(str(environ.get("REQUEST_METHOD", "GET")), path)
        if not rq.blocked and (rq.strip or rq.set):  # rq.changes_headers, without a property
            http.apply_to_environ(environ, rq)
        return rq

    def plan(self, environ: WSGIEnvironment) -> RequestPlan:
        """The request's plan (:meth:`Runtime.plan_request`), from its environ."""
        method, host, path, query = request_target(environ)
        return self.runtime.plan_request(
            method,
            host,
            path,
            query,
            http.headers_from_environ(environ),
            client=environ.get("REMOTE_ADDR"),
        )


def request_target(environ: Any) -> tuple[str, str, str, str]:
    """``(method, host, path, query)`` of a WSGI environ (or a Django ``request.META``).

    ``path`` is :func:`request_path`; ``host`` is ``Host`` or ``SERVER_NAME[:SERVER_PORT]``.
    """
    get = environ.get
    method = str(get("REQUEST_METHOD", "GET"))
    return (
        method,
        _host(environ, get("HTTP_HOST")),
        request_path(environ),
        str(get("QUERY_STRING", "")),
    )


def request_path(environ: Any) -> str:
    """``SCRIPT_NAME + PATH_INFO`` of a WSGI environ, decoded as UTF-8 (PEP 3333 carries it as
    latin-1): the path of the request's blocked-URL key."""
    get = environ.get
    try:
        path = get("SCRIPT_NAME", "") + get("PATH_INFO", "")
    except TypeError:  # not str (a server bug): as str() reads them
        path = f"{get('SCRIPT_NAME', '')}{get('PATH_INFO', '')}"
    if type(path) is not str:  # both bytes, say
        path = f"{get('SCRIPT_NAME', '')}{get('PATH_INFO', '')}"
    if not path.isascii():  # ASCII reads the same either way
        with contextlib.suppress(UnicodeEncodeError):  # else a server already decoded it
            path = path.encode("latin-1").decode("utf-8", "replace")
    return path


def _host(environ: Any, host: object) -> str:
    """``host`` (a ``Host`` header), else ``SERVER_NAME[:SERVER_PORT]`` of ``environ``."""
    if host:
        return str(host)
    get = environ.get
    name = str(get("SERVER_NAME", ""))
    port = str(get("SERVER_PORT", ""))
    scheme = get("wsgi.url_scheme", "http")
    if port and (scheme, port) not in (("http", "80"), ("https", "443")):
        return f"{name}:{port}"
    return name


def _status_line(status: int, original: str = "") -> str:
    if original and original[:3] == str(status):
        return original
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Blocked" if status >= 400 else "OK"
    return f"{status} {phrase}"


_STATUS_CODES: dict[str, int] = {}
"""Status lines seen, with their codes (a few hundred at most)."""


def _status_code(status_line: str) -> int:
    """The code of a WSGI status line (``"200 OK"``); 0 when it has none."""
    code = _STATUS_CODES.get(status_line)
    if code is not None:
        return code
    try:
        code = int(status_line.split(None, 1)[0])
    except (ValueError, IndexError):
        return 0
    if len(_STATUS_CODES) < 256:
        _STATUS_CODES[status_line] = code
    return code


def peek_file(filelike: Any, size: int) -> bytes | None:
    """The first ``size`` bytes of a seekable binary file, leaving its position as it was.

    None when ``filelike`` is not such a file (then the body is read as it comes).
    """
    if filelike is None:
        return None
    try:
        if not filelike.seekable():
            return None
        position = filelike.tell()
        data = filelike.read(size)
        filelike.seek(position)
    except (AttributeError, OSError, ValueError):
        return None
    return data if isinstance(data, bytes) else None


def _peek(result: Iterable[bytes]) -> bytes | None:
    """The first bytes (at least :data:`http.SNIFF_BYTES`, or the whole body; a single chunk is
    returned whole) of a body that can be read without consuming it: a list or tuple of
    chunks, the chunk list inside a werkzeug ``ClosingIterator`` (what Flask returns), or the
    file inside a ``wsgi.file_wrapper`` (wsgiref's and gunicorn's ``filelike``, werkzeug's
    ``file``); else None.

    A Flask or werkzeug response returns ``ClosingIterator(_iter_encoded(response.response))``,
    whose ``_next`` is ``partial(next, generator)``; when that generator is werkzeug's and has
    not started, the list or tuple it iterates is the body (``str`` chunks are UTF-8 encoded).
    Anything else (a streamed response, another iterator): None, and the body is read as it
    comes.
    """
    kind = type(result)
    step: Any
    generator: Any
    if kind is _closing_iterator:  # werkzeug's (Flask's), once seen: _next = partial(next, it)
        try:
            step = result._next  # type: ignore[attr-defined]
            if step.func is not next:
                return None
            generator = step.args[0]
        except (AttributeError, IndexError):
            return None
    elif kind is list or kind is tuple:
        return _head(result, text=False)  # type: ignore[arg-type]
    else:
        step = getattr(result, "_next", None)
        if step is None:
            filelike = getattr(result, "filelike", None) or getattr(result, "file", None)
            return peek_file(filelike, _SNIFF_BYTES)
        if type(step) is not _partial:
            return None
        args = step.args
        if len(args) != 1 or step.func is not next:
            return None
        generator = args[0]
    chunks: Any
    try:
        # werkzeug's encoder, unstarted: not suspended (nor running: that is only possible
        # inside its own body, which does not call back here); gi_code: a generator
        if (
            generator.gi_code is not (_werkzeug_encoder or _find_werkzeug_encoder())
            or generator.gi_suspended
        ):
            return None  # not werkzeug's, or already started
        if _encoder_iterable is _last_referent:  # the call inlined: this runs for every request
            chunks = _get_referents(generator)[-1]
        else:
            chunks = _encoder_iterable(generator)
    except (AttributeError, IndexError):  # not a generator; no referents
        return None
    kind = type(chunks)
    if kind is list or kind is tuple:
        if len(chunks) == 1:  # the common case: one chunk, the whole body
            chunk = chunks[0]
            if type(chunk) is bytes:
                return chunk
        return _head(chunks, text=True)
    return None


def _head(chunks: list[Any] | tuple[Any, ...], *, text: bool) -> bytes | None:
    """The first :data:`http.SNIFF_BYTES` (or fewer) of a list of chunks, a single chunk whole;
    ``text``: ``str`` chunks are sent UTF-8 encoded (werkzeug). None for a chunk that is not
    bytes."""
    if len(chunks) == 1:  # the common case: one chunk, the whole body
        chunk = chunks[0]
        if type(chunk) is bytes:
            return chunk
    head = b""
    for chunk in chunks:
        if text and type(chunk) is str:
            chunk = chunk.encode()
        try:
            head += chunk
        except TypeError:  # not bytes: read it as it comes (the server will complain)
            return None
        if len(head) >= http.SNIFF_BYTES:
            break
    return head


_partial = functools.partial
_Generator = types.GeneratorType
_get_referents = gc.get_referents
_werkzeug_encoder: CodeType | None = None  # the code of werkzeug's _iter_encoded, once seen
_closing_iterator: type | None = None  # werkzeug's ClosingIterator, once seen


def _frame_iterable(generator: Any) -> object:
    """The ``iterable`` argument of an unstarted ``_iter_encoded`` generator, from its frame."""
    frame = generator.gi_frame  # None once finished
    return None if frame is None else frame.f_locals.get("iterable")


def _last_referent(generator: Any) -> object:
    """The same, without making a frame object and its locals (it costs ~2 us a Flask
    request in a server's cold caches): CPython lists an unstarted generator's arguments last
    among its referents. Used only once a probe showed it (:func:`_find_werkzeug_encoder`)."""
    found = _get_referents(generator)
    return found[-1] if found else None


_encoder_iterable: Callable[[Any], object] = _frame_iterable


def _find_werkzeug_encoder() -> CodeType | None:
    """The code of werkzeug's ``_iter_encoded`` (kept once found), or None; also picks how its
    argument is read (:func:`_last_referent` if a probe generator gives its list back)."""
    global _werkzeug_encoder, _encoder_iterable, _closing_iterator
    encoder = getattr(sys.modules.get("werkzeug.wrappers.response"), "_iter_encoded", None)
    if not isinstance(encoder, types.FunctionType):
        return None
    closing = getattr(sys.modules.get("werkzeug.wsgi"), "ClosingIterator", None)
    if isinstance(closing, type):
        _closing_iterator = closing
    probe_body: list[bytes] = []
    try:
        probe = encoder(probe_body)
        if type(probe) is _Generator and _last_referent(probe) is probe_body:
            _encoder_iterable = _last_referent
        probe.close()
    except Exception:  # another signature (werkzeug 2 had a charset): read from the frame
        logger.debug("safemedia: werkzeug's encoder probe failed", exc_info=True)
    _werkzeug_encoder = encoder.__code__
    return _werkzeug_encoder


def _close(result: Iterable[bytes]) -> None:
    close = getattr(result, "close", None)
    if close is not None:
        close()


class _Mode(Enum):
    STARTING = "starting"  # start_response not called yet
    SNIFF = "sniff"  # holding the start until the body's first bytes say what it is
    INSPECT = "inspect"  # buffering an image
    PASS = "pass"  # forwarded: the body goes to the server as it comes
    REPLY = "reply"  # decided: send ``reply``, discard the app's body


# Enum members read through their class cost ~70 ns each on Python 3.11: the per-request path
# reads these module constants instead.
_STARTING = _Mode.STARTING
_SNIFF = _Mode.SNIFF
_INSPECT = _Mode.INSPECT
_PASS = _Mode.PASS
_REPLY = _Mode.REPLY
_ACT_PASS = ResponseAction.PASS
_ACT_SNIFF = ResponseAction.SNIFF
_ACT_UNINSPECTABLE = ResponseAction.UNINSPECTABLE


Target = tuple[str, str, Any, Any, Any]
"""``(method, path, host, query, client)`` of a request not planned before the app: what its
plan is made of if its response is held, as the environ had them before the app was called."""

_PLANNED: Target = ("", "", None, None, None)
"""The target of a request whose plan is made (``_Exchange.rq``): not read."""
_NO_HEADERS: http.Headers = []  # never changed
_VALIDATOR_KEYS = http.VALIDATOR_ENVIRON_KEYS
_SNIFF_BYTES = http.SNIFF_BYTES
_sniff_image = http.sniff_image
_plan_response = http.plan_response


class _Exchange:
    """One request's response: a ``start_response`` for the app, then its body.

    Made by :class:`SafeMediaMiddleware` without an ``__init__`` (a class call runs one in a
    frame of its own: ~0.1 us), which sets ``runtime``, ``stand_in``, ``target``,
    ``server_start``, ``mode`` and ``buffer``: only what every response needs, and ``rq`` for
    a request planned before the app (``target`` is then ``_PLANNED``). The body buffer
    (``buffer``, ``size``), the bytes held back when a response passes (``pending``), the
    ``reply`` and, for a request not planned before the app, its plan (``rq``, see
    :meth:`request`) are made only when a response is held. ``server_write`` is set once the
    start has gone to the server (mode ``_PASS``).
    """

    __slots__ = (
        "buffer",
        "headers",
        "mode",
        "pending",
        "plan",
        "reply",
        "rq",
        "runtime",
        "server_start",
        "server_write",
        "size",
        "stand_in",
        "status",
        "status_line",
        "target",
    )

    runtime: Runtime
    rq: RequestPlan  # set only once target is _PLANNED
    stand_in: RequestPlan  # rq, or http.unplanned(method) while there is none
    target: Target
    server_start: StartResponse
    mode: _Mode
    buffer: list[bytes] | None
    server_write: Write
    pending: list[bytes] | None
    reply: Reply
    size: int
    status_line: str
    status: int
    headers: list[tuple[str, str]]
    plan: ResponsePlan

    def request(self) -> RequestPlan:
        """The request's plan, made now if it was not needed before the app was called.

        Such a request is a GET or HEAD without ``Range`` or validators (headers: none to
        read), or another method (headers: not read).
        """
        if self.target is _PLANNED:
            return self.rq
        method, path, host, query, client = self.target
        try:
            rq = self.runtime.plan_request(
                method,
                str(host),
                path,
                str(query),
                [],  # none to read: see above
                client=client,
            )
        except Exception:
            logger.exception("safemedia: error planning a request; stripping all validators")
            rq = http.conservative_plan(method, path)
        self.rq, self.target = rq, _PLANNED
        return rq

    # --- what the app calls -------------------------------------------------------------------

    def start_response(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: OptExcInfo | None = None,
    ) -> Write:
        if exc_info is not None or self.mode is not _STARTING:
            if self._start_again(status, headers, exc_info):  # already forwarded
                return self._write if self.pending else self.server_write
            exc_info = None
        self.status_line = status
        self.headers = headers  # the app's own list, as servers keep it (copied once held: _take)
        if status == "200 OK":  # most responses: a fresh string each time, not hashed
            self.status = code = 200
        else:
            self.status = code = _STATUS_CODES.get(status) or _status_code(status)
            if not code:
                return self._forward(None)  # not HTTP the policy can read: the server complains
        try:  # every body sniffed (sniff_labelled), whatever its label
            plan = _plan_response(self.stand_in, code, headers, self.runtime.config, True)
        except Exception:  # headers a server would refuse too: fail closed, recorded
            logger.exception(
                "safemedia: unreadable response headers for %s", self.request().request.url
            )
            plan = ResponsePlan(
                _ACT_UNINSPECTABLE,
                code,
                reason=Reason.UNDECODABLE,
                detail="unreadable response headers",
            )
        if plan.action is _ACT_SNIFF:  # the common case (every labelled body), entered inline
            self.plan, self.mode = plan, _SNIFF
            return self._write
        return self._enter(plan)

    def _start_again(
        self, status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None
    ) -> bool:
        """``start_response`` with ``exc_info`` (or a second call without: an error): True when
        the response was already forwarded (then forwarded again), else False (started anew)."""
        if exc_info is None:
            raise AssertionError("start_response called a second time without exc_info")
        try:
            if self.mode is _PASS:
                # Already forwarded: the server re-raises if its headers went out.
                self.server_write = self.server_start(status, headers, exc_info)
                self.status_line, self.headers = status, list(headers)
                return True
        finally:
            exc_info = None
        self._restart()
        return False

    def _write(self, data: bytes) -> None:
        if self.mode is not _PASS:
            self._take(data)  # held; once it passes, what was held goes out at once
            if self.mode is not _PASS:
                return
            data = b""
        pending = self.pending
        while pending:
            self.server_write(pending.pop(0))
        if data:
            self.server_write(data)

    # --- decisions ------------------------------------------------------------------------------

    def _enter(self, plan: ResponsePlan) -> Write:
        self.plan = plan
        if plan.action is _ACT_PASS:
            return self._forward(plan.headers)
        if plan.action is _ACT_UNINSPECTABLE:
            self._uninspectable(None, "")
        else:
            self.mode = _SNIFF if plan.action is _ACT_SNIFF else _INSPECT
            if self.mode is _INSPECT and self.buffer is not None and self.size > plan.limit:
                self._too_large()
        return self._write

    def _forward(self, headers: http.Headers | None) -> Write:
        wsgi_headers = self.headers if headers is None else http.headers_to_wsgi(headers)
        self.server_write = self.server_start(self.status_line, wsgi_headers)
        self.mode = _PASS
        self.pending, self.buffer = self.buffer, None  # what was held goes out first
        return self._write if self.pending else self.server_write

    def _uninspectable(self, reason: Reason | None, detail: str) -> None:
        reply = self.runtime.conclude_uninspectable(self.request(), self.plan, reason, detail)
        if reply is None:  # allowed by config: the original goes on as it is
            self._forward(None)
        else:
            self._answer(reply)

    def _too_large(self) -> None:
        limit = self.plan.limit
        self._uninspectable(Reason.TOO_LARGE, f"body exceeds max_body_bytes {limit}")

    def _answer(self, reply: Reply) -> None:
        self.reply = reply
        self.mode = _REPLY
        self.buffer = None

    def _take(self, data: bytes) -> None:
        """Body bytes from the app (its iterable, or ``write`` before the response passes)."""
        mode = self.mode
        if mode is _PASS:
            if data:
                if self.pending is None:
                    self.pending = []
                self.pending.append(data)
            return
        if mode is _REPLY or not data:
            return
        if mode is _STARTING:
            raise AssertionError("the application sent a body before calling start_response")
        buffer = self.buffer
        if buffer is None:
            buffer = self.buffer = []
            self.size = 0
            self.headers = list(self.headers)  # held: what the app does to its list now is not sent
        buffer.append(data if type(data) is bytes else bytes(data))
        self.size += len(data)
        if mode is _SNIFF:
            prefix = buffer[0] if len(buffer) == 1 else b"".join(buffer)
            plan = self.plan
            if not http.sniff_needs_more(plan, prefix):
                if not plan.encodings and not _sniff_image(prefix):  # the common case
                    self._forward(None)  # plainly not an image: as http.plan_after_sniff says
                else:
                    self._enter(http.plan_after_sniff(plan, prefix))
        elif self.size > self.plan.limit:
            self._too_large()

    def _end(self) -> None:
        """The app's body is complete."""
        if self.mode is _STARTING:
            raise AssertionError("the application returned without calling start_response")
        if self.mode is _SNIFF:
            self._enter(http.plan_after_sniff(self.plan, b"".join(self.buffer or ())))
        if self.mode is _INSPECT:
            rq = self.request()
            try:
                headers = http.headers_from_wsgi(self.headers)  # only an image's are converted
            except Exception:  # headers a server would refuse too: fail closed, recorded
                logger.exception("safemedia: unreadable response headers for %s", rq.request.url)
                self._uninspectable(Reason.UNDECODABLE, "unreadable response headers")
                return
            body = b"".join(self.buffer or ())
            self.buffer = None
            self._answer(self.runtime.conclude(rq, self.plan, self.status, headers, body))

    def _restart(self) -> None:
        """``start_response`` again with ``exc_info`` before anything was forwarded."""
        self.mode = _STARTING
        self.buffer = self.pending = None

    # --- what the server gets -----------------------------------------------------------------

    def finish(self, result: Iterable[bytes]) -> Iterable[bytes]:
        """What to return to the server for the app's ``result``."""
        if self.mode is _SNIFF and self.buffer is None:
            head = _peek(result)
            if head is not None:  # a list or a file: its first bytes decide, nothing consumed
                plan = self.plan
                if not plan.encodings and not _sniff_image(head):  # the common case
                    # plainly not an image: what http.plan_after_sniff says too (PASS as it is)
                    self.mode, self.pending = _PASS, None  # (the plan is not read in _PASS)
                    self.server_write = self.server_start(self.status_line, self.headers)
                    return result  # untouched: file_wrapper and all
                self._enter(http.plan_after_sniff(plan, head))
        if self.mode is _PASS and not self.pending:
            return result  # untouched: file_wrapper and all
        iterator: Iterator[bytes] | None = None
        handed_on = False
        try:
            mode = self.mode
            if mode is not _PASS and mode is not _REPLY:  # not decided yet: read the body
                iterator = iter(result)
                for chunk in iterator:
                    self._take(chunk)
                    mode = self.mode
                    if mode is _PASS or mode is _REPLY:
                        break
                else:
                    self._end()
            if self.mode is _REPLY:
                reply = self.reply
                line = _status_line(reply.status, self.status_line)
                self.server_start(line, http.headers_to_wsgi(reply.headers))
                return [reply.body]
            handed_on = True
            held, self.pending = self.pending, None  # later write() calls go straight out
            passing = _Passing()  # no __init__ (see _Exchange)
            passing.result = result
            passing.body = itertools.chain(held or (), iterator or iter(result))
            return passing
        finally:
            if not handed_on:
                _close(result)


class _Passing:
    """The app's body, after the bytes that were held while deciding; closes the app's result."""

    __slots__ = ("body", "result")

    result: Iterable[bytes]  # the app's
    body: Iterator[bytes]  # what was held, then the rest of the app's

    def __iter__(self) -> Iterator[bytes]:
        return self.body

    def close(self) -> None:
        close = getattr(self.result, "close", None)  # _close, inline
        if close is not None:
            close()
