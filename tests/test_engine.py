"""The engine: exact and perceptual matches, decoding failures, cache, single flight, reload."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest
from PIL import Image

from safemedia.config import Config, ConfigError, ListConfig
from safemedia.engine import Engine
from safemedia.hashing import hash_image
from safemedia.hashlists import ListError
from safemedia.imaging import decode
from safemedia.verdict import Reason, VerdictKind
from tests.synthetic import encode, gif_sequence, jpeg, png

DIH = Path(__file__).parent / "fixtures" / "pdq" / "images" / "dih"
MODS = Path(__file__).parent / "fixtures" / "pdq" / "images" / "bridge-mods"
BRIDGE = (DIH / "bridge-1-original.jpg").read_bytes()
SHARPENED = (MODS / "sharpen-a-lot.jpg").read_bytes()  # 12 bits from BRIDGE


def pdq_of(body: bytes) -> str:
    frame = decode(body, max_pixels=10**8, max_frames=8).frames[0]
    return hash_image("pdq", frame).value.hex()


def engine_with(tmp_path: Path, text: str, **settings: object) -> Engine:
    f = tmp_path / "list.txt"
    f.write_text(text, encoding="utf-8")
    return Engine(Config(hash_lists=(ListConfig(path=f, name="known"),), **settings))  # type: ignore[arg-type]


def test_md5_list_matches_the_raw_bytes_even_if_undecodable(tmp_path: Path) -> None:
    body = b"not an image at all"
    engine = engine_with(tmp_path, f"md5 {hashlib.md5(body).hexdigest()} case 7\n")
    verdict = engine.scan(body)
    assert verdict.kind is VerdictKind.MATCH
    assert verdict.match is not None
    assert (verdict.match.list_name, verdict.match.entry_id) == ("known", "case 7")
    assert (verdict.match.algorithm, verdict.match.distance) == ("md5", 0)
    assert verdict.hashes["md5"] == hashlib.md5(body).hexdigest()


def test_a_reencoded_copy_matches_by_pdq_and_reports_distance(tmp_path: Path) -> None:
    engine = engine_with(tmp_path, f"pdq {pdq_of(BRIDGE)} bridge\n")
    copy = encode(Image.open(DIH / "bridge-1-original.jpg").convert("RGB"), "PNG")
    verdict = engine.scan(copy)
    assert verdict.is_match
    assert verdict.match is not None
    assert verdict.match.algorithm == "pdq"
    assert verdict.match.distance <= 31
    assert verdict.match.entry_id == "bridge"
    assert verdict.hashes["pdq"] == verdict.match.query_hash
    assert verdict.hashes["md5"] == hashlib.md5(copy).hexdigest()
    assert verdict.lists_generation == engine.lists_generation


@pytest.mark.parametrize("name", ["bridge-5-flipx.jpg", "bridge-3-rotate-180.jpg"])
def test_rotated_and_mirrored_copies_match_through_dihedral_hashes(
    tmp_path: Path, name: str
) -> None:
    engine = engine_with(tmp_path, f"pdq {pdq_of(BRIDGE)} bridge\n")
    assert engine.scan((DIH / name).read_bytes()).is_match
    plain = engine_with(tmp_path, f"pdq {pdq_of(BRIDGE)} bridge\n", dihedral=False)
    assert plain.scan((DIH / name).read_bytes()).is_clean


def test_unrelated_images_are_clean(tmp_path: Path) -> None:
    engine = engine_with(tmp_path, f"pdq {pdq_of(BRIDGE)} bridge\n")
    verdict = engine.scan(jpeg(3, (256, 256)))
    assert verdict.kind is VerdictKind.CLEAN
    assert set(verdict.hashes) == {"sha256", "pdq"}  # MD5 only when a list or report needs it


def test_per_list_distance_overrides_the_default(tmp_path: Path) -> None:
    copy = SHARPENED
    f = tmp_path / "list.txt"
    f.write_text(f"pdq {pdq_of(BRIDGE)}\n")
    distance = Engine(Config(hash_lists=(ListConfig(path=f),))).scan(copy).match
    assert distance is not None
    assert distance.distance > 0
    strict = Config(hash_lists=(ListConfig(path=f, distance=distance.distance - 1),))
    assert Engine(strict).scan(copy).is_clean
    global_strict = Config(hash_lists=(ListConfig(path=f),), distances={"pdq": 0})
    assert Engine(global_strict).scan(copy).is_clean


def test_changed_global_matching_settings_give_a_new_lists_generation(tmp_path: Path) -> None:
    text = f"pdq {pdq_of(BRIDGE)}\n"
    base = engine_with(tmp_path, text).lists_generation
    assert engine_with(tmp_path, text).lists_generation == base  # same settings, same number
    assert engine_with(tmp_path, text, distances={"pdq": 20}).lists_generation != base
    assert engine_with(tmp_path, text, dihedral=False).lists_generation != base


def test_low_quality_images_get_no_perceptual_verdict(tmp_path: Path) -> None:
    flat = encode(Image.new("RGB", (64, 64), (90, 90, 90)), "PNG")
    engine = engine_with(tmp_path, f"pdq {pdq_of(flat)} flat\n")
    verdict = engine.scan(flat)
    assert verdict.is_clean
    assert "quality" in verdict.detail
    loose = engine_with(tmp_path, f"pdq {pdq_of(flat)} flat\n", pdq_quality_min=0)
    assert loose.scan(flat).is_match


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", Reason.UNDECODABLE),
        (b"GIF89a garbage", None),
        (png(1)[:60], None),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n", Reason.UNSUPPORTED_FORMAT),
    ],
)
def test_bodies_that_cannot_be_decoded_are_uninspectable(
    tmp_path: Path, body: bytes, reason: Reason | None
) -> None:
    engine = engine_with(tmp_path, f"pdq {pdq_of(BRIDGE)}\n")
    verdict = engine.scan(body)
    assert verdict.kind is VerdictKind.UNINSPECTABLE
    assert verdict.reason is not None
    if reason is not None:
        assert verdict.reason is reason
    assert verdict.detail
    assert verdict.sha256 == hashlib.sha256(body).hexdigest()
    assert verdict.hashes["md5"] == hashlib.md5(body).hexdigest()  # for the report


def test_scan_never_raises_even_for_nonsense_input(tmp_path: Path) -> None:
    engine = engine_with(tmp_path, f"pdq {pdq_of(BRIDGE)}\n")
    verdict = engine.scan("not bytes")  # type: ignore[arg-type]
    assert verdict.kind is VerdictKind.UNINSPECTABLE
    assert engine.stats()["errors"] == 1


def test_repeat_scans_are_cache_hits(tmp_path: Path) -> None:
    engine = engine_with(tmp_path, f"pdq {pdq_of(BRIDGE)}\n")
    body = jpeg(5, (128, 128))
    first = engine.scan(body)
    assert engine.scan(body) is first
    stats = engine.stats()
    assert (stats["scans"], stats["cache_hits"], stats["clean"]) == (2, 1, 2)
    assert stats["seconds"] > 0
    assert stats["entries"] == {"pdq": 1}


def test_concurrent_scans_of_one_body_compute_once(tmp_path: Path) -> None:
    engine = engine_with(tmp_path, f"pdq {pdq_of(BRIDGE)}\n")
    body = BRIDGE
    start = threading.Barrier(8)
    verdicts = []

    def worker() -> None:
        start.wait()
        verdicts.append(engine.scan(body))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = engine.stats()
    assert stats["scans"] == 8
    assert stats["scans"] - stats["cache_hits"] - stats["coalesced"] == 1
    assert len({id(v) for v in verdicts}) == 1
    assert verdicts[0].is_match


def test_a_reloaded_list_is_not_answered_from_the_old_cache(tmp_path: Path) -> None:
    f = tmp_path / "list.txt"
    f.write_text("# algorithm: pdq\n", encoding="utf-8")
    engine = Engine(Config(hash_lists=(ListConfig(path=f),), list_reload_interval=0))
    before = engine.lists_generation
    assert engine.scan(BRIDGE).is_clean
    f.write_text(f"# algorithm: pdq\n{pdq_of(BRIDGE)} now listed\n", encoding="utf-8")
    verdict = engine.scan(BRIDGE)
    assert verdict.is_match
    assert verdict.lists_generation == engine.lists_generation != before


def test_store_allow_list_suppresses_a_match(tmp_path: Path) -> None:
    f = tmp_path / "list.txt"
    f.write_text(f"pdq {pdq_of(BRIDGE)}\n")
    reviewed = {hashlib.sha256(BRIDGE).hexdigest()}
    engine = Engine(Config(hash_lists=(ListConfig(path=f),)), is_allowed=reviewed.__contains__)
    assert engine.scan(BRIDGE).is_clean
    reviewed.clear()
    assert engine.scan(BRIDGE).is_match  # no stale clean verdict


def test_a_failing_store_lookup_does_not_let_a_match_through(tmp_path: Path) -> None:
    f = tmp_path / "list.txt"
    f.write_text(f"pdq {pdq_of(BRIDGE)}\n")

    def broken(_sha: str) -> bool:
        raise RuntimeError("database is locked")

    engine = Engine(Config(hash_lists=(ListConfig(path=f),)), is_allowed=broken)
    assert engine.scan(BRIDGE).is_match


def test_allow_list_files_by_sha256_and_by_perceptual_hash(tmp_path: Path) -> None:
    listed = tmp_path / "list.txt"
    listed.write_text(f"pdq {pdq_of(BRIDGE)}\n")
    copy = SHARPENED
    by_sha = tmp_path / "allow-sha.txt"
    by_sha.write_text(f"sha256 {hashlib.sha256(copy).hexdigest()} reviewed\n")
    by_pdq = tmp_path / "allow-pdq.txt"
    by_pdq.write_text(f"pdq {pdq_of(copy)} reviewed\n")
    for allow in (by_sha, by_pdq):
        config = Config(hash_lists=(ListConfig(path=listed),), allow_lists=(allow,))
        engine = Engine(config)
        assert engine.scan(copy).is_clean
        assert engine.scan(BRIDGE).is_match  # the listed image itself is still caught


def test_bad_lists_and_algorithms_are_refused_at_construction(tmp_path: Path) -> None:
    with pytest.raises(ListError, match=r"list.txt:1"):
        engine_with(tmp_path, "pdq 123\n")
    with pytest.raises(ConfigError, match="algorithms"):
        engine_with(tmp_path, "", algorithms=("md5",))


def test_animated_images_match_on_any_frame(tmp_path: Path) -> None:
    bridge = Image.open(DIH / "bridge-1-original.jpg").convert("RGB").resize((256, 192))
    frames = [Image.new("RGB", (256, 192), (10, 200 - 90 * i, 30)) for i in range(2)] + [bridge]
    body = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)
    engine = engine_with(tmp_path, f"pdq {pdq_of(encode(bridge, 'PNG'))} bridge\n")
    verdict = engine.scan(body)
    assert verdict.is_match
    assert verdict.match is not None
    assert verdict.match.frame == 2


def test_lists_generation_notices_a_change_without_a_scan(tmp_path: Path) -> None:
    f = tmp_path / "list.txt"
    f.write_text("# algorithm: md5\n", encoding="utf-8")
    engine = Engine(Config(hash_lists=(ListConfig(path=f),), list_reload_interval=0))
    before = engine.lists_generation
    f.write_text(f"# algorithm: md5\n{'0' * 32}\n", encoding="utf-8")
    assert engine.lists_generation != before
    assert engine.stats()["scans"] == 0


def test_phash_lists_match_when_phash_is_configured(tmp_path: Path) -> None:
    frame = decode(BRIDGE, max_pixels=10**8, max_frames=1).frames[0]
    listed = hash_image("phash", frame).value.hex()
    engine = engine_with(tmp_path, f"phash {listed} own-upload\n", algorithms=("pdq", "phash"))
    verdict = engine.scan(SHARPENED)
    assert verdict.match is not None
    assert (verdict.match.algorithm, verdict.match.entry_id) == ("phash", "own-upload")
    assert verdict.match.distance <= 8
    assert engine_with(tmp_path, f"phash {listed}\n").scan(SHARPENED).is_clean  # pdq only


def test_scans_stay_consistent_while_lists_reload(tmp_path: Path) -> None:
    f = tmp_path / "list.txt"
    listed = f"pdq {pdq_of(BRIDGE)} bridge\n"
    f.write_text(listed, encoding="utf-8")
    engine = Engine(Config(hash_lists=(ListConfig(path=f),), list_reload_interval=0))
    bodies = [BRIDGE, SHARPENED, jpeg(11, (96, 96))]
    stop = threading.Event()
    seen: list[tuple[bool, int]] = []

    def scanner() -> None:
        while not stop.is_set():
            for body in bodies:
                verdict = engine.scan(body)
                if body is BRIDGE:
                    seen.append((verdict.is_match, verdict.lists_generation))

    threads = [threading.Thread(target=scanner) for _ in range(3)]
    for t in threads:
        t.start()
    generations = {engine.lists_generation}
    for k in range(6):
        f.write_text(("# algorithm: pdq\n" if k % 2 else listed) + f"# edit {k}\n", "utf-8")
        generations.add(engine.lists_generation)
        stop.wait(0.05)  # let the scanners see this edit
    stop.set()
    for t in threads:
        t.join()
    generations.update(g for _, g in seen)
    stats = engine.stats()
    assert stats["errors"] == 0
    assert len(generations) > 1
    # each verdict agrees with the lists of its generation: listed in even edits, not in odd ones
    by_generation: dict[int, set[bool]] = {}
    for matched, generation in seen:
        by_generation.setdefault(generation, set()).add(matched)
    assert all(len(v) == 1 for v in by_generation.values())


def test_a_listed_frame_after_repeated_frames_matches_with_its_own_number(tmp_path: Path) -> None:
    bridge = Image.open(DIH / "bridge-1-original.jpg").convert("RGB").resize((256, 192))
    still = Image.new("RGB", (256, 192), (10, 120, 30))
    body = gif_sequence([still, bridge], [0] * 5 + [1] * 3, duration=50)  # repeated frames
    engine = engine_with(tmp_path, f"pdq {pdq_of(encode(bridge, 'GIF'))} bridge\n")
    verdict = engine.scan(body)
    assert verdict.match is not None
    assert verdict.match.frame == 5


def test_an_animation_beyond_the_decoded_pixel_budget_is_uninspectable(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (100, 100), (20 * i, 0, 0)) for i in range(8)]
    body = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)
    engine = engine_with(tmp_path, "# algorithm: pdq\n", max_total_frame_pixels=70_000)
    verdict = engine.scan(body)
    assert verdict.kind is VerdictKind.UNINSPECTABLE
    assert verdict.reason is Reason.TOO_MANY_PIXELS
    assert engine_with(tmp_path, "# algorithm: pdq\n").scan(body).is_clean


def test_a_cached_verdict_is_given_only_for_the_lists_in_force(tmp_path: Path) -> None:
    clean = jpeg(5)
    sha = hashlib.sha256(clean).hexdigest()
    engine = engine_with(tmp_path, f"sha256 {'0' * 64} nothing\n", list_reload_interval=0)
    assert engine.cached_verdict(sha) is None  # never scanned
    assert engine.scan(clean).is_clean
    cached = engine.cached_verdict(sha)
    assert cached is not None
    assert cached.is_clean
    assert engine.stats()["cache_hits"] == 1
    (tmp_path / "list.txt").write_text(f"sha256 {sha} now-listed\n")
    assert engine.refresh_lists()
    assert engine.cached_verdict(sha) is None  # made against lists no longer in force
    assert engine.scan(clean).is_match
