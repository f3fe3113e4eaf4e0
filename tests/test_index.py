"""The Hamming index returns exactly what brute force returns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safemedia.index import HammingIndex, chunk_bits_for, pack

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
) -> set[tuple[int, int, int]]:
    nbytes = len(rows[0])
    index, order = HammingIndex.build(
        pack(rows, nbytes), multi_index=multi_index, chunk_bits=chunk_bits
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


@pytest.mark.parametrize(("multi_index", "chunk_bits"), [(True, 16), (True, 20), (False, None)])
def test_pdq_haystack_needles_at_distance_32_match_brute_force(
    multi_index: bool, chunk_bits: int | None
) -> None:
    haystack, needles = read_hashes("haystack.txt"), read_hashes("needles.txt")
    expected = brute_force(haystack, needles, 32)
    assert len(expected) > 100  # the vectors hold many near pairs
    found = indexed(haystack, needles, 32, multi_index=multi_index, chunk_bits=chunk_bits)
    assert found == expected


@pytest.mark.parametrize("chunk_bits", [16, 20])
@pytest.mark.parametrize("distance", [0, 1, 15, 16, 31, 47, 64])
def test_pdq_haystack_at_other_radii_matches_brute_force(distance: int, chunk_bits: int) -> None:
    haystack, needles = read_hashes("haystack.txt"), read_hashes("needles.txt")
    queries = needles + haystack[::97]
    found = indexed(haystack, queries, distance, multi_index=True, chunk_bits=chunk_bits)
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


def test_very_large_lists_use_wide_chunks() -> None:
    assert chunk_bits_for(1_000_000, 256) == 16
    assert chunk_bits_for(10_000_000, 256) == 20
    assert chunk_bits_for(100_000, 64) == 16
    assert chunk_bits_for(1_000_000, 64) == 20
    assert chunk_bits_for(10_000_000, 64) == 20


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


# 20-bit chunks are for lists of millions; their 2^20-entry tables make each build slow here
LAYOUTS = [(True, 16), (True, 16), (True, 16), (True, 20), (False, None)]


@settings(max_examples=100, deadline=None)
@given(cases(), st.sampled_from(LAYOUTS))
def test_index_matches_brute_force_on_random_lists(
    case: tuple[list[bytes], list[bytes], int], layout: tuple[bool, int | None]
) -> None:
    rows, queries, distance = case
    multi_index, chunk_bits = layout
    found = indexed(rows, queries, distance, multi_index=multi_index, chunk_bits=chunk_bits)
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
    queries = rows[:16].copy()
    queries[:, :4] ^= 0x11
    batch = index.search(queries, 31)
    for q in range(16):
        one = index.search(queries[q : q + 1], 31)
        mine = batch.query == q
        assert one.row.tolist() == batch.row[mine].tolist()
        assert one.distance.tolist() == batch.distance[mine].tolist()
