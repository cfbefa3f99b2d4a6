"""Read torch's legacy (non-zip) ``.pth`` state dicts into numpy arrays, without torch.

A ``.pth`` file is a pickle, and unpickling runs whatever the file names. So the checksum is verified
before any byte is unpickled, and the unpickler only resolves a handful of torch names, each mapped to
an inert stand-in: an ordered dict, the tensor-rebuild functions and the storage types.

Legacy layout (``torch.save(..., _use_new_zipfile_serialization=False)``), one stream:

1. pickled magic number, pickled protocol version (1001), pickled sys info (byte order, type sizes);
2. the pickled state dict, whose storages are persistent ids
   ``("storage", <StorageType>, key, location, element_count, view_metadata)``;
3. a pickled list of storage keys;
4. for each key in that order: an 8-byte little-endian element count, then the raw little-endian bytes.

Example::

    >>> weights = read_legacy_checkpoint(path, expected_sha256="b0353104...")
    >>> weights["features.0.0.weight"].shape
    (32, 3, 3, 3)
"""

from __future__ import annotations

import collections
import hashlib
import io
import pickle
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["CheckpointError", "read_legacy_checkpoint"]

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001
_ZIP_SIGNATURE = b"PK\x03\x04"
_HASH_CHUNK_BYTES = 1 << 20

# torch storage type name -> little-endian numpy dtype (bfloat16 has no numpy dtype and is refused).
_STORAGE_DTYPES = {
    "DoubleStorage": "<f8",
    "FloatStorage": "<f4",
    "HalfStorage": "<f2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}


class CheckpointError(ValueError):
    """The checkpoint cannot be read safely: wrong checksum, unsupported format, truncated or hostile."""


@dataclass(frozen=True)
class _StorageType:
    name: str
    dtype: np.dtype


@dataclass(frozen=True)
class _StorageRef:
    key: str
    dtype: np.dtype
    element_count: int


@dataclass(frozen=True)
class _TensorRef:
    storage: _StorageRef
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored) -> _TensorRef:
    """Stand-in for ``torch._utils._rebuild_tensor(_v2)``: records where the tensor's values are."""
    if not isinstance(storage, _StorageRef):
        raise CheckpointError(f"tensor rebuilt from {type(storage).__name__}, expected a storage")
    if not isinstance(storage_offset, int) or storage_offset < 0:
        raise CheckpointError(f"tensor storage offset {storage_offset!r} is not a non-negative int")
    shape, strides = tuple(size), tuple(stride)
    if len(shape) != len(strides) or not all(isinstance(v, int) and v >= 0 for v in shape + strides):
        raise CheckpointError(f"tensor shape {shape!r} / stride {strides!r} are invalid")
    return _TensorRef(storage, storage_offset, shape, strides)


def _allowed_globals() -> dict[tuple[str, str], object]:
    allowed: dict[tuple[str, str], object] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    }
    for name, dtype in _STORAGE_DTYPES.items():
        allowed[("torch", name)] = _StorageType(name, np.dtype(dtype))
    return allowed


_ALLOWED_GLOBALS = _allowed_globals()


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the names a torch state dict needs; any other global is refused by name."""

    def __init__(self, stream: io.BytesIO, storages: dict[str, _StorageRef]):
        super().__init__(stream)
        self._storages = storages

    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise CheckpointError(
                f"checkpoint references forbidden global {module}.{name}; refusing to load it "
                "(a state dict only needs OrderedDict, tensor rebuilds and storages)"
            ) from None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise CheckpointError(f"unsupported persistent id {pid!r}; only storages are allowed")
        _, storage_type, key, _location, element_count, view_metadata = pid
        if not isinstance(storage_type, _StorageType):
            raise CheckpointError(f"storage type {storage_type!r} is not a known torch storage")
        if not isinstance(key, str) or not isinstance(element_count, int) or element_count < 0:
            raise CheckpointError(f"storage id {pid!r} has a bad key or element count")
        if view_metadata is not None:
            raise CheckpointError(f"storage {key} is a pre-0.4 storage view, which is not supported")
        ref = _StorageRef(key, storage_type.dtype, element_count)
        known = self._storages.setdefault(key, ref)
        if known != ref:
            raise CheckpointError(f"storage {key} is declared twice with different types or sizes")
        return known


def read_legacy_checkpoint(path: str | Path, expected_sha256: str | None) -> dict[str, np.ndarray]:
    """Tensors of a legacy torch state dict, in file order, as native-order numpy copies.

    ``expected_sha256`` (64 hex digits) is checked before anything is unpickled; pass ``None`` only
    for files you made yourself.
    """
    data = _read_verified(Path(path), expected_sha256)
    if data.startswith(_ZIP_SIGNATURE):
        raise CheckpointError(
            f"{path} is a zip-format torch checkpoint (torch >= 1.6 default), which is not supported; "
            "re-save it with torch.save(obj, f, _use_new_zipfile_serialization=False)"
        )
    stream = io.BytesIO(data)
    storages: dict[str, _StorageRef] = {}
    try:
        _check_header(stream, storages)
        state = _RestrictedUnpickler(stream, storages).load()
        keys = _RestrictedUnpickler(stream, storages).load()
    except CheckpointError:
        raise
    except (EOFError, pickle.UnpicklingError) as error:
        raise CheckpointError(f"{path} is truncated or corrupt: {error}") from error
    except Exception as error:  # anything a malformed pickle can provoke inside the unpickler
        raise CheckpointError(f"{path} is not a valid legacy checkpoint: {error!r}") from error
    tensors = _check_state_dict(state)
    storage_arrays = _read_storages(stream, keys, storages, path)
    return {name: _materialise(ref, storage_arrays[ref.storage.key]) for name, ref in tensors.items()}


def _read_verified(path: Path, expected_sha256: str | None) -> bytes:
    """Whole file, hashed while it is read, so what is verified is exactly what gets parsed."""
    if expected_sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", expected_sha256):
        raise ValueError(f"expected_sha256 {expected_sha256!r} is not 64 hex digits")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    digest, chunks = hashlib.sha256(), []
    with path.open("rb") as file:
        while chunk := file.read(_HASH_CHUNK_BYTES):
            digest.update(chunk)
            chunks.append(chunk)
    if expected_sha256 is not None and digest.hexdigest() != expected_sha256.lower():
        raise CheckpointError(
            f"checksum mismatch for {path}: sha256 {digest.hexdigest()}, expected {expected_sha256.lower()}; "
            "the file is corrupt or not the expected checkpoint, reinstall it"
        )
    return b"".join(chunks)


def _check_header(stream: io.BytesIO, storages: dict[str, _StorageRef]) -> None:
    magic = _RestrictedUnpickler(stream, storages).load()
    if magic != LEGACY_MAGIC_NUMBER:
        raise CheckpointError(f"not a legacy torch checkpoint (magic number {magic!r})")
    version = _RestrictedUnpickler(stream, storages).load()
    if version != LEGACY_PROTOCOL_VERSION:
        raise CheckpointError(f"unsupported legacy protocol version {version!r}, expected 1001")
    sys_info = _RestrictedUnpickler(stream, storages).load()
    if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
        raise CheckpointError(f"only little-endian checkpoints are supported (sys info {sys_info!r})")


def _check_state_dict(state: object) -> dict[str, _TensorRef]:
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint holds a {type(state).__name__}, expected a state dict")
    for name, value in state.items():
        if not isinstance(name, str) or not isinstance(value, _TensorRef):
            raise CheckpointError(f"state dict entry {name!r} is {type(value).__name__}, expected a tensor")
    return state


def _read_storages(
    stream: io.BytesIO, keys: object, storages: dict[str, _StorageRef], path: str | Path
) -> dict[str, np.ndarray]:
    if not isinstance(keys, list) or sorted(keys) != sorted(storages):
        raise CheckpointError(f"storage key list {keys!r} does not match the storages the tensors use")
    arrays = {}
    for key in keys:
        ref = storages[key]
        count_bytes = stream.read(8)
        if len(count_bytes) != 8:
            raise CheckpointError(f"{path} is truncated: storage {key} has no element count")
        count = int.from_bytes(count_bytes, "little")
        if count != ref.element_count:
            raise CheckpointError(f"storage {key} holds {count} elements, its id says {ref.element_count}")
        raw = stream.read(count * ref.dtype.itemsize)
        if len(raw) != count * ref.dtype.itemsize:
            raise CheckpointError(
                f"{path} is truncated: storage {key} needs {count * ref.dtype.itemsize} bytes, got {len(raw)}"
            )
        arrays[key] = np.frombuffer(raw, dtype=ref.dtype)
    if stream.read(1):
        raise CheckpointError(f"{path} has unexpected bytes after its last storage")
    return arrays


def _materialise(ref: _TensorRef, storage: np.ndarray) -> np.ndarray:
    """Copy the strided view out of the storage, after proving it stays inside the storage."""
    native = storage.dtype.newbyteorder("=")
    if 0 in ref.shape:
        return np.zeros(ref.shape, dtype=native)
    last = ref.offset + sum((n - 1) * s for n, s in zip(ref.shape, ref.stride))
    if last >= storage.size:
        raise CheckpointError(
            f"tensor (offset {ref.offset}, shape {ref.shape}, stride {ref.stride}) reads element {last} "
            f"of storage {ref.storage.key}, which has only {storage.size}"
        )
    view = np.lib.stride_tricks.as_strided(
        storage[ref.offset :],
        shape=ref.shape,
        strides=tuple(s * storage.itemsize for s in ref.stride),
        writeable=False,
    )
    return np.array(view, dtype=native, order="C", copy=True)
