"""Hash-list files: parse and validate them, index them, and reload them when they change.

Three formats, told apart line by line (see ``docs/hash-lists.md``)::

    # python-threatexchange lines: ALGORITHM HEX [ID...]  (everything after the hex is the id)
    pdq f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22 case 1234
    md5 d41d8cd98f00b204e9800998ecf8427e

    # algorithm: pdq
    f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22 optional id

    algorithm,hash,id          <- CSV: a header row with "hash" (and "algorithm" unless declared)
    pdq,f8f8...9b22,case 1234

Every malformed line is reported as ``file:line: message``; a file with any is rejected whole
(:class:`ListError` lists them all). :class:`ListManager` keeps the lists in force, checks the
files (stat only) at most every ``list_reload_interval`` seconds, and swaps in a new
:class:`ListSet` atomically when one changed and loads cleanly.
"""

from __future__ import annotations

import csv
import ctypes
import hashlib
import io
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from safemedia.config import Config, ListConfig
from safemedia.index import HammingIndex, Hits, pack
from safemedia.packed import PackedInts
from safemedia.signals import SIGNALS, HashFormatError, SignalSpec, parse_hex

logger = logging.getLogger("safemedia")

ALGORITHM_HEADER = "algorithm:"
MAX_ERRORS_SHOWN = 200
_ID_BLOCK = 64
"""Entry ids per stored start offset."""


class ListError(ValueError):
    """One or more hash-list files are malformed; ``errors`` holds every ``file:line: message``."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = tuple(errors)
        shown = list(self.errors[:MAX_ERRORS_SHOWN])
        if len(self.errors) > MAX_ERRORS_SHOWN:
            shown.append(f"... and {len(self.errors) - MAX_ERRORS_SHOWN} more errors")
        super().__init__("\n".join(shown))


@dataclass(frozen=True, slots=True)
class Entries:
    """The hashes of one algorithm in one file, with their ids (``""`` when none)."""

    algorithm: str
    values: npt.NDArray[np.uint8]
    ids: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True, slots=True)
class ParsedList:
    """A validated hash-list file: its entries per algorithm and a digest of its bytes."""

    path: Path
    entries: Mapping[str, Entries]
    digest: str

    @property
    def counts(self) -> dict[str, int]:
        """Number of entries per algorithm."""
        return {name: len(e) for name, e in sorted(self.entries.items())}


class _Collector:
    """Accumulates valid entries per algorithm and errors, in file order."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.hexes: dict[str, list[str]] = {}
        self.ids: dict[str, list[str]] = {}
        self.lines: dict[str, list[int]] = {}
        self.errors: list[tuple[int, str]] = []

    def add(self, lineno: int, algorithm: str, hex_text: str, entry_id: str) -> None:
        name = algorithm.strip().lower()
        spec = SIGNALS.get(name)
        if spec is None:
            self.error(lineno, f"unknown algorithm {algorithm.strip()!r}")
            return
        text = hex_text.strip()
        if len(text) != spec.hex_length:
            self.error(lineno, _format_problem(spec, text))
            return
        self.fast(lineno, name, text, entry_id.strip())

    def fast(self, lineno: int, name: str, hex_text: str, entry_id: str) -> None:
        """A line already known to be ``name`` (lower case) with a hash of the right length."""
        hexes = self.hexes.get(name)
        if hexes is None:
            hexes = self.hexes[name] = []
            self.ids[name] = []
            self.lines[name] = []
        hexes.append(hex_text)
        self.ids[name].append(entry_id)
        self.lines[name].append(lineno)

    def error(self, lineno: int, message: str) -> None:
        self.errors.append((lineno, message))

    def finish(self, digest: str) -> ParsedList:
        entries: dict[str, Entries] = {}
        for name, hexes in self.hexes.items():
            spec = SIGNALS[name]
            raw: bytes | None
            try:
                raw = bytes.fromhex("".join(hexes))
            except ValueError:
                raw = self._locate_bad_hex(spec, name)
            if raw is None:
                continue
            values = np.frombuffer(raw, dtype=np.uint8).reshape(-1, spec.bits // 8)
            entries[name] = Entries(name, values, tuple(self.ids[name]))
        if self.errors:
            self.errors.sort()
            raise ListError([f"{self.path}:{line}: {msg}" for line, msg in self.errors])
        return ParsedList(self.path, entries, digest)

    def _locate_bad_hex(self, spec: SignalSpec, name: str) -> bytes | None:
        for text, lineno in zip(self.hexes[name], self.lines[name], strict=True):
            try:
                parse_hex(name, text)
            except HashFormatError as exc:
                self.error(lineno, str(exc))
        return None


def _format_problem(spec: SignalSpec, text: str) -> str:
    try:
        parse_hex(spec.name, text)
    except HashFormatError as exc:
        message = str(exc)
        if spec.name == "pdq" and len(text) == 32:
            message += " (32 hex digits is an MD5 or a 128-bit hash, not PDQ)"
        return message
    return f"bad {spec.name} hash"  # pragma: no cover - only called for a wrong length


def parse_text(
    text: str, path: Path, *, algorithm: str | None = None, digest: str = ""
) -> ParsedList:
    """Parse the text of a list file; ``algorithm`` is the declared one for bare hex lines."""
    out = _Collector(path)
    declared = algorithm.strip().lower() if algorithm else None
    if declared is not None and declared not in SIGNALS:
        out.error(0, f"unknown algorithm {algorithm!r} in the list's configuration")
        return out.finish(digest)
    lines = text.splitlines()
    lengths = {name: spec.hex_length for name, spec in SIGNALS.items()}
    fast = out.fast
    for lineno, raw in enumerate(lines, start=1):
        parts = raw.split(None, 2)
        if not parts:
            continue
        # fast path: "algorithm hex [id]" in lower case, well formed
        length = lengths.get(parts[0])
        if length is not None and len(parts) > 1 and len(parts[1]) == length:
            fast(lineno, parts[0], parts[1], parts[2].rstrip() if len(parts) > 2 else "")
            continue
        line = raw.strip()
        if line.startswith("#"):
            header = line[1:].strip()
            if header.lower().startswith(ALGORITHM_HEADER):
                name = header[len(ALGORITHM_HEADER) :].strip().lower()
                if name not in SIGNALS:
                    out.error(lineno, f"unknown algorithm {name!r} in the header")
                else:
                    declared = name
            continue
        if _is_csv_header(line):
            _parse_csv(lines, lineno, declared, out)
            break
        _parse_line(line, lineno, declared, out)
    return out.finish(digest)


def _parse_line(line: str, lineno: int, declared: str | None, out: _Collector) -> None:
    parts = line.split(None, 1)
    first = parts[0]
    if first.lower() in SIGNALS:
        rest = parts[1].split(None, 1) if len(parts) > 1 else []
        if not rest:
            out.error(lineno, f"{first.lower()} line without a hash")
            return
        out.add(lineno, first, rest[0], rest[1] if len(rest) > 1 else "")
    elif declared is not None:
        out.add(lineno, declared, first, parts[1] if len(parts) > 1 else "")
    elif _looks_hex(first):
        out.error(lineno, "bare hash without a declared algorithm (add '# algorithm: NAME')")
    else:
        out.error(lineno, f"unknown algorithm {first!r}")


def _looks_hex(text: str) -> bool:
    try:
        bytes.fromhex(text if len(text) % 2 == 0 else text + "0")
    except ValueError:
        return False
    return True


def _is_csv_header(line: str) -> bool:
    if "," not in line:
        return False
    cells = {c.strip().strip('"').lower() for c in line.split(",")}
    return "hash" in cells


def _parse_csv(lines: list[str], header_line: int, declared: str | None, out: _Collector) -> None:
    reader = csv.reader(io.StringIO("\n".join(lines[header_line - 1 :])))
    header = [c.strip().lower() for c in next(reader)]
    col_hash = header.index("hash")
    col_alg = header.index("algorithm") if "algorithm" in header else None
    col_id = header.index("id") if "id" in header else None
    if col_alg is None and declared is None:
        out.error(header_line, "CSV header has no 'algorithm' column and no algorithm is declared")
        return
    for row in reader:
        lineno = header_line - 1 + reader.line_num
        if not row or not any(c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        need = max(c for c in (col_hash, col_alg, col_id) if c is not None)
        if len(row) <= max(col_hash, col_alg if col_alg is not None else 0):
            out.error(lineno, f"expected {need + 1} columns, got {len(row)}")
            continue
        name = row[col_alg] if col_alg is not None and row[col_alg].strip() else declared
        if name is None:
            out.error(lineno, "no algorithm in this row")
            continue
        entry_id = row[col_id] if col_id is not None and col_id < len(row) else ""
        out.add(lineno, name, row[col_hash], entry_id)


def parse_file(path: str | os.PathLike[str], *, algorithm: str | None = None) -> ParsedList:
    """Read and validate one list file; :class:`ListError` names every bad line."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ListError([f"{p}: cannot read: {exc.strerror or exc}"]) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ListError([f"{p}: not UTF-8 text (byte {exc.start})"]) from None
    return parse_text(text, p, algorithm=algorithm, digest=hashlib.sha256(data).hexdigest())


# --- the lists in force -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Found:
    """One list entry within the list's distance of query number ``query``."""

    query: int
    list_name: str
    entry_id: str
    algorithm: str
    distance: int
    list_hash: bytes


class EntryIds:
    """Entry ids held compactly: one string, each id's length (packed: one byte each when no id
    is longer than 255) and where every 64th id starts; nothing at all when every id is empty.
    Instead of a Python string object per entry."""

    __slots__ = ("_lengths", "_starts", "_text")

    def __init__(self, ids: Sequence[str]) -> None:
        self._text = "".join(ids)
        lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        if not self._text:
            lengths = lengths[:0]
        starts = np.concatenate([[0], np.cumsum(lengths)])[::_ID_BLOCK]
        self._lengths = PackedInts(lengths)
        self._starts = PackedInts(starts if len(lengths) else starts[:0])

    def __getitem__(self, position: int) -> str:
        if not self._text:
            return ""
        block = position // _ID_BLOCK
        before = np.arange(block * _ID_BLOCK, position + 1)
        lengths = self._lengths[before]
        start = int(self._starts[np.array([block])][0]) + int(lengths[:-1].sum())
        return self._text[start : start + int(lengths[-1])]

    @property
    def nbytes(self) -> int:
        """Bytes held by lengths and starts (the characters themselves: :attr:`text_bytes`)."""
        return self._lengths.nbytes + self._starts.nbytes

    @property
    def text_bytes(self) -> int:
        """Characters of all the ids (one byte each when ASCII)."""
        return len(self._text)


@dataclass(frozen=True, slots=True)
class _Table:
    """All entries of one algorithm across the lists: an index plus, per row, list and id."""

    index: HammingIndex
    list_of: PackedInts
    ids: EntryIds
    lists: tuple[int, ...]

    @classmethod
    def build(cls, parts: Sequence[tuple[int, Entries]], perceptual: bool) -> _Table:
        values = np.concatenate([e.values for _, e in parts])
        list_of = np.concatenate([np.full(len(e), n, dtype=np.uint16) for n, e in parts])
        ids = [i for _, e in parts for i in e.ids]
        index, order = HammingIndex.build(
            values, nbytes=values.shape[1], multi_index=None if perceptual else False
        )
        del values
        lists = tuple(n for n, _ in parts)
        ordered = EntryIds(list(map(ids.__getitem__, order.tolist())))
        return cls(index, PackedInts(list_of[order]), ordered, lists)

    def entries(self, number: int, algorithm: str) -> Entries:
        """The entries of list ``number`` (in the index's order)."""
        rows = np.nonzero(self.list_of[np.arange(len(self.index))] == number)[0]
        values = self.index.rows(rows)
        return Entries(algorithm, values, tuple(self.ids[int(r)] for r in rows))

    @property
    def memory_bytes(self) -> int:
        """Bytes held per table, entry id characters excepted."""
        return self.index.memory_bytes + self.list_of.nbytes + self.ids.nbytes


@dataclass(frozen=True, slots=True)
class ListSet:
    """An immutable snapshot of the enabled lists and allow-lists, indexed per algorithm."""

    lists: tuple[ListConfig, ...] = ()
    allow_paths: tuple[Path, ...] = ()
    generation: int = 0
    _tables: dict[str, _Table] = field(default_factory=dict, repr=False)
    _allow_tables: dict[str, _Table] = field(default_factory=dict, repr=False)

    @classmethod
    def build(
        cls,
        lists: Sequence[tuple[ListConfig, ParsedList]],
        allow: Sequence[ParsedList] = (),
        *,
        settings: str = "",
    ) -> ListSet:
        """Index ``lists`` (each with its configuration) and the allow-lists.

        ``settings`` names the global matching settings; they are part of the generation, so a
        verdict (or an ETag) made under other distances or signals is not trusted.
        """
        tables = _tables([p for _, p in lists])
        allow_tables = _tables(list(allow))
        generation = _generation([c for c, _ in lists], [p for _, p in lists], allow, settings)
        return cls(
            tuple(c for c, _ in lists),
            tuple(a.path for a in allow),
            generation,
            tables,
            allow_tables,
        )

    @property
    def algorithms(self) -> frozenset[str]:
        """The algorithms some enabled list holds."""
        return frozenset(self._tables)

    @property
    def allow_algorithms(self) -> frozenset[str]:
        """The algorithms some allow-list holds."""
        return frozenset(self._allow_tables)

    def counts(self) -> dict[str, int]:
        """Entries per algorithm across the enabled lists."""
        return {name: len(t.index) for name, t in sorted(self._tables.items())}

    def memory_bytes(self) -> int:
        """Bytes held: hashes, indexes, list numbers and id offsets (not the ids' characters)."""
        tables = [*self._tables.values(), *self._allow_tables.values()]
        return sum(t.memory_bytes for t in tables)

    def id_text_bytes(self) -> int:
        """Characters of the entry ids held."""
        tables = [*self._tables.values(), *self._allow_tables.values()]
        return sum(t.ids.text_bytes for t in tables)

    def entries_of(self, path: Path) -> dict[str, Entries]:
        """The entries held for the list or allow-list file ``path`` (rebuilt from the indexes,
        so that no second copy of the hashes is kept for reloads)."""
        for tables, paths in (
            (self._tables, [c.path for c in self.lists]),
            (self._allow_tables, list(self.allow_paths)),
        ):
            if path in paths:
                number = paths.index(path)
                out = {}
                for name, table in tables.items():
                    if number in table.lists:
                        out[name] = table.entries(number, name)
                return out
        raise KeyError(path)

    def lookup(
        self,
        algorithm: str,
        queries: Sequence[bytes],
        distance_for: Callable[[ListConfig], int],
        *,
        best_only: bool = False,
    ) -> list[Found]:
        """Entries within each list's distance (``distance_for(list)``) of any query, by query
        then distance; ``best_only``: only the nearest entry for each query."""
        table = self._tables.get(algorithm)
        if table is None or not queries:
            return []
        limits = np.zeros(len(self.lists), dtype=np.int64)
        for n in table.lists:
            limits[n] = distance_for(self.lists[n])
        hits = _search(table, algorithm, queries, int(limits.max()))
        keep = np.nonzero(hits.distance <= limits[table.list_of[hits.row]])[0]
        if best_only:  # hits are sorted by query, then distance: keep each query's first
            _, first = np.unique(hits.query[keep], return_index=True)
            keep = keep[first]
        out = []
        for q, r, d in zip(hits.query[keep], hits.row[keep], hits.distance[keep], strict=True):
            config = self.lists[int(table.list_of[r])]
            entry = table.ids[int(r)]
            found = Found(
                int(q), config.display_name, entry, algorithm, int(d), table.index.row(int(r))
            )
            out.append(found)
        return out

    def allowed(self, algorithm: str, value: bytes, distance: int = 0) -> int | None:
        """The distance from ``value`` to the nearest allow-list entry within ``distance``."""
        table = self._allow_tables.get(algorithm)
        if table is None:
            return None
        hits = _search(table, algorithm, [value], distance)
        return int(hits.distance.min()) if len(hits) else None


def _search(table: _Table, algorithm: str, queries: Sequence[bytes], distance: int) -> Hits:
    return table.index.search(pack(queries, SIGNALS[algorithm].bits // 8), distance)


def _tables(parsed: Sequence[ParsedList]) -> dict[str, _Table]:
    parts: dict[str, list[tuple[int, Entries]]] = {}
    for n, p in enumerate(parsed):
        for name, entries in p.entries.items():
            if len(entries):
                parts.setdefault(name, []).append((n, entries))
    return {name: _Table.build(items, SIGNALS[name].perceptual) for name, items in parts.items()}


def matching_settings(config: Config) -> str:
    """The global settings that decide a verdict besides the lists themselves, as text."""
    return repr(
        (
            sorted(config.distances.items()),
            config.algorithms,
            config.dihedral,
            config.pdq_quality_min,
            config.full_resolution,
            config.max_pixels,
            config.max_frames,
            config.max_total_frame_pixels,
        )
    )


def _generation(
    configs: Iterable[ListConfig],
    parsed: Iterable[ParsedList],
    allow: Iterable[ParsedList],
    settings: str = "",
) -> int:
    """A number that changes whenever the lists in force change: a digest of their contents and
    settings, so every worker process with the same files agrees on it."""
    h = hashlib.blake2b(digest_size=6)
    h.update(f"settings|{settings}\n".encode())
    for c, p in zip(configs, parsed, strict=True):
        h.update(f"list|{c.display_name}|{c.distance}|{c.algorithm}|{p.digest}\n".encode())
    for a in allow:
        h.update(f"allow|{a.digest}\n".encode())
    return int.from_bytes(h.digest(), "big") or 1


@dataclass(frozen=True, slots=True)
class _FileState:
    signature: tuple[int, int, int]
    parsed: ParsedList
    indexed: bool = False
    """The entries were dropped from ``parsed`` once indexed: the list set in force has them."""


def _signature(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class ListManager:
    """The lists in force for one configuration, reloaded when their files change.

    Construction loads every enabled list and allow-list and raises :class:`ListError` if any is
    malformed. Later, :meth:`current` stats the files at most every ``list_reload_interval``
    seconds; changed files are parsed again and, only if every one loads cleanly, a new
    :class:`ListSet` replaces the old one (a bad edit keeps the lists in force and is logged).
    """

    def __init__(self, config: Config, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._configs = tuple(c for c in config.hash_lists if c.enabled)
        self._allow_paths = tuple(config.allow_lists)
        self._settings = matching_settings(config)
        self._interval = config.list_reload_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._files: dict[Path, _FileState] = {}
        self._failed: dict[Path, tuple[int, int, int]] = {}
        self.last_errors: tuple[str, ...] = ()
        errors: list[str] = []
        for path, algorithm in self._sources():
            try:
                self._files[path] = _load(path, algorithm)
            except ListError as exc:
                errors.extend(exc.errors)
        if errors:
            raise ListError(errors)
        self._set = self._build()
        self._checked = clock()

    def _sources(self) -> list[tuple[Path, str | None]]:
        return [(c.path, c.algorithm) for c in self._configs] + [
            (p, None) for p in self._allow_paths
        ]

    def _build(self) -> ListSet:
        """A new list set from ``self._files``; afterwards only the set holds the entries."""
        held = {path: self._parsed(path) for path in self._files}
        lists = [(c, held[c.path]) for c in self._configs]
        allow = [held[p] for p in self._allow_paths]
        built = ListSet.build(lists, allow, settings=self._settings)
        del held, lists, allow
        self._files = {
            path: _FileState(state.signature, ParsedList(path, {}, state.parsed.digest), True)
            for path, state in self._files.items()
        }
        _release_freed_memory()
        return built

    def _parsed(self, path: Path) -> ParsedList:
        state = self._files[path]
        if not state.indexed:
            return state.parsed
        return ParsedList(path, self._set.entries_of(path), state.parsed.digest)

    @property
    def in_force(self) -> ListSet:
        """The lists in force now, without a reload check (no file I/O)."""
        return self._set

    def current(self) -> ListSet:
        """The lists in force, after a reload check if the interval has passed."""
        if self._clock() - self._checked >= self._interval:
            self.refresh()
        return self._set

    def refresh(self) -> bool:
        """Reload changed files now; True when a new set was swapped in.

        A file that fails to load keeps its previous version in force (and is logged once);
        the others' changes still apply. Only one thread reloads at a time; the others keep
        using the lists in force meanwhile.
        """
        if not self._lock.acquire(blocking=False):
            return False
        try:
            self._checked = self._clock()
            changed: dict[Path, _FileState] = {}
            errors: list[str] = []
            for path, algorithm in self._sources():
                try:
                    signature = _signature(path)
                except OSError as exc:
                    errors.append(f"{path}: cannot read: {exc.strerror or exc}")
                    continue
                old = self._files.get(path)
                if (old is not None and old.signature == signature) or self._failed.get(
                    path
                ) == signature:
                    continue
                try:
                    changed[path] = _load(path, algorithm)
                except ListError as exc:
                    self._failed[path] = signature
                    errors.extend(exc.errors)
            if errors and errors != list(self.last_errors):
                logger.error(
                    "safemedia: hash lists not reloaded, keeping the lists in force:\n%s",
                    "\n".join(errors[:MAX_ERRORS_SHOWN]),
                )
            self.last_errors = tuple(errors)
            if not changed:
                return False
            for path in changed:
                self._failed.pop(path, None)
            same = all(
                path in self._files and self._files[path].parsed.digest == state.parsed.digest
                for path, state in changed.items()
            )
            previous = self._files
            self._files = {**self._files, **changed}
            if same:
                return False  # touched, same bytes
            try:
                self._set = self._build()
            except Exception:  # e.g. out of memory indexing: keep the lists in force
                logger.exception("safemedia: indexing the reloaded lists failed; keeping the old")
                self._files = previous
                return False
            logger.info("safemedia: hash lists reloaded (generation %x)", self._set.generation)
            return True
        finally:
            self._lock.release()


def _release_freed_memory() -> None:
    """Give the memory the parse freed back to the system where the C library keeps it (glibc
    holds on to ~60-90 bytes per entry of a 1M-line list otherwise); a no-op elsewhere."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError, TypeError):
        return
    trim(0)


def _load(path: Path, algorithm: str | None) -> _FileState:
    try:
        signature = _signature(path)
    except OSError as exc:
        raise ListError([f"{path}: cannot read: {exc.strerror or exc}"]) from None
    return _FileState(signature, parse_file(path, algorithm=algorithm))
