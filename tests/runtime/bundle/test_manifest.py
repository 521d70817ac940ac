"""The bundle schema: errors that name the fix for missing, damaged or other-version manifests, and a
manifest build-engine wrote read and written back without losing a field."""

from __future__ import annotations

import json

import pytest

from sdrt.runtime.bundle.manifest import FORMAT_VERSION, Manifest, read_manifest
from sdrt.runtime.errors import BundleError


def test_read_manifest_errors(tmp_path, tiny):
    out = tiny.bundle("sd1")
    with pytest.raises(BundleError, match="build-engine"):
        read_manifest(tmp_path)
    data = json.loads((out / "manifest.json").read_text())
    for name, damage, message in [
        ("newer", {**data, "format_version": FORMAT_VERSION + 1}, "upgrade sdrt"),
        ("older", {**data, "format_version": FORMAT_VERSION - 1}, "older than this sdrt reads"),
        ("no-version", {k: v for k, v in data.items() if k != "format_version"}, "no integer format_version"),
        ("no-shapes", {k: v for k, v in data.items() if k != "shapes"}, "is damaged"),
    ]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "manifest.json").write_text(json.dumps(damage))
        with pytest.raises(BundleError, match=message):
            read_manifest(tmp_path / name)
    (tmp_path / "garbage").mkdir()
    (tmp_path / "garbage" / "manifest.json").write_bytes(b"\x00\xff not json")
    with pytest.raises(BundleError, match="cannot read"):
        read_manifest(tmp_path / "garbage")


@pytest.mark.parametrize("kind", ["sd1", "uncond"])
def test_manifest_schema_reads_and_writes_the_whole_json(tiny, kind):
    """Every field build-engine writes is in the typed schema: reading and writing it back loses nothing."""
    out = tiny.bundle(kind)
    raw = json.loads((out / "manifest.json").read_text())
    assert json.loads(json.dumps(Manifest.from_json(raw).to_json())) == raw
