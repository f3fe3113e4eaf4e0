"""Arrays of small unsigned integers packed 0, 1, 2, 4, 8, 16 or 32 bits each.

Usage::

    packed = PackedInts(np.array([3, 0, 2, 1]))  # 2 bits each: one byte
    packed[np.array([0, 2])]  # array([3, 2])
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
_WIDTHS = (0, 1, 2, 4, 8, 16, 32)


class PackedInts:
    """Immutable non-negative integers below ``2**32``, each in the fewest bits of
    :data:`_WIDTHS` that hold the largest one; read by vectorised indexing."""

    __slots__ = ("_data", "_length", "_width")

    _data: npt.NDArray[np.uint8 | np.uint16 | np.uint32]

    def __init__(self, values: npt.ArrayLike) -> None:
        array = np.asarray(values).reshape(-1)
        largest = int(array.max()) if len(array) else 0
        if (len(array) and int(array.min()) < 0) or largest >= 1 << 32:
            raise ValueError("packed values must be in [0, 2**32)")
        self._length = len(array)
        self._width = next(w for w in _WIDTHS if largest < 1 << w)
        if self._width >= 8:
            self._data = array.astype(f"uint{self._width}")
            return
        per_byte = 8 // max(1, self._width)
        data = np.zeros(-(-len(array) // per_byte) if self._width else 0, dtype=np.uint8)
        narrow = array.astype(np.uint8)
        for k in range(per_byte if self._width else 0):
            part = narrow[k::per_byte]
            data[: len(part)] |= part << (k * self._width)
        self._data = data

    def __len__(self) -> int:
        return self._length

    @property
    def width(self) -> int:
        """Bits per value (0: every value is 0)."""
        return self._width

    @property
    def nbytes(self) -> int:
        """Bytes held."""
        return int(self._data.nbytes)

    def __getitem__(self, index: npt.NDArray[np.integer]) -> I64:
        """The values at ``index`` (an integer array), as int64."""
        index = np.asarray(index, dtype=np.int64)
        if self._width == 0:
            return np.zeros(index.shape, dtype=np.int64)
        if self._width >= 8:
            out: I64 = self._data[index].astype(np.int64)
            return out
        per_byte = 8 // self._width
        shift = (index % per_byte) * self._width
        byte: I64 = self._data[index // per_byte].astype(np.int64)
        byte >>= shift
        byte &= (1 << self._width) - 1
        return byte
