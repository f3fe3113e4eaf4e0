"""Hash-list files: formats, validation with file:line errors, reload, per-list settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from safemedia.config import Config, ListConfig
from safemedia.hashlists import EntryIds, ListError, ListManager, ListSet, parse_file

PDQ_A = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
PDQ_B = "0" * 64
MD5 = "d41d8cd98f00b204e9800998ecf8427e"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_threatexchange_lines_keep_everything_after_the_hash_as_the_id(tmp_path: Path) -> None:
    f = write(
        tmp_path / "te.txt",
        f"# comment\n\nPDQ {PDQ_A} case 12 / photo 3\nmd5 {MD5.upper()}\n"
        "phash a4749f64cf7409a3 x\n",
    )
    parsed = parse_file(f)
    assert parsed.counts == {"md5": 1, "pdq": 1, "phash": 1}
    assert parsed.entries["pdq"].ids == ("case 12 / photo 3",)
    assert parsed.entries["md5"].ids == ("",)
    assert parsed.entries["md5"].values.tobytes() == bytes.fromhex(MD5)


def test_bare_hex_needs_a_declared_algorithm(tmp_path: Path) -> None:
    f = write(tmp_path / "bare.txt", f"# algorithm: pdq\n{PDQ_A}\n{PDQ_B} second one\n")
    parsed = parse_file(f)
    assert parsed.entries["pdq"].ids == ("", "second one")
    undeclared = write(tmp_path / "undeclared.txt", f"{PDQ_A}\n")
    with pytest.raises(ListError, match=r"undeclared.txt:1: bare hash without a declared"):
        parse_file(undeclared)
    assert parse_file(undeclared, algorithm="pdq").counts == {"pdq": 1}


def test_csv_with_header_row(tmp_path: Path) -> None:
    f = write(
        tmp_path / "l.csv",
        f'# exported\nid,algorithm,hash\n"case, 1",pdq,{PDQ_A}\n2,md5,{MD5}\n',
    )
    parsed = parse_file(f)
    assert parsed.counts == {"md5": 1, "pdq": 1}
    assert parsed.entries["pdq"].ids == ("case, 1",)
    declared = write(tmp_path / "d.csv", f"hash,id\n{PDQ_A},a\n")
    with pytest.raises(ListError, match="no 'algorithm' column"):
        parse_file(declared)
    assert parse_file(declared, algorithm="pdq").entries["pdq"].ids == ("a",)


def test_every_malformed_line_is_reported_with_file_and_line(tmp_path: Path) -> None:
    f = write(
        tmp_path / "bad.txt",
        "\n".join(
            [
                f"pdq {PDQ_A} fine",
                f"pdq {MD5} looks like md5",  # 2: a 32-hex "pdq"
                "pdq " + "g" * 64,  # 3: not hex
                f"crc32 {MD5[:8]}",  # 4: unknown algorithm
                "md5",  # 5: no hash
                f"md5 {MD5}0",  # 6: wrong length
            ]
        ),
    )
    with pytest.raises(ListError) as info:
        parse_file(f)
    errors = info.value.errors
    assert [e.split(": ", 1)[0] for e in errors] == [f"{f}:{n}" for n in (2, 3, 4, 5, 6)]
    assert "not PDQ" in errors[0]
    assert "not hexadecimal" in errors[1]
    assert "unknown algorithm 'crc32'" in errors[2]


def test_missing_and_non_utf8_files_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ListError, match="cannot read"):
        parse_file(tmp_path / "nope.txt")
    (tmp_path / "bin.txt").write_bytes(b"pdq \xff\xfe")
    with pytest.raises(ListError, match="not UTF-8"):
        parse_file(tmp_path / "bin.txt")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def bump(path: Path, text: str) -> None:
    """Rewrite ``path`` so that its stat signature surely changes."""
    st = path.stat()
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_reload_swaps_in_a_changed_list_after_the_interval(tmp_path: Path) -> None:
    f = write(tmp_path / "l.txt", f"pdq {PDQ_A} a\n")
    clock = Clock()
    manager = ListManager(
        Config(hash_lists=(ListConfig(path=f),), list_reload_interval=5.0), clock=clock
    )
    first = manager.current()
    bump(f, f"pdq {PDQ_A} a\npdq {PDQ_B} b\n")
    clock.now = 4.9
    assert manager.current() is first  # not checked before the interval
    clock.now = 5.0
    second = manager.current()
    assert second.counts() == {"pdq": 2}
    assert second.generation != first.generation


def test_a_bad_edit_keeps_the_list_in_force(tmp_path: Path) -> None:
    f = write(tmp_path / "l.txt", f"pdq {PDQ_A} a\n")
    manager = ListManager(Config(hash_lists=(ListConfig(path=f),), list_reload_interval=0))
    before = manager.current()
    bump(f, f"pdq {PDQ_A} a\npdq 1234\n")
    assert manager.current() is before
    assert manager.last_errors == (f"{f}:2: pdq hash must be 64 hex digits, got 4",)
    f.unlink()
    assert manager.current() is before
    write(f, f"pdq {PDQ_B} fixed\n")
    assert manager.current().generation != before.generation
    assert not manager.last_errors


def test_touching_a_file_without_changing_it_keeps_the_generation(tmp_path: Path) -> None:
    f = write(tmp_path / "l.txt", f"pdq {PDQ_A} a\n")
    manager = ListManager(Config(hash_lists=(ListConfig(path=f),), list_reload_interval=0))
    before = manager.current().generation
    bump(f, f"pdq {PDQ_A} a\n")
    assert manager.current().generation == before


def test_generation_is_the_same_for_the_same_files(tmp_path: Path) -> None:
    f = write(tmp_path / "l.txt", f"pdq {PDQ_A} a\n")
    config = Config(hash_lists=(ListConfig(path=f),))
    assert ListManager(config).current().generation == ListManager(config).current().generation


def test_a_bad_list_at_startup_raises_with_all_errors(tmp_path: Path) -> None:
    good = write(tmp_path / "good.txt", f"pdq {PDQ_A}\n")
    bad1 = write(tmp_path / "bad1.txt", "pdq 12\n")
    bad2 = write(tmp_path / "bad2.txt", "\nmd5 zz\n")
    config = Config(hash_lists=tuple(ListConfig(path=p) for p in (good, bad1, bad2)))
    with pytest.raises(ListError) as info:
        ListManager(config)
    assert [e.split(": ")[0] for e in info.value.errors] == [f"{bad1}:1", f"{bad2}:2"]


def test_disabled_lists_are_not_loaded_and_distances_are_per_list(tmp_path: Path) -> None:
    near = bytes.fromhex(PDQ_A)
    query = bytes([near[0] ^ 0xFF]) + near[1:]  # 8 bits away
    strict = write(tmp_path / "strict.txt", f"pdq {PDQ_A} s\n")
    loose = write(tmp_path / "loose.txt", f"pdq {PDQ_A} l\n")
    off = write(tmp_path / "off.txt", "this is not even a list\n")
    config = Config(
        hash_lists=(
            ListConfig(path=strict, name="strict", distance=4),
            ListConfig(path=loose),
            ListConfig(path=off, enabled=False),
        )
    )
    lists = ListManager(config).current()
    found = lists.lookup("pdq", [query], lambda c: c.distance if c.distance is not None else 31)
    assert [(f.list_name, f.entry_id, f.distance) for f in found] == [("loose", "l", 8)]
    assert found[0].list_hash == near


def test_allow_lists_are_indexed_separately(tmp_path: Path) -> None:
    listed = write(tmp_path / "l.txt", f"pdq {PDQ_A}\n")
    allow = write(tmp_path / "allow.txt", f"pdq {PDQ_B} reviewed\nsha256 {'ab' * 32}\n")
    lists = ListManager(
        Config(hash_lists=(ListConfig(path=listed),), allow_lists=(allow,))
    ).current()
    assert lists.algorithms == {"pdq"}
    assert lists.allow_algorithms == {"pdq", "sha256"}
    assert lists.allowed("sha256", bytes.fromhex("ab" * 32)) == 0
    assert lists.allowed("pdq", b"\x01" + bytes(31), 3) == 1
    assert lists.allowed("pdq", bytes.fromhex(PDQ_A), 3) is None


def test_lookup_can_keep_only_the_nearest_entry_per_query(tmp_path: Path) -> None:
    base = bytes.fromhex(PDQ_A)
    lines = [f"pdq {(bytes([base[0] ^ (0xFF >> k)]) + base[1:]).hex()} {k}" for k in range(8)]
    f = write(tmp_path / "near.txt", "\n".join(lines) + "\n")
    lists = ListManager(Config(hash_lists=(ListConfig(path=f),))).current()
    query = bytes([base[0] ^ 0x0F]) + base[1:]  # entry "4" exactly
    far = bytes(32)
    found = lists.lookup("pdq", [far, query], lambda _c: 31)
    assert len(found) == 8
    assert [f.query for f in found] == [1] * 8
    assert [f.distance for f in found] == sorted(f.distance for f in found)
    best = lists.lookup("pdq", [far, query], lambda _c: 31, best_only=True)
    assert [(b.query, b.entry_id, b.distance) for b in best] == [(1, "4", 0)]


def test_reloading_one_list_keeps_the_others_entries_without_a_second_copy(
    tmp_path: Path,
) -> None:
    """Only the list set holds the hashes; a reload rebuilds the unchanged lists from it."""
    one = write(tmp_path / "one.txt", f"pdq {PDQ_A} first é\nmd5 {MD5} m\nphash {'12' * 8}\n")
    two = write(tmp_path / "two.txt", f"pdq {PDQ_B} second\n")
    allow = write(tmp_path / "allow.txt", f"sha256 {'ab' * 32} ok\n")
    config = Config(
        hash_lists=(ListConfig(path=one, name="one"), ListConfig(path=two, name="two")),
        allow_lists=(allow,),
        list_reload_interval=0,
    )
    manager = ListManager(config)
    before = manager.current()
    assert before.entries_of(one)["pdq"].ids == ("first é",)

    def entries(lists: ListSet) -> list[tuple[str, str, str, int]]:
        queries = {"pdq": [bytes.fromhex(PDQ_A), bytes(32)], "md5": [bytes.fromhex(MD5)]}
        queries["phash"] = [bytes.fromhex("12" * 8)]
        return [
            (f.algorithm, f.list_name, f.entry_id, f.distance)
            for name, values in queries.items()
            for f in lists.lookup(name, values, lambda _c: 0)
        ]

    expected = [("pdq", "one", "first é", 0), ("pdq", "two", "second", 0)]
    expected += [("md5", "one", "m", 0), ("phash", "one", "", 0)]
    assert entries(before) == expected
    for _ in range(2):  # twice: the second rebuild starts from rebuilt entries
        bump(two, f"pdq {PDQ_B} second\npdq {'1' * 64} third\n")
        after = manager.current()
        assert after.generation != before.generation
        assert after.counts() == {"md5": 1, "pdq": 3, "phash": 1}
        assert entries(after) == expected
        assert after.allowed("sha256", bytes.fromhex("ab" * 32)) == 0
        bump(two, f"pdq {PDQ_B} second\n")
        assert entries(manager.current()) == expected


def test_entry_ids_are_held_compactly_and_read_back_whole() -> None:
    ids = ["", "case 1", "", "日本 photo", "x" * 300] + [f"entry-{i}" for i in range(200)]
    held = EntryIds(ids)
    assert [held[i] for i in range(len(ids))] == ids
    assert held.text_bytes == sum(map(len, ids))
    short = EntryIds(ids[5:])
    assert [short[i] for i in range(200)] == ids[5:]
    assert short.nbytes <= 200 + 4 * 4  # at most a byte per length, a uint32 start per 64 ids
    assert EntryIds(["", ""]).nbytes == 0
    assert EntryIds(["", ""])[1] == ""
