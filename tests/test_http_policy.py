"""The sans-I/O HTTP policy: request headers, response decisions, replies."""

from __future__ import annotations

import gzip
import zlib

import pytest

from safemedia import Config
from safemedia.http import (
    ResponseAction,
    UninspectableError,
    apply_to_environ,
    apply_to_headers,
    block_reply,
    decode_for_scan,
    finalise_passed,
    headers_from_environ,
    plan_after_sniff,
    plan_request,
    plan_response,
    sniff_image,
    sniff_needs_more,
    tag_etag,
)
from safemedia.verdict import Reason, Verdict, VerdictKind
from tests.synthetic import jpeg, png

CONFIG = Config(max_body_bytes=1000)


def plan(path: str, headers: list[tuple[bytes, bytes]], method: str = "GET", gen: int = 7):  # type: ignore[no-untyped-def]
    return plan_request(method, "Example.org", path, "", headers, generation=gen)


def test_range_and_if_range_are_stripped_from_get_requests() -> None:
    rq = plan("/media/a.jpg", [(b"range", b"bytes=0-"), (b"if-range", b'"x"'), (b"accept", b"*/*")])
    assert apply_to_headers([(b"range", b"bytes=0-"), (b"accept", b"*/*")], rq) == [
        (b"accept", b"*/*")
    ]
    assert rq.strip >= {b"range", b"if-range"}


def test_range_is_kept_on_video_paths() -> None:
    rq = plan("/media/clip.mp4", [(b"range", b"bytes=100-")])
    assert not rq.changes_headers


def test_post_requests_are_left_alone() -> None:
    rq = plan("/upload", [(b"range", b"bytes=0-")], method="POST")
    assert not rq.changes_headers


def test_etag_tag_round_trips_to_the_original_for_the_current_generation() -> None:
    tagged = tag_etag(b'"abc"', 7).decode()
    rq = plan("/a.jpg", [(b"if-none-match", tagged.encode())])
    assert rq.revalidated
    assert rq.set == ((b"if-none-match", b'"abc"'),)
    weak = tag_etag(b'W/"abc"', 7).decode()
    rq = plan("/a.jpg", [(b"if-none-match", weak.encode())])
    assert rq.set == ((b"if-none-match", b'W/"abc"'),)


def test_validators_from_an_older_list_generation_are_dropped() -> None:
    stale = tag_etag(b'"abc"', 6)
    rq = plan("/x", [(b"if-none-match", stale), (b"if-modified-since", b"Mon, 1 Jan 2024")])
    assert rq.strip == {b"if-none-match", b"if-modified-since"}
    assert not rq.revalidated


def test_untagged_validators_are_dropped_wherever_an_image_may_be_served() -> None:
    for path in ("/a.png", "/media/123", "/"):
        assert plan(path, [(b"if-none-match", b'"abc"')]).strip == {
            b"if-none-match",
            b"if-modified-since",
        }
        assert plan(path, [(b"if-modified-since", b"x")]).strip == {b"if-modified-since"}
    assert not plan("/style.css", [(b"if-none-match", b'"abc"')]).changes_headers
    assert not plan("/style.css", [(b"if-modified-since", b"x")]).changes_headers


def test_safemedia_own_etag_is_validated_by_digest() -> None:
    own = tag_etag(None, 7, "ab" * 32)
    rq = plan("/a", [(b"if-none-match", own)])
    assert rq.self_validate == {"ab" * 16}
    assert b"if-none-match" in rq.strip


def test_malformed_if_none_match_is_not_honoured() -> None:
    rq = plan("/a", [(b"if-none-match", b"abc~sm7")])
    assert b"if-none-match" in rq.strip


def test_environ_helpers_strip_and_set() -> None:
    environ = {"HTTP_RANGE": "bytes=0-", "HTTP_IF_NONE_MATCH": tag_etag(b'"e"', 7).decode()}
    rq = plan("/a.jpg", headers_from_environ(environ))
    apply_to_environ(environ, rq)
    assert environ == {"HTTP_IF_NONE_MATCH": '"e"'}


def response(  # type: ignore[no-untyped-def]
    headers: list[tuple[bytes, bytes]] | list[tuple[str, str]],
    status: int = 200,
    method: str = "GET",
):
    return plan_response(
        plan("/x", [], method=method), status, headers, CONFIG, sniff_labelled=True
    )


@pytest.mark.parametrize(
    ("content_type", "action"),
    [
        (b"image/jpeg", ResponseAction.INSPECT),
        (b"IMAGE/PNG; q=1", ResponseAction.INSPECT),
        (b"image/svg+xml", ResponseAction.SNIFF),
        (b"text/html; charset=utf-8", ResponseAction.SNIFF),
        (b"application/octet-stream", ResponseAction.SNIFF),
        (b"text/event-stream", ResponseAction.PASS),
    ],
)
def test_responses_are_classified_by_content_type(content_type: bytes, action: object) -> None:
    assert response([(b"content-type", content_type)]).action is action


def test_missing_content_type_is_sniffed_for_magic_bytes() -> None:
    rp = response([])
    assert rp.action is ResponseAction.SNIFF
    assert plan_after_sniff(rp, jpeg(1)[:32]).action is ResponseAction.INSPECT
    assert plan_after_sniff(rp, png(1)[:32]).action is ResponseAction.INSPECT
    assert plan_after_sniff(rp, b"PK\x03\x04 zip").action is ResponseAction.PASS


def test_labelled_non_images_pass_unsniffed_unless_asked() -> None:
    rq = plan("/x", [])
    assert plan_response(rq, 200, [(b"content-type", b"text/plain")], CONFIG).action is (
        ResponseAction.PASS
    )


def test_image_bytes_under_a_text_label_are_inspected() -> None:
    rp = response([(b"content-type", b"text/plain")])
    assert plan_after_sniff(rp, jpeg(1)[:32]).action is ResponseAction.INSPECT
    assert plan_after_sniff(rp, b"<!doctype html><html>").action is ResponseAction.PASS


def test_a_labelled_body_in_an_unknown_encoding_passes_but_a_generic_one_does_not() -> None:
    br = (b"content-encoding", b"br")
    assert response([(b"content-type", b"text/css"), br]).action is ResponseAction.PASS
    assert response([br]).reason is Reason.UNKNOWN_ENCODING


def test_a_short_first_chunk_is_held_only_while_it_could_start_an_image() -> None:
    rp = response([(b"content-type", b"text/plain")])
    assert not sniff_needs_more(rp, b"first chunk\n")
    assert sniff_needs_more(rp, b"\xff\xd8")
    assert sniff_needs_more(rp, b"RIFF\x00\x00")
    assert sniff_needs_more(rp, b"\x00\x00\x00\x18ftypmp")
    assert not sniff_needs_more(rp, b"\x00" * 40)


def test_sniffing_sees_through_gzip() -> None:
    rp = response([(b"content-encoding", b"gzip")])
    assert plan_after_sniff(rp, gzip.compress(png(2))).action is ResponseAction.INSPECT


def test_sniffs_avif_and_webp_but_not_mp4() -> None:
    assert sniff_image(b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1")
    assert sniff_image(b"RIFF\x10\x00\x00\x00WEBPVP8 ")
    assert not sniff_image(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00isommp42")


def test_partial_image_is_uninspectable() -> None:
    rp = response([(b"content-type", b"image/jpeg")], status=206)
    assert (rp.action, rp.reason) == (ResponseAction.UNINSPECTABLE, Reason.PARTIAL_CONTENT)
    labelled = response([(b"content-type", b"text/plain")], status=206)
    assert plan_after_sniff(labelled, jpeg(1)[:32]).reason is Reason.PARTIAL_CONTENT


def test_unknown_encoding_is_uninspectable() -> None:
    rp = response([(b"content-type", b"image/jpeg"), (b"content-encoding", b"br")])
    assert (rp.action, rp.reason) == (ResponseAction.UNINSPECTABLE, Reason.UNKNOWN_ENCODING)


def test_declared_length_over_the_cap_is_too_large() -> None:
    rp = response([(b"content-type", b"image/jpeg"), (b"content-length", b"1001")])
    assert (rp.action, rp.reason) == (ResponseAction.UNINSPECTABLE, Reason.TOO_LARGE)


def test_head_responses_pass() -> None:
    assert response([(b"content-type", b"image/jpeg")], method="HEAD").action is (
        ResponseAction.PASS
    )


def test_304_to_a_revalidated_request_gets_a_tagged_etag() -> None:
    rq = plan("/a.jpg", [(b"if-none-match", tag_etag(b'"abc"', 7))])
    rp = plan_response(rq, 304, [(b"etag", b'"abc"')], CONFIG)
    assert rp.action is ResponseAction.PASS
    assert rp.headers == [(b"etag", tag_etag(b'"abc"', 7))]


def test_gzip_and_deflate_bodies_are_decoded_with_a_bound() -> None:
    body = png(3)
    assert decode_for_scan(gzip.compress(body), ("gzip",), 10_000) == body
    assert decode_for_scan(zlib.compress(body), ("deflate",), 10_000) == body
    raw = zlib.compressobj(wbits=-15)
    assert decode_for_scan(raw.compress(body) + raw.flush(), ("deflate",), 10_000) == body
    with pytest.raises(UninspectableError) as bomb:
        decode_for_scan(gzip.compress(b"\0" * 1_000_000), ("gzip",), 10_000)
    assert bomb.value.reason is Reason.TOO_LARGE
    with pytest.raises(UninspectableError) as cut:
        decode_for_scan(gzip.compress(body)[:-20], ("gzip",), 10_000)
    assert cut.value.reason is Reason.TRUNCATED


def test_block_reply_has_none_of_the_original_headers() -> None:
    reply = block_reply(Config(block_status=403, block_body="<p>no</p>"))
    assert reply.status == 403
    assert reply.body == b"<p>no</p>"
    assert dict(reply.headers) == {
        b"content-type": b"text/html; charset=utf-8",
        b"cache-control": b"no-store",
        b"x-content-type-options": b"nosniff",
        b"content-length": b"9",
    }
    assert block_reply(CONFIG, "HEAD").body == b""


def test_passed_response_gets_exact_length_and_a_tagged_etag() -> None:
    verdict = Verdict(kind=VerdictKind.CLEAN, sha256="cd" * 32, lists_generation=9)
    headers = finalise_passed(
        [
            (b"content-type", b"image/png"),
            (b"transfer-encoding", b"chunked"),
            (b"etag", b'"v1"'),
            (b"content-length", b"99"),
        ],
        b"12345",
        verdict,
    )
    assert headers == [
        (b"content-type", b"image/png"),
        (b"content-length", b"5"),
        (b"etag", b'W/"v1~sm9"'),
    ]
    own = dict(finalise_passed([], b"1", verdict))[b"etag"]
    assert own == b'W/"~' + b"cd" * 16 + b'~sm9"'


@pytest.mark.parametrize(
    "headers",
    [
        [("Content-Type", "image/jpeg"), ("Content-Length", "1001")],
        [("content-type", "IMAGE/PNG; q=1"), ("X-Other", "1")],
        [("CONTENT-TYPE", "text/html; charset=utf-8"), ("Set-Cookie", "a=b")],
        [("Content-Type", "text/css"), ("Content-Encoding", "br")],
        [("Content-Encoding", "gzip"), ("content-encoding", "deflate")],
        [("Content-Type", "text/plain"), ("Content-Type", "image/gif")],
        [("Content-Type", "text/event-stream")],
        [("Content-Length", "12")],
        [],
    ],
)
def test_wsgi_str_headers_are_planned_as_their_bytes_form(headers: list[tuple[str, str]]) -> None:
    as_bytes = [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in headers]
    for status in (200, 206):
        assert response(headers, status=status) == response(as_bytes, status=status)


def test_a_304_with_wsgi_headers_gets_a_tagged_etag() -> None:
    rq = plan("/a.jpg", [(b"if-none-match", tag_etag(b'"abc"', 7))])
    rp = plan_response(rq, 304, [("ETag", '"abc"')], CONFIG)
    assert rp.headers == [(b"etag", tag_etag(b'"abc"', 7))]
