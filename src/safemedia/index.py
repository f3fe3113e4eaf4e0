"""Hamming-radius search over packed hashes: exact lookup, brute force, multi-index hashing.

Usage::

    index, order = HammingIndex.build(pack(values, 32), multi_index=True)
    hits = index.search(pack(queries, 32), 31)  # every (query, row, distance) within 31 bits

Rows are stored in the index's own order (sorted by their first chunk); ``order[i]`` is the
input position of row ``i``, so a caller keeps its per-entry data in the same order.

Layout (multi-index hashing, generalised pigeonhole on chunks): the first ``m * w`` bits of a hash
are cut into ``m`` chunks of ``w`` bits; if two hashes are within distance ``d``, some chunk ``j``
differs in at most ``r_j`` bits whenever the radii sum to ``d + 1 - m`` (:func:`radii`), so
probing table ``j`` with every key within ``r_j`` bits of the query's chunk finds every candidate,
which is then verified on the whole hash (two words first). Table 0 costs nothing but its offsets
(the rows are sorted by chunk 0); tables 1..m-1 are counting-sorted postings of row numbers: a
``uint16`` array plus the high bits packed in 1-8 bits (:class:`PackedInts`). Each table's
``2**w + 1`` bucket offsets are ``uint32`` checkpoints every 16 buckets plus ``uint8`` offsets
relative to them, or every 64 buckets plus ``uint16`` (``uint32``) ones when the buckets are
fuller (a list of near-duplicates costs memory, never correctness). :func:`layout_for` picks
``w`` and ``m`` from the list's size: the fastest layout (by a cost model measured per probe
and per candidate) within a memory budget of 63 bytes per PDQ entry: 16 x 16-bit for 100k
entries, 11 x 18-bit at 1M, 10 x 21-bit at 10M. The exact path (distance 0) probes table 0 only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from itertools import combinations
from math import comb
from typing import Any

import numpy as np
import numpy.typing as npt

from safemedia.packed import PackedInts

CHUNK_BITS = 16
"""Chunk width of exact-only indexes (and the fallback layout)."""
MIN_CHUNK_BITS, MAX_CHUNK_BITS = 8, 24
_LAYOUT_MIN_BITS, _LAYOUT_MAX_BITS = 12, 22
_BUDGET_MIN_ENTRIES = 500_000
"""Smaller lists may take the memory budget of this many entries (a few MB: speed first)."""
_PROBE_US, _CANDIDATE_US = 0.07, 0.025
"""Cost model of a query, measured on PDQ lists of 1M and 10M: per probed bucket, per candidate."""
MULTI_INDEX_MIN_ENTRIES = 4096
"""Below this many rows a brute-force scan is as fast as probing tables, so none are built."""

_OFFSET_LAYOUTS: tuple[tuple[int, type[np.unsignedinteger[Any]]], ...] = (
    (4, np.uint8),
    (6, np.uint16),
    (6, np.uint32),
)
"""(log2 of buckets per checkpoint, relative offsets' type), the most compact first."""
_BRUTE_BLOCK_ELEMENTS = 1 << 20
_MAX_CANDIDATE_SHARE = 0.25
"""Probe tables only while they yield fewer candidates than this share of the rows per query
(a tightly clustered list can put most rows in a few buckets: then brute force is cheaper)."""
_FEW_QUERIES = 64
"""Up to this many queries, their chunk keys are computed with Python integers."""
_MAX_PROBES = 16384
"""More probes than this per query (a large radius) and brute force is cheaper."""

U8 = npt.NDArray[np.uint8]
U32 = npt.NDArray[np.uint32]
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


def probe_count(radius: int, bits: int) -> int:
    """How many ``bits``-bit keys lie within ``radius`` bits of one key."""
    return sum(comb(bits, r) for r in range(radius + 1))


@cache
def _masks(radius: int, bits: int) -> npt.NDArray[np.intp]:
    """Every ``bits``-bit XOR mask with at most ``radius`` bits set (the probes around a key),
    fewest bits first."""
    masks = [
        sum(1 << b for b in c) for r in range(radius + 1) for c in combinations(range(bits), r)
    ]
    return np.asarray(masks, dtype=np.intp)


def layout_for(entries: int, hash_bits: int, distance: int | None = None) -> tuple[int, int]:
    """``(chunk_bits, tables)`` for ``entries`` hashes searched at ``distance`` (default
    :func:`design_distance`): the layout with the fewest estimated microseconds per query among
    those within :func:`memory_budget`, else the smallest one."""
    d = design_distance(hash_bits) if distance is None else distance
    budget = memory_budget(hash_bits) * max(entries, _BUDGET_MIN_ENTRIES)
    best: tuple[bool, float, int, int] | None = None
    for bits in range(_LAYOUT_MIN_BITS, min(_LAYOUT_MAX_BITS, hash_bits) + 1):
        for tables in range(2, hash_bits // bits + 1):
            probes = sum(probe_count(r, bits) for r in radii(d, tables) if r >= 0)
            if probes > _MAX_PROBES:
                continue
            memory = memory_estimate(entries, hash_bits, bits, tables)
            micros = _PROBE_US * probes + _CANDIDATE_US * entries * probes / (1 << bits)
            key = (memory > budget, memory if memory > budget else micros, bits, tables)
            if best is None or key < best:
                best = key
    if best is None:
        return CHUNK_BITS, max(1, hash_bits // CHUNK_BITS)
    return best[2], best[3]


def design_distance(hash_bits: int) -> int:
    """The radius layouts are chosen for: 31 for PDQ (its default), an eighth of the bits else."""
    return 31 if hash_bits == 256 else hash_bits // 8


def memory_budget(hash_bits: int) -> int:
    """Bytes per entry a layout may take: twice the hash less one for PDQ (63), and at least 32
    (64-bit hashes are cheap: speed first)."""
    return max(2 * padded_size(hash_bits // 8) - 1, 32)


def memory_estimate(entries: int, hash_bits: int, bits: int, tables: int) -> int:
    """Bytes an index of ``entries`` uniformly spread hashes takes with this layout."""
    rows = padded_size(hash_bits // 8) * entries
    high = max(0, entries - 1) >> 16
    high_bits = next(w for w in (0, 1, 2, 4, 8) if high < 1 << w)
    ids = (tables - 1) * entries * (16 + high_bits) // 8
    per_block = 16 * entries / (1 << bits)  # uint8 offsets every 16 buckets if they fit
    narrow = per_block + 6 * per_block**0.5 < 255
    relative, shift = (1, 4) if narrow else (2, 6)
    offsets = tables * (((1 << bits) + 1) * relative + 4 * (((1 << bits) >> shift) + 1))
    return rows + ids + offsets


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


def _query_keys(queries: U8, bits: int, chunks: list[int]) -> npt.NDArray[np.intp]:
    """``_keys`` of a few queries for several chunks, as an ``(n, len(chunks))`` array: with
    Python integers, far cheaper than numpy calls on one row at a time."""
    if len(queries) > _FEW_QUERIES:
        return np.stack([_keys(queries, bits, j) for j in chunks], axis=1).astype(np.intp)
    width = queries.shape[1] * 8
    mask = (1 << bits) - 1
    values = [int.from_bytes(row.tobytes(), "big") for row in queries]
    shifts = [width - bits * (j + 1) for j in chunks]
    return np.array([[(v >> s) & mask for s in shifts] for v in values], dtype=np.intp)


def _stable_order(keys: npt.NDArray[np.uint16 | np.uint32]) -> I64:
    """``np.argsort(keys, kind="stable")``, as two 16-bit radix sorts when keys are wider."""
    if keys.dtype == np.uint16:
        return np.argsort(keys, kind="stable").astype(np.int64)
    low = np.argsort((keys & 0xFFFF).astype(np.uint16), kind="stable")
    high = (keys[low] >> 16).astype(np.uint16)
    return low[np.argsort(high, kind="stable")].astype(np.int64)


def _offsets(keys: npt.NDArray[np.uint16 | np.uint32], bits: int) -> npt.NDArray[np.int64]:
    """Where each bucket starts in the table's order, plus the end (``2**bits + 1`` values)."""
    counts = np.bincount(keys, minlength=1 << bits)
    offsets = np.zeros((1 << bits) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return offsets


Offsets = tuple[int, U32, npt.NDArray[np.uint8 | np.uint16 | np.uint32]]


def _compress(offsets: list[npt.NDArray[np.int64]]) -> Offsets:
    """Bucket offsets as ``uint32`` checkpoints every ``2**shift`` buckets plus offsets relative
    to them: ``uint8`` ones every 16 buckets when they fit, else ``uint16`` every 64, else
    ``uint32`` (a list of many near-duplicates costs memory, never correctness)."""
    full = np.stack(offsets)
    for shift, dtype in _OFFSET_LAYOUTS:
        checkpoints = full[:, :: 1 << shift]
        relative = full - np.repeat(checkpoints, 1 << shift, axis=1)[:, : full.shape[1]]
        if int(relative.max()) <= np.iinfo(dtype).max:
            break
    return shift, checkpoints.astype(np.uint32), relative.astype(dtype)


def radii(distance: int, tables: int) -> list[int]:
    """Probe radius per table (-1: not probed) so that every hash within ``distance`` is found.

    Generalised pigeonhole: if each chunk ``j`` differed in more than ``r_j`` bits, the hashes
    would differ in at least ``sum(r_j + 1)`` bits; radii summing to ``distance + 1 - tables``
    (the larger ones first: table 0 is the cheapest to probe) make that exceed ``distance``.
    """
    q, rem = divmod(distance + 1, tables)
    return [q - 1 + (j < rem) for j in range(tables)]


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

    __slots__ = (
        "_bits",
        "_checkpoints",
        "_hi",
        "_lo",
        "_nbytes",
        "_relative",
        "_rows",
        "_shift",
        "_tables",
        "_words",
    )

    def __init__(
        self,
        rows: U8,
        nbytes: int,
        bits: int,
        offsets: Offsets,
        lo: npt.NDArray[np.uint16] | None,
        hi: PackedInts | None,
    ) -> None:
        self._rows = rows
        self._nbytes = nbytes
        self._bits = bits
        self._shift, self._checkpoints, self._relative = offsets
        self._tables = int(self._relative.shape[0])
        self._words: U64 = rows.view(np.uint64)
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
        tables: int | None = None,
    ) -> tuple[HammingIndex, I64]:
        """Index ``rows`` (from :func:`pack`); returns the index and its row order.

        ``nbytes`` is the unpadded hash size (default: the row width). ``multi_index`` builds
        the chunk tables for radius search (default: when there are at least
        :data:`MULTI_INDEX_MIN_ENTRIES` rows); without them radius search is brute force.
        ``chunk_bits``: 16 or 20 (default: :func:`chunk_bits_for` the list's size). ``tables``:
        how many chunks are indexed (default :func:`tables_for`; fewer save memory and cost
        more candidates per query).
        """
        rows = pad(rows)
        n, width = rows.shape
        nbytes = nbytes or width
        if multi_index is None:
            multi_index = n >= MULTI_INDEX_MIN_ENTRIES
        if multi_index and (chunk_bits is None or tables is None):
            default_bits, default_tables = layout_for(n, nbytes * 8)
            chunk_bits = chunk_bits or default_bits
            tables = tables or (default_tables if chunk_bits == default_bits else None)
        bits = chunk_bits or CHUNK_BITS
        if not MIN_CHUNK_BITS <= bits <= MAX_CHUNK_BITS:
            raise ValueError(f"chunk_bits must be between {MIN_CHUNK_BITS} and {MAX_CHUNK_BITS}")
        most = max(1, nbytes * 8 // bits)
        if not multi_index:
            tables = 1
        elif tables is None:
            tables = most
        elif not 1 <= tables <= most:
            raise ValueError(f"tables must be between 1 and {most}")
        tables = min(tables, most)
        keys = _keys(rows, bits, 0)
        order = _stable_order(keys)
        rows = np.ascontiguousarray(rows[order])
        offsets = [_offsets(keys[order], bits)]
        lo = hi = None
        if tables > 1 and n:
            if n >= 1 << 24:
                raise ValueError("an index holds at most 16,777,215 hashes")
            lo = np.empty((tables - 1, n), dtype=np.uint16)
            high = np.empty((tables - 1, n), dtype=np.uint8) if n > 1 << 16 else None
            for j in range(1, tables):
                keys = _keys(rows, bits, j)
                perm = _stable_order(keys)
                lo[j - 1] = perm.astype(np.uint16)
                if high is not None:
                    high[j - 1] = (perm >> 16).astype(np.uint8)
                offsets.append(_offsets(keys, bits))
            hi = PackedInts(high) if high is not None else None
        return cls(rows, nbytes, bits, _compress(offsets), lo, hi), order

    def __len__(self) -> int:
        return int(self._rows.shape[0])

    @property
    def chunk_bits(self) -> int:
        """Width of the chunks the tables are keyed by (16 or 20)."""
        return self._bits

    @property
    def tables(self) -> int:
        """Number of chunk tables (1: exact lookups only)."""
        return self._tables

    @property
    def multi_index(self) -> bool:
        """Whether chunk tables were built (sub-linear radius search)."""
        return self._lo is not None

    @property
    def memory_bytes(self) -> int:
        """Bytes held by the index's arrays (hashes, postings, offsets)."""
        arrays = (self._rows, self._checkpoints, self._relative, self._lo, self._hi)
        return sum(a.nbytes for a in arrays if a is not None)

    def rows(self, positions: I64) -> U8:
        """The hashes stored at ``positions``, unpadded (a copy)."""
        return self._rows[positions, : self._nbytes]

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
        per_table = radii(distance, self._tables if self._lo is not None else 1)
        used = [j for j, r in enumerate(per_table) if r >= 0]
        if sum(probe_count(per_table[j], bits) for j in used) > _MAX_PROBES:
            return None
        qkeys = _query_keys(queries, bits, used)
        # keys[q, p]: bucket of probe p for query q; table[p]: the table it probes
        parts, owners = [], []
        for radius in sorted({per_table[j] for j in used}, reverse=True):
            cols = [c for c, j in enumerate(used) if per_table[j] == radius]
            masks = _masks(radius, bits)
            parts.append((qkeys[:, cols, None] ^ masks[None, None, :]).reshape(nq, -1))
            owners.append(np.repeat(np.asarray([used[c] for c in cols], dtype=np.intp), len(masks)))
        keys = np.concatenate(parts, axis=1)
        table = np.concatenate(owners)
        buckets = (1 << bits) + 1
        flat = keys + table * buckets
        block = (keys >> self._shift) + table * self._checkpoints.shape[1]
        checkpoints, relative = self._checkpoints.reshape(-1), self._relative.reshape(-1)
        starts = checkpoints[block].astype(np.int64) + relative[flat]
        block = ((keys + 1) >> self._shift) + table * self._checkpoints.shape[1]
        lengths = checkpoints[block].astype(np.int64) + relative[flat + 1] - starts
        if distance and int(lengths.sum()) > _MAX_CANDIDATE_SHARE * len(self) * nq:
            return None
        first = table == 0  # table 0 is the rows themselves (sorted by chunk 0)
        width = int(first.sum())
        pos, owner = _expand(starts[:, first].reshape(-1), lengths[:, first].reshape(-1))
        qid = owner // width
        if width == len(table):
            return qid, pos
        assert self._lo is not None
        # Tables 1..m-1: positions into the stacked postings, then the row numbers they hold.
        rest = ~first
        at = starts[:, rest] + ((table[rest] - 1) * len(self))[None, :]
        idx, owner = _expand(at.reshape(-1), lengths[:, rest].reshape(-1))
        row = self._lo.reshape(-1)[idx].astype(np.int64)
        if self._hi is not None:
            row |= self._hi[idx] << 16
        rqid = owner // (len(table) - width)
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
