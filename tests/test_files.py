"""Atomic writes and JSON object reading."""

from __future__ import annotations

import pytest

from core.files import read_json_object, write_atomically


def test_write_atomically_replaces_whole_files_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "deep" / "result.json"
    write_atomically(path, '{"a": 1}')
    write_atomically(path, b'{"a": 2}')
    assert read_json_object(path) == {"a": 2}
    assert sorted(p.name for p in path.parent.iterdir()) == ["result.json"]


def test_read_json_object_missing_is_empty_and_bad_files_name_themselves(tmp_path):
    assert read_json_object(tmp_path / "absent.json") == {}
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ValueError, match="broken.json is not valid JSON"):
        read_json_object(broken)
    listing = tmp_path / "list.json"
    listing.write_text("[1, 2]")
    with pytest.raises(ValueError, match="list.json must hold a JSON object"):
        read_json_object(listing)
