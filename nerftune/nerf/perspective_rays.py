"""nerfstudio's training rays for perspective cameras, made without reading anything back from the GPU.

nerfstudio's `Cameras.generate_rays` serves every camera model (perspective, fisheye, equirectangular, ...) and
decides for each batch, on the GPU, what applies: whether the cameras differ in size, which camera types the batch
holds, whether its distortion is zero; then it fills each type's rays through boolean masks. Each decision reads a
value back and each masked selection has a size that depends on the data: on CUDA about a dozen waits for the GPU a
step, each stopping the host from queueing the next kernels. For cameras that are all perspective (what COLMAP and
nerftune's `prepare` give), every decision is the same at every step: taken here once, and the same arithmetic,
without masks, gives nerfstudio's rays bit for bit (the masks only select and place values).
"""

from __future__ import annotations

from typing import Any

import torch
from nerfstudio.cameras import camera_utils
from nerfstudio.cameras.cameras import Cameras, CameraType
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.model_components.ray_generators import RayGenerator


class PerspectiveRays:
    """nerfstudio's `RayGenerator.forward` for perspective cameras (1.1.5), its decisions taken once."""

    def __init__(self, generator: RayGenerator, undistort: bool):
        self.generator, self.undistort = generator, undistort

    @classmethod
    def of(cls, generator: RayGenerator) -> PerspectiveRays | None:
        """For `generator`'s cameras if they are all perspective, in one flat batch, with lens distortion on every
        camera or on none (nerfstudio undistorts a batch if any of its rays has distortion); else None."""
        cameras: Cameras = generator.cameras
        if len(cameras.shape) != 1 or cameras.times is not None:
            return None
        if not bool(torch.all(cameras.camera_type == CameraType.PERSPECTIVE.value)):  # (read once, here)
            return None
        distortion = cameras.distortion_params
        if distortion is None:
            return cls(generator, undistort=False)
        distorted = (distortion != 0).any(dim=-1)
        if bool(distorted.all()) or not bool(distorted.any()):
            return cls(generator, undistort=bool(distorted.any()))
        return None

    def __call__(self, ray_indices: torch.Tensor) -> RayBundle:
        """The rays of `ray_indices` (camera, row, column; on the cameras' device) as nerfstudio makes them."""
        cameras: Cameras = self.generator.cameras
        coords = self.generator.image_coords[ray_indices[:, 1], ray_indices[:, 2]]
        camera_indices = ray_indices[:, 0].unsqueeze(-1).to(torch.long)
        true_indices = [camera_indices[..., 0]]
        y, x = coords[..., 0], coords[..., 1]
        fx, fy = cameras.fx[true_indices].squeeze(-1), cameras.fy[true_indices].squeeze(-1)
        cx, cy = cameras.cx[true_indices].squeeze(-1), cameras.cy[true_indices].squeeze(-1)
        coord = torch.stack([(x - cx) / fx, (y - cy) / fy], -1)
        coord_x_offset = torch.stack([(x - cx + 1) / fx, (y - cy) / fy], -1)
        coord_y_offset = torch.stack([(x - cx) / fx, (y - cy + 1) / fy], -1)
        coord_stack = torch.stack([coord, coord_x_offset, coord_y_offset], dim=0)  # (3, rays, 2)
        if self.undistort:
            distortion = cameras.distortion_params[true_indices]
            coord_stack = camera_utils.radial_and_tangential_undistort(coord_stack, distortion)
        coord_stack[..., 1] *= -1
        # a perspective camera looks down its -z axis: nerfstudio's directions before the rotation
        minus_z = coord_stack.new_full((*coord_stack.shape[:-1], 1), -1.0)
        directions_stack = torch.cat([coord_stack.float(), minus_z.float()], -1)
        c2w = cameras.camera_to_worlds[true_indices]
        rotation = c2w[..., :3, :3]
        directions_stack = torch.sum(directions_stack[..., None, :] * rotation, dim=-1)
        directions_stack, directions_norm = _normalize_with_norm(directions_stack)
        directions = directions_stack[0]
        dx = torch.sqrt(torch.sum((directions - directions_stack[1]) ** 2, dim=-1))
        dy = torch.sqrt(torch.sum((directions - directions_stack[2]) ** 2, dim=-1))
        metadata: dict[str, Any] = {}
        if cameras.metadata is not None:
            metadata = cameras._apply_fn_to_dict(cameras.metadata, lambda x: x[true_indices])
        metadata["directions_norm"] = directions_norm[0].detach()
        return RayBundle(
            origins=c2w[..., :3, 3],
            directions=directions,
            pixel_area=(dx * dy)[..., None],
            camera_indices=camera_indices,
            times=None,
            metadata=metadata,
        )


def _normalize_with_norm(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """nerfstudio's `camera_utils.normalize_with_norm(x, -1)`, its epsilon made on `x`'s device (it makes it on the
    CPU and copies it there: on CUDA, a wait)."""
    epsilon = torch.full((1,), camera_utils._EPS, dtype=x.dtype, device=x.device)
    norm = torch.maximum(torch.linalg.vector_norm(x, dim=-1, keepdims=True), epsilon)
    return x / norm, norm
