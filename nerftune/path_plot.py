"""A PNG of the camera paths: the training cameras, the document and every path, from above and from the side."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_paths(camera_paths: dict, training_poses: np.ndarray, out: Path) -> None:
    info = camera_paths["nerftune"]
    poi, normal, up = (np.array(info[k]) for k in ("point_of_interest", "document_normal", "document_up"))
    right = np.cross(up, normal)
    to_plane = lambda p: np.stack([(p - poi) @ right, (p - poi) @ up, (p - poi) @ normal], -1) / info["unit"]  # noqa: E731
    poses = np.array([np.array(c["camera_to_world"]).reshape(4, 4) for c in camera_paths["camera_path"]])

    figure, (top, side) = plt.subplots(1, 2, figsize=(12, 5.5))
    train = to_plane(training_poses[:, :3, 3])
    for axis, (a, b), title in ((top, (0, 1), "from above (document plane)"), (side, (0, 2), "from the side")):
        axis.scatter(train[:, a], train[:, b], s=12, c="0.45", label="training cameras")
        for segment in info["segments"]:
            points = to_plane(poses[segment["first"] : segment["first"] + segment["count"], :3, 3])
            closed = np.vstack([points, points[:1]]) if segment["name"] != "trajectory" else points
            axis.plot(closed[:, a], closed[:, b], "-o", ms=3, label=segment["name"])
        width, height = info.get("document_size", (0.0, 0.0))
        half = np.array([width, height]) / 2 / info["unit"]
        if b == 1:
            axis.add_patch(plt.Rectangle(-half, *(2 * half), fill=False, color="k", lw=1.5, label="document"))
        else:
            axis.plot([-half[0], half[0]], [0, 0], "k-", lw=2.5, label="document plane")
        axis.plot(0, 0, "k+", ms=12, label="point of interest")
        axis.set_title(title)
        axis.set_xlabel("right (x unit distance)")
        axis.set_ylabel("up" if b == 1 else "height above the document")
        axis.set_aspect("equal", adjustable="datalim")
        axis.grid(alpha=0.3)
    top.legend(fontsize=7, loc="best")
    figure.tight_layout()
    figure.savefig(out, dpi=110)
    plt.close(figure)
