"""Reading a safetensors file one tensor at a time into arrays the caller owns.

`safetensors.numpy.load_file` reads the whole file into bytes and then into new arrays, so opening a
checkpoint held its weights three times (bytes, arrays, the model's buffer): 1.4 GiB for GPT-2
small's 0.47 GiB. Here each tensor's bytes go straight from the file into the model's buffer, so
the weights are held once.
"""

from __future__ import annotations

import json
import math
import struct
import sys
from pathlib import Path

import numpy as np

from .errors import CheckpointError
from .files import NotReadable, open_regular

# safetensors dtype names -> numpy dtypes (little-endian, as the format stores them); BF16 is
# the upper half of a float32 and is widened by hand.
_DTYPES = {"F16": np.dtype("<f2"), "F32": np.dtype("<f4"), "F64": np.dtype("<f8"), "BF16": np.dtype("<u2")}
_CHUNK = 1 << 22  # elements converted at a time when the file's dtype differs from the buffer's
_MAX_HEADER = 100 << 20


class TensorFile:
    """The header of a safetensors file (names, dtypes, shapes, byte ranges); tensors read on demand."""

    def __init__(self, path):
        self.path = Path(path)
        try:
            with open_regular(self.path) as f:
                raw = f.read(8)
                (n,) = struct.unpack("<Q", raw) if len(raw) == 8 else (-1,)
                header = json.loads(f.read(n)) if 0 < n <= _MAX_HEADER else None
                self.data_start = 8 + n
                self.size = f.seek(0, 2)
        except FileNotFoundError:
            where = f"{self.path.parent} has no {self.path.name}"
            raise CheckpointError(f"{where}; is it a tinylm checkpoint directory?") from None
        except NotReadable as exc:
            raise CheckpointError(f"{self.path} {exc}; re-save or retrain") from None
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise CheckpointError(f"{self.path} is damaged ({exc}); re-save or retrain") from None
        if not isinstance(header, dict):
            raise CheckpointError(f"{self.path} is damaged (no safetensors header); re-save or retrain")
        header.pop("__metadata__", None)
        for name, entry in header.items():
            if not _well_formed(entry):
                raise CheckpointError(f"{self.path} is damaged (tensor {name}'s header entry); re-save or retrain")
        self.entries = header

    def names(self) -> set[str]:
        return set(self.entries)

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.entries[name].get("shape", ()))

    def dtype_name(self, name: str) -> str:
        return str(self.entries[name].get("dtype"))

    def _checked(self, name: str) -> tuple[dict, np.dtype]:
        """The tensor's header entry and file dtype, after checking that it is a float tensor inside the file."""
        entry = self.entries[name]
        src = _DTYPES.get(entry.get("dtype"))
        if src is None:
            raise CheckpointError(f"{self.path}: tensor {name} has dtype {entry.get('dtype')}, expected a float type")
        begin, end = entry.get("data_offsets", (0, -1))
        if end - begin != math.prod(self.shape(name)) * src.itemsize or self.data_start + end > self.size:
            raise CheckpointError(f"{self.path} is damaged (tensor {name} runs past the file); re-save or retrain")
        return entry, src

    def _parts(self, f, entry: dict, src: np.dtype, count: int):
        """The next `count` values from f as (offset, float array), _CHUNK at a time (BF16 widened)."""
        for lo in range(0, count, _CHUNK):
            n = min(_CHUNK, count - lo)
            part = np.empty(n, dtype=src)
            _read_exact(f, memoryview(part).cast("B"), self.path)
            if entry["dtype"] == "BF16":
                part = (part.astype("<u4") << 16).view("<f4")
            yield lo, part

    def read_into(self, name: str, out: np.ndarray) -> None:
        """WRITES out (C-contiguous, float32 or float64, the tensor's shape) with the tensor's values."""
        entry, src = self._checked(name)
        flat = out.reshape(-1)  # a view: out is contiguous
        with open(self.path, "rb", buffering=0) as f:
            f.seek(self.data_start + entry["data_offsets"][0])
            if src == flat.dtype.newbyteorder("<"):
                _read_exact(f, memoryview(flat).cast("B"), self.path)
                if sys.byteorder != "little":
                    flat.byteswap(inplace=True)
                return
            for lo, part in self._parts(f, entry, src, flat.size):
                flat[lo : lo + part.size] = part

    def equals(self, name: str, other: np.ndarray) -> bool:
        """Whether the tensor holds exactly other's values (compared in other's dtype), read in chunks,
        so checking a 50257x768 table against another costs no copy of either."""
        if self.shape(name) != other.shape:
            return False
        entry, src = self._checked(name)
        flat = other.reshape(-1)
        with open(self.path, "rb") as f:
            f.seek(self.data_start + entry["data_offsets"][0])
            return all(
                np.array_equal(part.astype(flat.dtype, copy=False), flat[lo : lo + part.size])
                for lo, part in self._parts(f, entry, src, flat.size)
            )


def _well_formed(entry) -> bool:
    """A header entry with a dtype name, a shape of sizes and two ordered byte offsets."""

    def size(x):
        return isinstance(x, int) and not isinstance(x, bool) and x >= 0

    if not isinstance(entry, dict) or not isinstance(entry.get("dtype"), str):
        return False
    shape, offsets = entry.get("shape"), entry.get("data_offsets")
    return (
        isinstance(shape, list)
        and all(size(n) for n in shape)
        and isinstance(offsets, list)
        and len(offsets) == 2
        and all(size(n) for n in offsets)
        and offsets[0] <= offsets[1]
    )


def _read_exact(f, buf: memoryview, path: Path) -> None:
    done = 0
    while done < len(buf):
        got = f.readinto(buf[done:])
        if not got:
            raise CheckpointError(f"{path} is damaged (it ends early); re-save or retrain")
        done += got
