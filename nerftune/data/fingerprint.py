"""Fingerprints of a dataset's content, not of its file names: a frame's digest covers the bytes of its files (image,
mask, depth, segmentation) and everything `transforms.json` says of it (pose, intrinsics, the shared fields such as
the document's crop). `nerftune prepare` names every capture's frames alike (`images/frame_00000.png`, ...), so a
hash of names would call any two captures of one frame count the same test set.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DIGEST_LENGTH = 16
SPLIT_KEYS = ("frames", "train_filenames", "val_filenames", "test_filenames")  # which frames, not what they are
CHUNK_BYTES = 1 << 20


def frame_digests(root: Path, frames: list[dict[str, Any]], shared: Mapping[str, Any]) -> dict[str, str]:
    """Each frame's digest, by its `file_path`; `shared` is the top of transforms.json, which every frame inherits."""
    files: dict[str, str] = {}  # a file named by several frames (the point cloud, a shared mask) is read once
    common = _with_file_digests({k: v for k, v in shared.items() if k not in SPLIT_KEYS}, root, files)
    return {
        frame["file_path"]: _digest(json.dumps({**common, **_with_file_digests(frame, root, files)}, sort_keys=True))
        for frame in frames
    }


def combined(digests: Mapping[str, str]) -> str:
    """One short fingerprint of several frames, whatever their order."""
    return _digest("\n".join(f"{name} {digest}" for name, digest in sorted(digests.items())))


def changes(before: Mapping[str, str], after: Mapping[str, str]) -> dict[str, list[str]]:
    """The frames whose content changed, that were added and that were removed, by name."""
    return {
        "changed": sorted(n for n in before.keys() & after.keys() if before[n] != after[n]),
        "added": sorted(after.keys() - before.keys()),
        "removed": sorted(before.keys() - after.keys()),
    }


def _with_file_digests(fields: Mapping[str, Any], root: Path, files: dict[str, str]) -> dict[str, Any]:
    """The fields with every file path (nerfstudio's `*_path` keys) replaced by the digest of the file's bytes."""
    resolved = dict(fields)
    for key, value in fields.items():
        if key.endswith("path") and isinstance(value, str):
            if value not in files:
                files[value] = _file_digest(root / value)
            resolved[key] = files[value]
    return resolved


def _file_digest(path: Path) -> str:
    sha = hashlib.sha256()
    try:
        with path.open("rb") as file:
            while chunk := file.read(CHUNK_BYTES):
                sha.update(chunk)
    except OSError:
        return "unreadable"  # the dataset check reports missing images; an optional file may be absent
    return sha.hexdigest()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:DIGEST_LENGTH]
