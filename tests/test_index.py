"""The Hamming index returns exactly what brute force returns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safemedia.index import HammingIndex, layout_for, memory_estimate, pack, radii
from safemedia.packed import PackedInts

PDQ = Path(__file__).parent / "fixtures" / "pdq"


def read_hashes(name: str) -> list[bytes]:
    lines = (PDQ / name).read_text().split()
    return [bytes.fromhex(line) for line in lines]


def brute_force(
    rows: list[bytes], queries: list[bytes], distance: int
) -> set[tuple[int, int, int]]:
    """Every ``(query, input position, distance)`` within ``distance``, in pure Python."""
    ints = [int.from_bytes(r, "big") for r in rows]
    out = set()
    for qi, q in enumerate(queries):
        qv = int.from_bytes(q, "big")
        for ri, rv in enumerate(ints):
            d = (qv ^ rv).bit_count()
            if d <= distance:
                out.add((qi, ri, d))
    return out


def indexed(
    rows: list[bytes],
    queries: list[bytes],
    distance: int,
    *,
    multi_index: bool,
    chunk_bits: int | None = None,
    tables: int | None = None,
) -> set[tuple[int, int, int]]:
    nbytes = len(rows[0])
    index, order = HammingIndex.build(
        pack(rows, nbytes), multi_index=multi_index, chunk_bits=chunk_bits, tables=tables
    )
    assert index.multi_index is (multi_index and nbytes > 2)
    hits = index.search(pack(queries, nbytes), distance)
    found = [
        (int(q), int(order[r]), int(d))
        for q, r, d in zip(hits.query, hits.row, hits.distance, strict=True)
    ]
    assert len(found) == len(set(found)), "no duplicate hits"
    for position, (q, r, _) in zip(hits.row, found, strict=True):
        assert index.row(int(position)) == rows[r]
        assert 0 <= q < len(queries)
    return set(found)


# (multi_index, chunk_bits, tables): the layouts chosen for 1M and 10M PDQ entries among others
PDQ_LAYOUTS = [(True, 16, 16), (True, 18, 11), (True, 20, 10), (True, 13, 7), (False, None, None)]


@pytest.mark.parametrize(("multi_index", "chunk_bits", "tables"), PDQ_LAYOUTS)
def test_pdq_haystack_needles_at_distance_32_match_brute_force(
    multi_index: bool, chunk_bits: int | None, tables: int | None
) -> None:
    haystack, needles = read_hashes("haystack.txt"), read_hashes("needles.txt")
    expected = brute_force(haystack, needles, 32)
    assert len(expected) > 100  # the vectors hold many near pairs
    found = indexed(
        haystack, needles, 32, multi_index=multi_index, chunk_bits=chunk_bits, tables=tables
    )
    assert found == expected


@pytest.mark.parametrize(("chunk_bits", "tables"), [(16, 16), (18, 11), (20, 10)])
@pytest.mark.parametrize("distance", [0, 1, 15, 16, 31, 47, 64])
def test_pdq_haystack_at_other_radii_matches_brute_force(
    distance: int, chunk_bits: int, tables: int
) -> None:
    haystack, needles = read_hashes("haystack.txt"), read_hashes("needles.txt")
    queries = needles + haystack[::97]
    found = indexed(
        haystack, queries, distance, multi_index=True, chunk_bits=chunk_bits, tables=tables
    )
    assert found == brute_force(haystack, queries, distance)


def test_exact_lookup_finds_duplicates_and_nothing_else() -> None:
    rows = [bytes([i % 7]) * 16 for i in range(50)]
    index, order = HammingIndex.build(pack(rows, 16), multi_index=False)
    hits = index.search(pack([bytes([3]) * 16, bytes([9]) * 16], 16), 0)
    assert sorted(int(order[r]) for r in hits.row) == [i for i in range(50) if i % 7 == 3]
    assert set(hits.query.tolist()) == {0}


def test_odd_sized_exact_hashes_are_padded_to_words() -> None:
    rows = [bytes([i]) * 20 for i in range(10)]  # SHA-1 sized
    index, order = HammingIndex.build(pack(rows, 20), nbytes=20)
    hits = index.search(pack([bytes([4]) * 20], 20), 0)
    assert [int(order[r]) for r in hits.row] == [4]
    assert index.row(int(hits.row[0])) == bytes([4]) * 20


def test_empty_index_and_empty_queries_find_nothing() -> None:
    empty, _ = HammingIndex.build(np.zeros((0, 32), dtype=np.uint8))
    assert len(empty.search(pack([b"\0" * 32], 32), 31)) == 0
    index, _ = HammingIndex.build(pack([b"\0" * 32], 32))
    assert len(index.search(np.zeros((0, 32), dtype=np.uint8), 31)) == 0


def test_lists_of_millions_of_pdq_hashes_fit_in_63_bytes_an_entry() -> None:
    assert layout_for(100_000, 256) == (16, 16)  # small lists: speed first
    for entries in (500_000, 1_000_000, 3_000_000, 10_000_000, 16_000_000):
        bits, tables = layout_for(entries, 256)
        assert bits >= 17
        assert memory_estimate(entries, 256, bits, tables) <= 63 * entries
    assert layout_for(1_000_000, 64)[0] >= 20


def test_probe_radii_cover_every_hash_within_the_distance() -> None:
    for tables in range(1, 33):
        for distance in range(0, 90):
            r = radii(distance, tables)
            assert sum(x + 1 for x in r) == distance + 1  # so no chunk-wise near miss hides
            assert max(r) - min(r) <= 1
            assert r == sorted(r, reverse=True)


@pytest.mark.parametrize("duplicates", [70_000, 0])
def test_big_buckets_and_row_numbers_over_16_bits_stay_exact(duplicates: int) -> None:
    """100,000 rows, 70,000 of them (near-)identical: their buckets overflow 16-bit offsets and
    row numbers need high bits; or all random, with buckets too full for 8-bit offsets at 12
    bits; the index still equals brute force."""
    rng = np.random.default_rng(3)
    centre = rng.integers(0, 256, 32, dtype=np.uint8)
    rows = np.concatenate(
        [
            np.repeat(centre[None, :], duplicates, axis=0),
            rng.integers(0, 256, (100_000 - duplicates, 32), np.uint8),
        ]
    )
    if duplicates:  # the last 10,000 of them near-identical
        rows[duplicates - 10_000 : duplicates, 31] ^= rng.integers(0, 256, 10_000, np.uint8)
    queries = np.concatenate([rows[::4999], rng.integers(0, 256, (5, 32), np.uint8)])
    queries[:, 30] ^= 0x81
    words = rows.view(np.uint64)
    for bits, tables in ((18, 11), (12, 9)):
        index, order = HammingIndex.build(rows, chunk_bits=bits, tables=tables)
        assert index.multi_index
        for q in range(len(queries)):
            hits = index.search(queries[q : q + 1], 31)
            dist = np.bitwise_count(words ^ queries[q].view(np.uint64)).sum(axis=1)
            expected = np.nonzero(dist <= 31)[0]
            assert sorted(order[hits.row].tolist()) == expected.tolist()
            assert hits.distance.tolist() == sorted(dist[expected].tolist())


@pytest.mark.parametrize("largest", [0, 1, 3, 15, 255, 65_535, 2**32 - 1])
def test_packed_integers_read_back_what_was_packed(largest: int) -> None:
    rng = np.random.default_rng(largest)
    for length in (0, 1, 7, 8, 9, 1001):
        values = rng.integers(0, largest + 1, length, dtype=np.int64)
        packed = PackedInts(values)
        assert packed[np.arange(length)].tolist() == values.tolist()
        assert packed[np.arange(length)[::-1]].tolist() == values[::-1].tolist()
    assert PackedInts(np.array([3, 0, 2, 1])).nbytes == 1
    with pytest.raises(ValueError, match="packed"):
        PackedInts(np.array([-1]))


def test_bad_arguments_are_refused() -> None:
    index, _ = HammingIndex.build(pack([b"\0" * 32], 32))
    with pytest.raises(ValueError, match="negative"):
        index.search(pack([b"\0" * 32], 32), -1)
    with pytest.raises(ValueError, match="different sizes"):
        index.search(pack([b"\0" * 8], 8), 3)


def flip(value: bytes, bits: list[int]) -> bytes:
    out = bytearray(value)
    for b in bits:
        out[b // 8] ^= 1 << (b % 8)
    return bytes(out)


@st.composite
def cases(draw: st.DrawFn) -> tuple[list[bytes], list[bytes], int]:
    """Random lists, uniform or clustered around a few centres, queries near and far."""
    nbytes = draw(st.sampled_from([8, 32]))
    bits = nbytes * 8
    centres = draw(st.lists(st.binary(min_size=nbytes, max_size=nbytes), min_size=1, max_size=6))
    spread = draw(st.integers(0, bits // 4))
    rows = []
    for _ in range(draw(st.integers(1, 120))):
        if draw(st.booleans()):
            rows.append(draw(st.binary(min_size=nbytes, max_size=nbytes)))
        else:
            centre = draw(st.sampled_from(centres))
            rows.append(flip(centre, draw(st.lists(st.integers(0, bits - 1), max_size=spread))))
    queries = []
    for _ in range(draw(st.integers(1, 10))):
        base = draw(st.sampled_from(rows + centres))
        queries.append(flip(base, draw(st.lists(st.integers(0, bits - 1), max_size=bits // 3))))
    distance = draw(st.integers(0, bits // 3))
    return rows, queries, distance


# (multi_index, chunk_bits, tables): 20-bit chunks are for lists of millions; their 2^20-entry
# tables make each build slow here, so they are drawn rarely
LAYOUTS = [
    (True, 16, None),
    (True, 12, None),
    (True, 13, 3),
    (True, 16, 2),
    (True, 18, 3),
    (True, 20, None),
    (False, None, None),
]


@settings(max_examples=100, deadline=None)
@given(cases(), st.sampled_from(LAYOUTS))
def test_index_matches_brute_force_on_random_lists(
    case: tuple[list[bytes], list[bytes], int], layout: tuple[bool, int | None, int | None]
) -> None:
    rows, queries, distance = case
    multi_index, chunk_bits, tables = layout
    found = indexed(
        rows, queries, distance, multi_index=multi_index, chunk_bits=chunk_bits, tables=tables
    )
    assert found == brute_force(rows, queries, distance)


def test_batched_queries_equal_single_queries() -> None:
    rng = np.random.default_rng(7)
    centres = rng.integers(0, 256, (20, 32), dtype=np.uint8)
    rows = centres[rng.integers(0, 20, 6000)].copy()
    rows ^= (rng.random(rows.shape) < 0.04).astype(np.uint8) << rng.integers(
        0, 8, rows.shape
    ).astype(np.uint8)
    index, _ = HammingIndex.build(rows)
    assert index.multi_index
    queries = rows[:80].copy()  # more than 64: chunk keys computed by numpy, not one by one
    queries[:, :4] ^= 0x11
    batch = index.search(queries, 31)
    for q in range(80):
        one = index.search(queries[q : q + 1], 31)
        mine = batch.query == q
        assert one.row.tolist() == batch.row[mine].tolist()
        assert one.distance.tolist() == batch.distance[mine].tolist()
