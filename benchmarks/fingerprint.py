"""What the data check costs: seconds per GB to fingerprint a dataset (`Dataset.data_hash`, which every trial computes
before it trains and the sweep at launch), against reading the same bytes without hashing them.

Writes a dataset of `--frames` frames of `--mb` MB each (incompressible bytes under PNG names: the hash reads bytes,
whatever they encode) with a `transforms.json`, reads it once to warm the page cache, then alternates plain reading
and fingerprinting `--repeats` times. Prints the median and range of each in s/GB and of the ratio fingerprint / read.
Usage:

    python benchmarks/fingerprint.py [--frames 200] [--mb 1.5] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from timing import interleaved, ratios, summary

from nerftune.data.fingerprint import CHUNK_BYTES, combined, frame_digests


def write_dataset(root: Path, frames: int, megabytes: float) -> tuple[list[dict], dict]:
    (root / "images").mkdir(parents=True)
    size = int(megabytes * 2**20)
    entries = []
    for index in range(frames):
        name = f"images/frame_{index:05d}.png"
        (root / name).write_bytes(os.urandom(size))
        pose = [[1, 0, 0, index * 0.01], [0, 1, 0, 0], [0, 0, 1, 2], [0, 0, 0, 1]]
        entries.append({"file_path": name, "transform_matrix": pose})
    shared = {"fl_x": 500.0, "fl_y": 500.0, "cx": 320.0, "cy": 240.0, "w": 640, "h": 480, "frames": entries}
    (root / "transforms.json").write_text(json.dumps(shared))
    return entries, shared


def read_all(root: Path, frames: list[dict]) -> int:
    total = 0
    for frame in frames:
        with (root / frame["file_path"]).open("rb") as file:
            while chunk := file.read(CHUNK_BYTES):
                total += len(chunk)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--mb", type=float, default=1.5, help="megabytes per image")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        frames, shared = write_dataset(root, args.frames, args.mb)
        gigabytes = read_all(root, frames) / 2**30  # also warms the page cache: both measure hashing, not the disk
        print(f"{args.frames} frames, {gigabytes:.2f} GB in {root}", flush=True)

        def seconds_per_gb(work) -> float:
            start = time.perf_counter()
            work()
            return (time.perf_counter() - start) / gigabytes

        figures = interleaved(
            {
                "read": lambda: seconds_per_gb(lambda: read_all(root, frames)),
                "fingerprint": lambda: seconds_per_gb(lambda: combined(frame_digests(root, frames, shared))),
            },
            args.repeats,
        )
    print(f"read, s/GB:           {summary(figures['read'])}")
    print(f"fingerprint, s/GB:    {summary(figures['fingerprint'])}")
    print(f"fingerprint / read:   {summary(ratios(figures['fingerprint'], figures['read']), 2)}")


if __name__ == "__main__":
    main()
