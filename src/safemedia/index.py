"""Hamming-radius search over packed hashes: exact lookup, brute force, multi-index hashing.

Usage::

    index, order = HammingIndex.build(pack(values, 32), multi_index=True)
    hits = index.search(pack(queries, 32), 31)  # every (query, row, distance) within 31 bits

Rows are stored in the index's own order (sorted by their first 16-bit chunk); ``order[i]`` is the
input position of row ``i``, so a caller keeps its per-entry data in the same order.

Layout (multi-index hashing, pigeonhole on chunks): a ``b``-bit hash is cut into ``m`` chunks of
16 bits (20 bits for lists of millions: :func:`chunk_bits_for`); two hashes within distance ``d``
agree within ``r = d // m`` bits on at least one chunk, so probing each chunk table with every key
within ``r`` bits finds every candidate, which is then verified on the whole hash (two words
first). Table 0 costs nothing (the rows are sorted by chunk 0); tables 1..m-1 are counting-sorted
postings of 3-byte row numbers (a ``uint16`` and a ``uint8`` array) with one offsets array of
``2**chunk_bits + 1`` entries each. A PDQ entry costs 32 bytes of hash plus 15 x 3 bytes of
postings with 16-bit chunks (11 x 3 with 20-bit ones), plus the offsets. The exact path
(distance 0) probes table 0 only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt

CHUNK_BITS = 16
WIDE_CHUNK_BITS = 20
"""Chunk width for very large lists: fewer, fuller-keyed tables (fewer candidates per query)."""
MULTI_INDEX_MIN_ENTRIES = 4096
"""Below this many rows a brute-force scan is as fast as probing tables, so none are built."""

_BRUTE_BLOCK_ELEMENTS = 1 << 20
_MAX_CANDIDATE_SHARE = 0.25
"""Probe tables only while they yield fewer candidates than this share of the rows per query
(a tightly clustered list can put most rows in a few buckets: then brute force is cheaper)."""
_MAX_PROBES = 16384
"""More probes than this per query (a large radius) and brute force is cheaper."""

U8 = npt.NDArray[np.uint8]
U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]


def padded_size(nbytes: int) -> int:
    """Bytes a hash of ``nbytes`` takes in the index (a whole number of 64-bit words)."""
    return -(-nbytes // 8) * 8


def pack(values: Iterable[bytes], nbytes: int) -> U8:
    """Hash values (each ``nbytes`` long) as an ``(n, padded)`` uint8 array, zero-padded."""
    joined = b"".join(values)
    if len(joined) % nbytes:
        raise ValueError(f"hash values must all be {nbytes} bytes long")
    rows = np.frombuffer(joined, dtype=np.uint8).reshape(-1, nbytes)
    return pad(rows)


def pad(rows: U8) -> U8:
    """``rows`` zero-padded on the right to whole 64-bit words (a contiguous copy if needed)."""
    n, nbytes = rows.shape
    width = padded_size(nbytes)
    if width == nbytes:
        return np.ascontiguousarray(rows)
    out = np.zeros((n, width), dtype=np.uint8)
    out[:, :nbytes] = rows
    return out


@dataclass(frozen=True, slots=True)
class Hits:
    """Search results as parallel arrays, sorted by query then distance then row."""

    query: I64
    row: I64
    distance: I64

    def __len__(self) -> int:
        return len(self.row)


@cache
def _masks(radius: int, bits: int) -> npt.NDArray[np.intp]:
    """Every ``bits``-bit XOR mask with at most ``radius`` bits set (the probes around a key)."""
    values = np.arange(1 << bits, dtype=np.uint32)
    weights = np.bitwise_count(values)
    masks = values[weights <= radius]
    return masks[np.argsort(weights[weights <= radius], kind="stable")].astype(np.intp)


def chunk_bits_for(entries: int, hash_bits: int) -> int:
    """16-bit chunks, or 20-bit ones once their bigger offsets tables are worth it: under 8 bytes
    an entry for PDQ (memory matters at millions of entries), 16 for 64-bit hashes."""
    offsets_bytes = (hash_bits // WIDE_CHUNK_BITS) * (1 << WIDE_CHUNK_BITS) * 4
    budget = 16 if hash_bits <= 64 else 8
    return WIDE_CHUNK_BITS if entries * budget >= offsets_bytes else CHUNK_BITS


def _keys(rows: U8, bits: int, chunk: int) -> npt.NDArray[np.uint16 | np.uint32]:
    """Chunk number ``chunk`` (bits ``[bits*chunk, bits*(chunk+1))``, MSB first) of every row,
    as ``uint16`` for 16-bit chunks (so that a stable argsort is a radix sort)."""
    offset = bits * chunk
    start = offset // 8
    value = np.zeros(rows.shape[0], dtype=np.uint32)
    for k in range(4):
        value <<= 8
        if start + k < rows.shape[1]:
            value |= rows[:, start + k]
    value >>= 32 - offset % 8 - bits
    value &= (1 << bits) - 1
    return value.astype(np.uint16) if bits <= 16 else value


def _offsets(
    keys: npt.NDArray[np.uint16 | np.uint32], bits: int
) -> npt.NDArray[np.uint32 | np.uint64]:
    buckets = 1 << bits
    counts = np.bincount(keys, minlength=buckets)
    offsets = np.zeros(buckets + 1, dtype=np.uint64)
    np.cumsum(counts, out=offsets[1:])
    if offsets[-1] < (1 << 32):
        return offsets.astype(np.uint32)
    return offsets


def _expand(starts: I64, lengths: I64) -> tuple[I64, I64]:
    """The positions covered by ranges ``[start, start + length)`` and each one's range number."""
    total = int(lengths.sum())
    nonempty = np.nonzero(lengths)[0]
    lengths = lengths[nonempty]
    ends = np.cumsum(lengths)
    positions = np.arange(total, dtype=np.int64)
    positions += np.repeat(starts[nonempty] - (ends - lengths), lengths)
    return positions, np.repeat(nonempty, lengths)


class HammingIndex:
    """Immutable Hamming-radius index over ``n`` hashes of one algorithm."""

    __slots__ = ("_bits", "_hi", "_lo", "_nbytes", "_offsets", "_rows", "_tables", "_words")

    def __init__(
        self,
        rows: U8,
        nbytes: int,
        bits: int,
        offsets: npt.NDArray[np.uint32 | np.uint64],
        lo: npt.NDArray[np.uint16] | None,
        hi: npt.NDArray[np.uint8] | None,
    ) -> None:
        self._rows = rows
        self._nbytes = nbytes
        self._bits = bits
        self._tables = nbytes * 8 // bits
        self._words: U64 = rows.view(np.uint64)
        self._offsets = offsets
        self._lo = lo
        self._hi = hi

    @classmethod
    def build(
        cls,
        rows: U8,
        *,
        nbytes: int | None = None,
        multi_index: bool | None = None,
        chunk_bits: int | None = None,
    ) -> tuple[HammingIndex, I64]:
        """Index ``rows`` (from :func:`pack`); returns the index and its row order.

        ``nbytes`` is the unpadded hash size (default: the row width). ``multi_index`` builds
        the chunk tables for radius search (default: when there are at least
        :data:`MULTI_INDEX_MIN_ENTRIES` rows); without them radius search is brute force.
        ``chunk_bits``: 16 or 20 (default: :func:`chunk_bits_for` the list's size).
        """
        rows = pad(rows)
        n, width = rows.shape
        nbytes = nbytes or width
        if multi_index is None:
            multi_index = n >= MULTI_INDEX_MIN_ENTRIES
        bits = chunk_bits or (chunk_bits_for(n, nbytes * 8) if multi_index else CHUNK_BITS)
        if bits not in (CHUNK_BITS, WIDE_CHUNK_BITS):
            raise ValueError("chunk_bits must be 16 or 20")
        keys = _keys(rows, bits, 0)
        order = np.argsort(keys, kind="stable").astype(np.int64)
        rows = np.ascontiguousarray(rows[order])
        offsets_list = [_offsets(keys[order], bits)]
        tables = nbytes * 8 // bits
        lo = hi = None
        if multi_index and tables > 1 and n:
            if n >= 1 << 24:
                raise ValueError("an index holds at most 16,777,215 hashes")
            lo = np.empty((tables - 1, n), dtype=np.uint16)
            hi = np.empty((tables - 1, n), dtype=np.uint8) if n > 1 << 16 else None
            for j in range(1, tables):
                keys = _keys(rows, bits, j)
                perm = np.argsort(keys, kind="stable")
                lo[j - 1] = perm.astype(np.uint16)
                if hi is not None:
                    hi[j - 1] = (perm >> 16).astype(np.uint8)
                offsets_list.append(_offsets(keys, bits))
        dtype = np.result_type(*offsets_list)
        offsets = np.stack([o.astype(dtype) for o in offsets_list])
        return cls(rows, nbytes, bits, offsets, lo, hi), order

    def __len__(self) -> int:
        return int(self._rows.shape[0])

    @property
    def chunk_bits(self) -> int:
        """Width of the chunks the tables are keyed by (16 or 20)."""
        return self._bits

    @property
    def multi_index(self) -> bool:
        """Whether chunk tables were built (sub-linear radius search)."""
        return self._lo is not None

    @property
    def memory_bytes(self) -> int:
        """Bytes held by the index's arrays."""
        arrays = (self._rows, self._offsets, self._lo, self._hi)
        return sum(a.nbytes for a in arrays if a is not None)

    def row(self, position: int) -> bytes:
        """The hash stored at row ``position``."""
        return self._rows[position, : self._nbytes].tobytes()

    def search(self, queries: U8, distance: int) -> Hits:
        """Every row within ``distance`` bits of each query (an ``(q, padded)`` uint8 array)."""
        queries = pad(queries)
        if distance < 0:
            raise ValueError("distance must not be negative")
        if queries.shape[1] != self._rows.shape[1]:
            raise ValueError("queries and index hold hashes of different sizes")
        empty = np.empty(0, dtype=np.int64)
        if not len(self) or not len(queries):
            return Hits(empty, empty, empty)
        probes = None
        if distance == 0 or self._lo is not None:
            probes = self._probe(queries, distance)
        if probes is None:
            return self._brute(queries, distance)
        qid, pos = probes
        qid, pos, dist = self._verify(queries.view(np.uint64), qid, pos, distance)
        if self._lo is not None and distance > 0:
            _, first = np.unique(qid * len(self) + pos, return_index=True)
            qid, pos, dist = qid[first], pos[first], dist[first]
        return _sorted_hits(qid, pos, dist)

    def _verify(self, qwords: U64, qid: I64, pos: I64, distance: int) -> tuple[I64, I64, I64]:
        """Keep the candidates within ``distance``: two words first, the rest on the survivors."""
        words = qwords.shape[1]
        flat = self._words.reshape(-1)
        single = qwords.shape[0] == 1
        base = pos * words
        dist = np.zeros(len(pos), dtype=np.int64)
        for k in range(words):
            if k == 2 and words > 2:
                keep = np.nonzero(dist <= distance)[0]
                qid, pos, base, dist = qid[keep], pos[keep], base[keep], dist[keep]
            q = qwords[0, k] if single else qwords[qid, k]
            dist += np.bitwise_count(flat[base + k] ^ q)
        keep = np.nonzero(dist <= distance)[0]
        return qid[keep], pos[keep], dist[keep]

    def _probe(self, queries: U8, distance: int) -> tuple[I64, I64] | None:
        """Candidates ``(query, row)`` from the chunk tables, or None when brute force is better."""
        nq = queries.shape[0]
        bits = self._bits
        tables = self._tables if distance else 1
        masks = _masks(distance // tables, bits)
        if len(masks) * tables > _MAX_PROBES:
            return None
        qkeys = np.stack([_keys(queries, bits, j) for j in range(tables)], axis=1).astype(np.intp)
        # keys[q, j, p]: probe p of table j for query q; flat index into the stacked offsets
        keys = qkeys[:, :, None] ^ masks[None, None, :]
        keys += (np.arange(tables, dtype=np.intp) * ((1 << bits) + 1))[None, :, None]
        offsets = self._offsets.reshape(-1)
        starts = offsets[keys].astype(np.int64)
        lengths = offsets[keys + 1].astype(np.int64) - starts
        if distance and int(lengths.sum()) > _MAX_CANDIDATE_SHARE * len(self) * nq:
            return None
        qids = np.arange(nq, dtype=np.int64)
        # Table 0 is the rows themselves (sorted by chunk 0).
        pos, owner = _expand(starts[:, 0].reshape(-1), lengths[:, 0].reshape(-1))
        qid = qids.repeat(len(masks))[owner] if nq > 1 else np.zeros(len(pos), dtype=np.int64)
        if tables == 1:
            return qid, pos
        assert self._lo is not None
        # Tables 1..m-1: positions into the stacked postings, then the row numbers they hold.
        rest = starts[:, 1:] + (np.arange(tables - 1, dtype=np.int64) * len(self))[None, :, None]
        idx, owner = _expand(rest.reshape(-1), lengths[:, 1:].reshape(-1))
        row = self._lo.reshape(-1)[idx].astype(np.int64)
        if self._hi is not None:
            row |= self._hi.reshape(-1)[idx].astype(np.int64) << 16
        per_query = (tables - 1) * len(masks)
        one = np.zeros(len(row), dtype=np.int64)
        rqid = qids.repeat(per_query)[owner] if nq > 1 else one
        return np.concatenate([qid, rqid]), np.concatenate([pos, row])

    def _brute(self, queries: U8, distance: int) -> Hits:
        qwords = queries.view(np.uint64)
        nq, words = qwords.shape
        block = max(1, _BRUTE_BLOCK_ELEMENTS // max(1, nq * words))
        qids: list[I64] = []
        rows: list[I64] = []
        dists: list[I64] = []
        for start in range(0, len(self), block):
            chunk = self._words[start : start + block]
            dist = np.bitwise_count(chunk[None, :, :] ^ qwords[:, None, :]).sum(
                axis=2, dtype=np.int64
            )
            q, r = np.nonzero(dist <= distance)
            qids.append(q.astype(np.int64))
            rows.append(r.astype(np.int64) + start)
            dists.append(dist[q, r])
        return _sorted_hits(np.concatenate(qids), np.concatenate(rows), np.concatenate(dists))


def _sorted_hits(qid: I64, pos: I64, dist: I64) -> Hits:
    order = np.lexsort((pos, dist, qid))
    return Hits(qid[order], pos[order], dist[order])
