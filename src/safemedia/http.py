"""The sans-I/O HTTP policy every adapter shares: what is in scope, what to strip, what to send.

This module knows HTTP but no framework and does no I/O. An adapter (``safemedia.asgi``,
``safemedia.wsgi``, the Flask and Django integrations) only moves bytes; every decision is made
here or in :class:`safemedia.runtime.Runtime`, which adds the engine and the recorder.

Headers are :data:`Headers`: a list of ``(name, value)`` byte pairs with lowercase names, as
ASGI carries them. WSGI adapters convert with :func:`headers_from_wsgi` / :func:`headers_to_wsgi`
(response headers) and :func:`headers_from_environ` / :func:`apply_to_environ` (request headers).

How an adapter uses it, for every request::

    if runtime.stand_in(method, path, request_headers) is None:  # most: a stand-in (memory)
        rq = runtime.plan_request(method, host, path, query, request_headers, client=...)
        if rq.blocked:                             # a blocked URL: never call the app
            reply = runtime.block_reply(rq)        # send reply.status/headers/body
        request_headers = apply_to_headers(request_headers, rq)   # Range, stale validators gone
    ... call the app; when it starts its response (status, headers): ...
    rp = plan_response(rq or unplanned(method), status, response_headers, runtime.config)
    any action below that holds the response or records something first makes the plan
    (runtime.plan_request) if the request had none
    rp.action is PASS:           send rp.headers (or the original headers when None), then the
                                 body untouched and streamed
    rp.action is SNIFF:          hold the start; buffer until SNIFF_BYTES of body (or its end);
                                 rp = plan_after_sniff(rp, prefix) and go on with the new action
    rp.action is UNINSPECTABLE:  reply = runtime.conclude_uninspectable(rq, rp, status, headers)
                                 None -> allowed by config: pass the original through, streamed;
                                 else send the reply and discard the app's body (close it)
    rp.action is INSPECT:        buffer the body; if it grows past rp.limit stop and call
                                 conclude_uninspectable with Reason.TOO_LARGE (None -> send what
                                 was buffered, then stream the rest); at the end
                                 reply = runtime.conclude(rq, rp, status, headers, body)
                                 and send reply.status, reply.headers, reply.body.

``Runtime.conclude`` and ``conclude_uninspectable`` block (hashing, the durable record): an
async adapter runs them in ``runtime.run_blocking`` (worker threads, bounded); a sync adapter
calls them directly. They never raise. For ``HEAD`` the replies' bodies are already empty.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from operator import itemgetter
from typing import Any

from safemedia.config import Config
from safemedia.events import Action, Detection, url_key
from safemedia.verdict import Reason, Verdict, VerdictKind

__all__ = [
    "GENERIC_CONTENT_TYPES",
    "NON_IMAGE_PATH_SUFFIXES",
    "RANGE_KEEPING_SUFFIXES",
    "SNIFF_BYTES",
    "VALIDATOR_ENVIRON_KEYS",
    "Headers",
    "Judgement",
    "Reply",
    "Request",
    "RequestPlan",
    "ResponseAction",
    "ResponsePlan",
    "UninspectableError",
    "WSGIHeaders",
    "apply_to_environ",
    "apply_to_headers",
    "block_reply",
    "conservative_plan",
    "decode_for_scan",
    "detection_for",
    "finalise_passed",
    "has_request_validators",
    "headers_from_environ",
    "headers_from_wsgi",
    "headers_to_wsgi",
    "is_image_content_type",
    "judge",
    "not_modified_reply",
    "plan_after_sniff",
    "plan_request",
    "plan_response",
    "sniff_image",
    "sniff_needs_more",
    "tag_etag",
    "uninspectable_verdict",
    "unplanned",
]

Headers = list[tuple[bytes, bytes]]
"""HTTP headers as ``(name, value)`` byte pairs, names lowercase (the ASGI form)."""

SNIFF_BYTES = 32
"""Body bytes needed to recognise an image by its magic bytes."""

GENERIC_CONTENT_TYPES = frozenset(
    {
        b"",
        b"application/octet-stream",
        b"binary/octet-stream",
        b"application/x-octet-stream",
        b"application/unknown",
        b"application/x-unknown",
        b"unknown/unknown",
    }
)
"""Content types that say nothing: the body is sniffed for image magic bytes."""

NON_IMAGE_PATH_SUFFIXES = (
    ".html",
    ".htm",
    ".css",
    ".js",
    ".mjs",
    ".json",
    ".xml",
    ".txt",
    ".csv",
    ".map",
    ".svg",
    ".woff",
    ".woff2",
    ".ttf",
    ".otf",
    ".pdf",
)
"""Paths that do not serve raster images; on every other path (``/media/123`` too), validators
safemedia did not issue are not honoured, so a cache from before safemedia cannot be revalidated."""

RANGE_KEEPING_SUFFIXES = (
    ".mp4",
    ".m4v",
    ".webm",
    ".mov",
    ".mkv",
    ".ogv",
    ".mp3",
    ".m4a",
    ".ogg",
    ".oga",
    ".opus",
    ".wav",
    ".flac",
    ".aac",
)
"""Audio/video paths keep ``Range`` (seeking); an image that still arrives as 206 is blocked."""

_NO_IMAGE_SUFFIXES = NON_IMAGE_PATH_SUFFIXES + RANGE_KEEPING_SUFFIXES

_NOT_MODIFIED_KEEP = frozenset(
    {b"cache-control", b"content-location", b"date", b"etag", b"expires", b"vary"}
)
_DROP_WHEN_PASSED = frozenset({b"content-length", b"transfer-encoding", b"etag"})
_DECODABLE = {b"gzip": "gzip", b"x-gzip": "gzip", b"deflate": "deflate"}
_NEVER_SNIFFED = frozenset({b"text/event-stream"})
_REQUEST_HEADERS = {b"range": 0, b"if-range": 0, b"if-none-match": 1, b"if-modified-since": 2}
REQUEST_VALIDATORS: Mapping[bytes, int] = _REQUEST_HEADERS
"""The request headers :func:`plan_request` may strip or rewrite (lowercase), as keys."""
_ENVIRON_KEYS = tuple("HTTP_" + n.decode().upper().replace("-", "_") for n in _REQUEST_HEADERS)
VALIDATOR_ENVIRON_KEYS = frozenset(_ENVIRON_KEYS)
"""The WSGI environ keys of the request headers :func:`plan_request` reads (``Range``, ...):
a request whose environ has none of them has no validators (:func:`has_request_validators`).
A frozenset: ``environ.keys().isdisjoint()`` takes one ~40% faster than a tuple."""
_header_name = itemgetter(0)
_ETAG_RE = re.compile(r'\s*(W/)?"([^"]*)"\s*(?:,|$)')
_TAG_RE = re.compile(r"^(.*)~sm(w?)(-?[0-9a-f]+)$")


# --- requests ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Request:
    """The request as safemedia sees it. ``path`` is the full, percent-decoded path.

    Treat as immutable (not frozen only because frozen dataclasses cost ~1 us more to make,
    on every request).
    """

    method: str
    host: str
    path: str
    query: str = ""
    client: str | None = None

    @property
    def url(self) -> str:
        """The blocked-URL key, the same as :attr:`safemedia.events.Detection.url`."""
        return url_key(self.host, self.path, self.query)


@dataclass(slots=True)
class RequestPlan:
    """What to do with a request before the app sees it (treat as immutable).

    ``strip``: request header names to remove; ``set``: headers to put in their place (a
    rewritten ``If-None-Match``). ``generation``: the lists generation when the request came in.
    ``revalidated``: validators that safemedia issued for this generation were passed on, so a
    304 from the app gets its ETag tagged. ``self_validate``: digests from safemedia's own ETags;
    a passed 200 with one of them becomes a 304.
    """

    request: Request
    blocked: bool = False
    strip: frozenset[bytes] = frozenset()
    set: tuple[tuple[bytes, bytes], ...] = ()
    generation: int = 0
    revalidated: bool = False
    self_validate: frozenset[str] = frozenset()

    @property
    def changes_headers(self) -> bool:
        return bool(self.strip or self.set)


def plan_request(
    method: str,
    host: str,
    path: str,
    query: str,
    headers: Headers,
    *,
    generation: int,
    blocked: bool = False,
    client: str | None = None,
) -> RequestPlan:
    """Decide which request headers to strip or rewrite; ``blocked`` comes from the recorder.

    ``headers`` names must be lowercase (as ASGI servers and :func:`headers_from_environ` give
    them). GET and HEAD lose ``Range`` and ``If-Range`` (except on audio/video paths), so the app
    returns whole images. Conditional validators are honoured only when they are ETags that
    safemedia tagged for the lists generation in force; a stale tag drops ``If-None-Match`` and
    ``If-Modified-Since`` so the image is sent, and checked, again. On every path that may serve
    an image (all but known non-image suffixes), validators safemedia did not issue are dropped.
    """
    request = Request(method.upper(), host.lower(), path, query, client)
    if request.method not in ("GET", "HEAD"):
        return RequestPlan(request, generation=generation)
    if blocked:
        return RequestPlan(request, blocked=True, generation=generation)
    if not has_request_validators(headers):  # most requests
        return RequestPlan(request, generation=generation)
    range_value = inm = ims = None
    for name, value in headers:
        kind = _REQUEST_HEADERS.get(name)  # names are lowercase (ASGI servers, our helpers)
        if kind is None:
            continue
        if kind == 0:
            range_value = value
        elif kind == 1:
            inm = value
        else:
            ims = value
    if range_value is None and inm is None and ims is None:
        return RequestPlan(request, generation=generation)
    lowered = path.lower()
    strip: set[bytes] = set()
    if range_value is not None and not lowered.endswith(RANGE_KEEPING_SUFFIXES):
        strip.update((b"range", b"if-range"))
    may_serve_image = not lowered.endswith(_NO_IMAGE_SUFFIXES)
    set_headers: tuple[tuple[bytes, bytes], ...] = ()
    revalidated = False
    self_validate: frozenset[str] = frozenset()
    if inm is not None:
        originals, synthetic, fresh, untagged = _read_if_none_match(inm, generation)
        if not fresh or (untagged and may_serve_image):
            strip.update((b"if-none-match", b"if-modified-since"))
        elif len(originals) + len(synthetic) > untagged:
            self_validate = frozenset(synthetic)
            if originals:
                strip.add(b"if-none-match")
                set_headers = ((b"if-none-match", ", ".join(originals).encode("latin-1")),)
                revalidated = True
            elif synthetic:
                strip.update((b"if-none-match", b"if-modified-since"))
    elif ims is not None and may_serve_image:
        strip.add(b"if-modified-since")
    return RequestPlan(
        request,
        strip=frozenset(strip),
        set=set_headers,
        generation=generation,
        revalidated=revalidated,
        self_validate=self_validate,
    )


def has_request_validators(headers: Headers) -> bool:
    """Whether ``headers`` (lowercase names) hold ``Range``, ``If-Range``, ``If-None-Match`` or
    ``If-Modified-Since``: the headers :func:`plan_request` may strip or rewrite."""
    for name, _ in headers:  # noqa: SIM110 (a loop: cheaper than any() or a set operation)
        if name in _REQUEST_HEADERS:
            return True
    return False


def unplanned(method: str) -> RequestPlan:
    """A stand-in plan for :func:`plan_response` while a request has none yet.

    For a request that needed no plan before the app (:meth:`safemedia.runtime.Runtime.stand_in`
    said so): it tells :func:`plan_response` only the method. Never pass it on to record or
    conclude anything: plan the request then (its host and path are empty here).
    """
    return _UNPLANNED_HEAD if method == "HEAD" or method.upper() == "HEAD" else _UNPLANNED


def conservative_plan(method: str, path: str) -> RequestPlan:
    """A plan for a request that could not be planned: range and validators all stripped."""
    strip = frozenset({b"range", b"if-range", b"if-none-match", b"if-modified-since"})
    return RequestPlan(Request(method.upper(), "", path), strip=strip)


def _read_if_none_match(value: bytes, generation: int) -> tuple[list[str], list[str], bool, int]:
    """Split an ``If-None-Match`` into (tags for the app, own digests, all fresh, untagged)."""
    text = value.decode("latin-1")
    if text.strip() == "*":
        return [], [], True, 1
    originals: list[str] = []
    synthetic: list[str] = []
    fresh = True
    untagged = 0
    position = 0
    while position < len(text):
        m = _ETAG_RE.match(text, position)
        if m is None:  # malformed: honour nothing
            return [], [], False, 1
        position = m.end()
        weak, opaque = m.group(1), m.group(2)
        tag = _TAG_RE.match(opaque)
        if tag is None:
            untagged += 1
            originals.append(f'{weak or ""}"{opaque}"')
            continue
        if int(tag.group(3), 16) != generation:
            fresh = False
            continue
        inner = tag.group(1)
        if inner.startswith("~"):
            synthetic.append(inner[1:])
        else:
            originals.append(f'{"W/" if tag.group(2) else ""}"{inner}"')
    return originals, synthetic, fresh, untagged


def apply_to_headers(headers: Headers, plan: RequestPlan) -> Headers:
    """``headers`` with the plan's request headers stripped and set (ASGI scopes)."""
    if not plan.changes_headers:
        return headers
    out = [(n, v) for n, v in headers if n.lower() not in plan.strip]
    out.extend(plan.set)
    return out


def headers_from_environ(environ: Mapping[str, Any]) -> Headers:
    """The request headers that the policy reads, from a WSGI environ."""
    out: Headers = []
    if environ.keys().isdisjoint(VALIDATOR_ENVIRON_KEYS):  # most requests: one check, in C
        return out
    for key in _ENVIRON_KEYS:
        value = environ.get(key)
        if value is not None:
            out.append((key[5:].lower().replace("_", "-").encode(), str(value).encode("latin-1")))
    return out


def apply_to_environ(environ: MutableMapping[str, Any], plan: RequestPlan) -> None:
    """Strip and set the plan's request headers in a WSGI environ, in place."""
    for name in plan.strip:
        environ.pop("HTTP_" + name.decode().upper().replace("-", "_"), None)
    for name, value in plan.set:
        environ["HTTP_" + name.decode().upper().replace("-", "_")] = value.decode("latin-1")


def headers_from_wsgi(headers: Iterable[tuple[str, str]]) -> Headers:
    """WSGI ``start_response`` headers as :data:`Headers`."""
    return [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in headers]


def _as_headers(headers: Headers | WSGIHeaders) -> Headers:
    """:data:`Headers` from either form (WSGI ``str`` pairs are converted)."""
    if headers and isinstance(headers[0][0], str):
        return headers_from_wsgi(headers)  # type: ignore[arg-type]
    return headers  # type: ignore[return-value]


def headers_to_wsgi(headers: Headers) -> list[tuple[str, str]]:
    """:data:`Headers` as WSGI ``start_response`` headers."""
    return [(n.decode("latin-1"), v.decode("latin-1")) for n, v in headers]


# --- responses --------------------------------------------------------------------------------


class ResponseAction(Enum):
    """What the adapter does with the response body."""

    PASS = "pass"
    SNIFF = "sniff"
    INSPECT = "inspect"
    UNINSPECTABLE = "uninspectable"


@dataclass(slots=True)
class ResponsePlan:
    """The decision on a response's headers (treat as immutable: not frozen only for speed).

    ``headers``: for PASS, replacement headers to send instead of the original (a tagged 304),
    or None to send the original untouched. ``encodings``: content-codings to undo before
    scanning, outermost last. ``limit``: buffer at most this many bytes.
    """

    action: ResponseAction
    status: int = 200
    reason: Reason | None = None
    detail: str = ""
    content_type: str | None = None
    encodings: tuple[str, ...] = ()
    limit: int = 0
    content_length: int | None = None
    headers: Headers | None = None
    declared_non_image: bool = False


_UNPLANNED = RequestPlan(Request("GET", "", ""))
_UNPLANNED_HEAD = RequestPlan(Request("HEAD", "", ""))
_PASS = ResponsePlan(ResponseAction.PASS)
_SNIFF = ResponseAction.SNIFF  # an enum member read through its class costs ~70 ns (3.11)
_LABELLED_PLANS: dict[int, ResponsePlan] = {}
"""The SNIFF plans of labelled, unencoded bodies by status (for the last limit asked for):
shared, never changed."""


WSGIHeaders = Sequence[tuple[str, str]]
"""Response headers as a WSGI app gives them to ``start_response``: ``str`` pairs, any case."""

_RESPONSE_HEADERS: dict[bytes | str, int] = {
    b"content-type": 0,
    b"content-encoding": 1,
    b"content-length": 2,
    # WSGI headers, as apps spell them: found without lowercasing
    "content-type": 0,
    "content-encoding": 1,
    "content-length": 2,
    "Content-Type": 0,
    "Content-Encoding": 1,
    "Content-Length": 2,
}
_IMAGE, _GENERIC, _NEVER, _LABELLED = "image", "generic", "never sniffed", "labelled"
_MEDIA_KINDS: dict[bytes | str, tuple[bytes, str]] = {}
"""``Content-Type`` values seen (bytes, or WSGI ``str``), with their media type and kind (a few
hundred at most)."""


def _media_kind(value: bytes | str) -> tuple[bytes, str]:
    """The media type of a ``Content-Type`` value (lowercase, no parameters) and its kind."""
    known = _MEDIA_KINDS.get(value)
    if known is not None:
        return known
    raw = value.encode("latin-1") if isinstance(value, str) else value
    media_type = raw.split(b";", 1)[0].strip().lower()
    if is_image_content_type(media_type):
        kind = _IMAGE
    elif media_type in GENERIC_CONTENT_TYPES:
        kind = _GENERIC
    elif media_type in _NEVER_SNIFFED:
        kind = _NEVER
    else:
        kind = _LABELLED
    if len(_MEDIA_KINDS) < 512:
        _MEDIA_KINDS[value] = (media_type, kind)
    return media_type, kind


def is_image_content_type(media_type: bytes) -> bool:
    """``image/*`` except SVG (not raster); ``media_type`` lowercase without parameters."""
    return media_type.startswith(b"image/") and not media_type.startswith(b"image/svg")


def plan_response(
    rq: RequestPlan,
    status: int,
    headers: Headers | WSGIHeaders,
    config: Config,
    sniff_labelled: bool = False,
) -> ResponsePlan:
    """Decide from the status and headers whether the body is passed, sniffed or inspected.

    ``headers``: :data:`Headers`, or WSGI ``str`` pairs as the app gave them
    (:data:`WSGIHeaders`: not converted, only the few headers read here are).

    ``image/*`` (not SVG) is inspected. A generic or missing type is sniffed strictly (a 206 or
    an encoding that cannot be undone is uninspectable). With ``sniff_labelled`` every other
    body is sniffed too, leniently (an encoding that cannot be undone passes), because a
    browser shows image bytes in an ``<img>`` whatever their label; only ``text/event-stream``
    passes unsniffed. The ASGI adapter sniffs labelled bodies.
    """
    if status != 200:
        if status == 304:
            if rq.revalidated:
                tagged = _tag_headers(_as_headers(headers), rq)
                return ResponsePlan(ResponseAction.PASS, status, headers=tagged)
            return _PASS
        if status < 200 or status == 204:
            return _PASS
    if rq.request.method == "HEAD":
        return _PASS
    media_type: bytes | None = None
    kind = _GENERIC  # no Content-Type
    coding = b""
    length: bytes | str | None = None
    name: bytes | str
    for name, value in headers:
        header = _RESPONSE_HEADERS.get(name)
        if header is None and (
            name.islower() or (header := _RESPONSE_HEADERS.get(name.lower())) is None
        ):
            continue  # most headers: one dict look-up
        if not header:  # 0: content-type
            found = _MEDIA_KINDS.get(value) or _media_kind(value)
            if media_type is None or found[1] is _IMAGE:  # the first type, unless one is image/*
                media_type, kind = found
        elif header == 1:
            if isinstance(value, str):
                value = value.encode("latin-1")
            coding = value if not coding else coding + b"," + value
        else:
            length = value
    if kind is _LABELLED:
        if not sniff_labelled:
            return _PASS
        if not coding:  # the common case, kept cheap: a labelled body, sniffed as it comes
            plan = _LABELLED_PLANS.get(status)
            limit = config.max_body_bytes
            if plan is None or plan.limit != limit:
                plan = ResponsePlan(_SNIFF, status, limit=limit, declared_non_image=True)
                if len(_LABELLED_PLANS) < 256:
                    _LABELLED_PLANS[status] = plan
            return plan
        action, declared = ResponseAction.SNIFF, True
    elif kind is _IMAGE:
        action, declared = ResponseAction.INSPECT, False
    elif kind is _GENERIC:
        action, declared = ResponseAction.SNIFF, False
    else:  # never sniffed
        return _PASS
    content_type = media_type.decode("latin-1") or None if media_type else None
    encodings: tuple[str, ...] = ()
    reason: Reason | None = None
    detail = ""
    if coding and coding != b"identity":
        parsed = []
        for part in coding.split(b","):
            token = part.strip().lower()
            if not token or token == b"identity":
                continue
            decodable = _DECODABLE.get(token)
            if decodable is None:
                if declared:  # a labelled, encoded non-image body that cannot be read
                    return _PASS
                reason = Reason.UNKNOWN_ENCODING
                detail = f"content-encoding {token.decode('latin-1')!r}"
                break
            parsed.append(decodable)
        encodings = tuple(parsed)
    if reason is None and status == 206 and not declared:
        reason, detail = Reason.PARTIAL_CONTENT, "206 partial content"
    content_length: int | None = None
    if length is not None:
        try:
            content_length = int(length.strip())
        except ValueError:
            content_length = None
    plan = ResponsePlan(
        ResponseAction.UNINSPECTABLE if reason is not None else action,
        status,
        reason=reason,
        detail=detail,
        content_type=content_type,
        encodings=encodings,
        limit=config.max_body_bytes,
        content_length=content_length,
        declared_non_image=declared,
    )
    if action is ResponseAction.INSPECT:
        return _check_length(plan)
    return plan


def _check_length(plan: ResponsePlan) -> ResponsePlan:
    if plan.content_length is not None and plan.content_length > plan.limit:
        return replace(
            plan,
            action=ResponseAction.UNINSPECTABLE,
            reason=Reason.TOO_LARGE,
            detail=f"content-length {plan.content_length} > max_body_bytes {plan.limit}",
        )
    return plan


def plan_after_sniff(plan: ResponsePlan, prefix: bytes) -> ResponsePlan:
    """For a SNIFF plan: INSPECT (or UNINSPECTABLE) when ``prefix`` is an image, else PASS.

    ``prefix`` is the body so far: at least :data:`SNIFF_BYTES`, or all of it, or less when
    :func:`sniff_needs_more` says it already cannot start an image.
    """
    if plan.action is not _SNIFF:
        return plan
    if not sniff_image(_sniff_head(prefix, plan) if plan.encodings else prefix[:SNIFF_BYTES]):
        return _PASS
    if plan.status == 206:
        return replace(
            plan,
            action=ResponseAction.UNINSPECTABLE,
            reason=Reason.PARTIAL_CONTENT,
            detail="206 partial content",
        )
    return _check_length(replace(plan, action=ResponseAction.INSPECT))


def sniff_needs_more(plan: ResponsePlan, prefix: bytes) -> bool:
    """Whether a SNIFF plan must see more than ``prefix`` (an incomplete first chunk).

    False as soon as ``prefix`` has :data:`SNIFF_BYTES` or cannot be the start of an image,
    so a streamed text response is never held back waiting for a second chunk.
    """
    if len(prefix) >= SNIFF_BYTES:
        return False
    return _could_start_image(_sniff_head(prefix, plan))


def _sniff_head(prefix: bytes, plan: ResponsePlan) -> bytes:
    if not plan.encodings:
        return prefix[:SNIFF_BYTES]
    try:
        return decode_for_scan(prefix, plan.encodings, SNIFF_BYTES, partial=True)
    except UninspectableError:
        return b""


_MAGIC = (
    b"\xff\xd8\xff",  # JPEG
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",  # TIFF
    b"MM\x00*",
    b"\x00\x00\x01\x00",  # ICO
    b"\x00\x00\x02\x00",  # CUR
    b"\xff\x0a",  # JPEG XL codestream
    b"\x00\x00\x00\x0cJXL \r\n\x87\n",
    b"\x00\x00\x00\x0cjP  \r\n\x87\n",  # JPEG 2000
    b"8BPS",  # Photoshop
    b"qoif",
)


_MAGIC_FIRST_BYTES = frozenset(magic[0] for magic in (*_MAGIC, b"RIFF"))


def _could_start_image(head: bytes) -> bool:
    """Whether some longer body starting with ``head`` could be an image (for short heads)."""
    n = len(head)
    if n > 4 and head[4] != 0x66 and head[0] not in _MAGIC_FIRST_BYTES:  # 0x66: ftyp's "f"
        return False  # the common case (text), decided without trying every magic
    if any(magic[:n] == head[: len(magic)] for magic in _MAGIC):
        return True
    if b"RIFF"[:n] == head[:4] and (n <= 8 or b"WEBP".startswith(head[8:12])):
        return True
    if n >= 8:
        return head[4:8] == b"ftyp"  # brands follow, up to SNIFF_BYTES
    return b"ftyp".startswith(head[4:8])


_FTYP_IMAGE_BRANDS = frozenset(
    {b"avif", b"avis", b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}
)


def sniff_image(head: bytes) -> bool:
    """Whether ``head`` (the first bytes of a body, or all of it) starts like a raster image."""
    if not head or (head[0] not in _MAGIC_FIRST_BYTES and (len(head) < 8 or head[4] != 0x66)):
        return False  # most bodies (text): no slice made (0x66: ftyp's "f")
    if head.startswith(_MAGIC):
        return True
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return True
    if head[4:8] == b"ftyp":
        head = head[:SNIFF_BYTES]
        size = int.from_bytes(head[:4], "big")
        brands = head[8:12], *(head[i : i + 4] for i in range(16, min(size, len(head)), 4))
        return any(b in _FTYP_IMAGE_BRANDS for b in brands)
    return False


class UninspectableError(Exception):
    """The body cannot be inspected; ``reason`` says why."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def decode_for_scan(
    body: bytes, encodings: tuple[str, ...], limit: int, *, partial: bool = False
) -> bytes:
    """Undo gzip/deflate content-codings (last applied first), at most ``limit`` bytes out.

    Raises :class:`UninspectableError`: ``too_large`` past the limit (a decompression bomb),
    ``truncated`` or ``undecodable`` for a broken stream. With ``partial`` a short stream is
    fine and the output is cut at ``limit`` (for sniffing).
    """
    for coding in reversed(encodings):
        body = _inflate(body, coding, limit, partial)
    return body


def _inflate(data: bytes, coding: str, limit: int, partial: bool) -> bytes:
    attempts = (31,) if coding == "gzip" else (15, -15)
    for wbits in attempts:
        d = zlib.decompressobj(wbits)
        try:
            out = d.decompress(data, limit + 1)
        except zlib.error as exc:
            if wbits == attempts[-1]:
                raise UninspectableError(Reason.UNDECODABLE, f"{coding}: {exc}") from None
            continue
        if partial:
            return out[:limit]
        if len(out) > limit or d.unconsumed_tail:
            raise UninspectableError(Reason.TOO_LARGE, f"{coding} body inflates past {limit} bytes")
        if not d.eof:
            raise UninspectableError(Reason.TRUNCATED, f"{coding} stream ends early")
        return out
    raise AssertionError("unreachable")


# --- verdicts, replies ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    """A response for the adapter to send instead of (or as) the app's.

    ``parts``: when not empty, the body is these byte strings in order (``body`` is then
    empty), as the app sent them: an adapter sends them one after another, never joined.
    """

    status: int
    headers: Headers
    body: bytes = b""
    blocked: bool = False
    parts: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class Judgement:
    """What a verdict means for the response: block or not, and the detection to record."""

    block: bool
    detection: Detection | None = field(default=None)


def uninspectable_verdict(
    reason: Reason, detail: str, *, body: bytes | None = None, generation: int = 0
) -> Verdict:
    """A verdict for a body the HTTP layer could not hand to the engine."""
    digest = hashlib.sha256(body).hexdigest() if body is not None else ""
    return Verdict(
        kind=VerdictKind.UNINSPECTABLE,
        sha256=digest,
        reason=reason,
        detail=detail,
        lists_generation=generation,
    )


def judge(verdict: Verdict, rq: RequestPlan, config: Config, *, body: bytes | None) -> Judgement:
    """Match -> block; uninspectable -> block unless allowed; both recorded. Clean -> pass."""
    if verdict.is_clean:
        return Judgement(block=False)
    if verdict.is_match:
        block = True
    else:
        block = verdict.reason is None or config.blocks_uninspectable(verdict.reason)
    return Judgement(block=block, detection=detection_for(verdict, rq, config, block, body))


def detection_for(
    verdict: Verdict, rq: RequestPlan, config: Config, blocked: bool, body: bytes | None
) -> Detection:
    """The detection event for ``verdict`` on this request (never holds the body)."""
    r = rq.request
    md5 = verdict.hashes.get("md5", "")
    if not md5 and body is not None:
        md5 = hashlib.md5(body, usedforsecurity=False).hexdigest()
    return Detection(
        verdict=verdict,
        action=Action.BLOCKED if blocked else Action.ALLOWED,
        method=r.method,
        host=r.host,
        path=r.path,
        query=r.query,
        md5=md5,
        client=r.client if config.record_client_address else None,
    )


def block_reply(config: Config, method: str = "GET") -> Reply:
    """The block response: ``config.block_status``, short HTML, none of the original headers."""
    body = config.block_body.encode("utf-8")
    headers: Headers = [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"cache-control", b"no-store"),
        (b"x-content-type-options", b"nosniff"),
        (b"content-length", str(len(body)).encode()),
    ]
    return Reply(
        config.block_status, headers, b"" if method.upper() == "HEAD" else body, blocked=True
    )


def tag_etag(etag: bytes | None, generation: int, sha256: str = "") -> bytes:
    """An ETag naming the lists generation: ``W/"<orig>~sm<gen>"``.

    Without an original ETag, ``W/"~<digest>~sm<gen>"`` (safemedia validates it itself).
    """
    gen = format(generation, "x")
    if etag is None:
        return f'W/"~{sha256[:32]}~sm{gen}"'.encode()
    text = etag.decode("latin-1").strip()
    weak = text.startswith("W/")
    opaque = text[2:] if weak else text
    opaque = opaque.strip('"')
    return f'W/"{opaque}~sm{"w" if weak else ""}{gen}"'.encode("latin-1")


def _tag_headers(headers: Headers, rq: RequestPlan) -> Headers:
    return [(n, tag_etag(v, rq.generation) if n.lower() == b"etag" else v) for n, v in headers]


def finalise_passed(
    headers: Headers, body: bytes, verdict: Verdict, *, length: int | None = None
) -> Headers:
    """Headers for a passed, buffered body: exact Content-Length, no Transfer-Encoding, ETag
    tagged with the generation the verdict was made against. ``length``: the body's length when
    ``body`` is not given whole (held in parts)."""
    etag: bytes | None = None
    out: Headers = []
    for name, value in headers:
        n = name.lower()
        if n in _DROP_WHEN_PASSED:
            if n == b"etag" and etag is None:
                etag = value
            continue
        out.append((name, value))
    out.append((b"content-length", str(len(body) if length is None else length).encode()))
    out.append((b"etag", tag_etag(etag, verdict.lists_generation, verdict.sha256)))
    return out


def not_modified_reply(headers: Headers) -> Reply:
    """A 304 for a passed image whose digest matches the client's safemedia ETag."""
    kept = [(n, v) for n, v in headers if n.lower() in _NOT_MODIFIED_KEEP]
    return Reply(304, kept)
