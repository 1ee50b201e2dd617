"""nerfstudio's code that puts tensors on the CPU in a training step, kept on the model's device
(`nerftune/nerf/on_device.py`, which the fast path uses): the same numbers, bit for bit, nerfstudio's own code back
when undone, and the copies from the CPU that it saves a training forward."""

import torch
from device_waits import DeviceWaits
from nerfstudio.cameras.camera_optimizers import CameraOptimizerConfig
from nerfstudio.field_components.encodings import HashEncoding

from nerftune.data.dataset import load_dataset, write_view
from nerftune.nerf.config import build_config
from nerftune.nerf.host_batches import make_batches_on_host
from nerftune.nerf.loop import NerfTrainer
from nerftune.nerf.on_device import keep_on_device, undo_keep_on_device


def test_the_hash_on_the_device_is_nerfstudios_bit_for_bit():
    grid = HashEncoding(num_levels=6, log2_hashmap_size=12, implementation="torch")
    model = torch.nn.ModuleList([grid])
    generator = torch.Generator().manual_seed(0)
    # a grid's corners (int32, as nerfstudio rounds them) up to the finest levels' 2^20, where 64 bits matter
    corners = torch.randint(0, 2**20, (500, 6, 3), generator=generator, dtype=torch.int32)
    own = grid.hash_fn(corners)
    keep_on_device(model, torch.device("cpu"))
    assert "hash_fn" in vars(grid)
    assert torch.equal(grid.hash_fn(corners), own) and grid.hash_fn(corners).dtype == own.dtype == torch.int64
    undo_keep_on_device(model)
    assert "hash_fn" not in vars(grid) and grid.hash_offset.device.type == "cpu"

    class OwnHash(HashEncoding):  # (a method's own grid, say): its hash is its own
        def hash_fn(self, in_tensor):
            return super().hash_fn(in_tensor)

    own_grid = OwnHash(num_levels=2, log2_hashmap_size=8, implementation="torch")
    keep_on_device(torch.nn.ModuleList([own_grid]), torch.device("cpu"))
    assert "hash_fn" not in vars(own_grid)


def test_the_camera_metrics_on_the_device_are_nerfstudios_bit_for_bit():
    optimizer = CameraOptimizerConfig(mode="SO3xR3").setup(num_cameras=7, device="cpu")
    model = torch.nn.ModuleList([optimizer])
    torch.manual_seed(0)
    for scale in (0.01, 0.1, 0.5):
        with torch.no_grad():
            optimizer.pose_adjustment.normal_(0, scale)
        own, kept = {}, {}
        optimizer.get_metrics_dict(own)
        keep_on_device(model, torch.device("cpu"))
        optimizer.get_metrics_dict(kept)
        undo_keep_on_device(model)
        assert own.keys() == kept.keys() and len(own) == 4
        for name, value in own.items():
            assert torch.equal(kept[name], torch.as_tensor(value)), name  # (nerfstudio's through numpy)
    assert "get_metrics_dict" not in vars(optimizer)


def test_a_training_forward_of_nerfacto_kept_on_its_device_copies_from_the_cpu_once(scene_dir, tmp_path):
    """torch's meta device stands in for a GPU: nerfstudio's own forward copies 52 tensors from the CPU (17 a grid
    call, and the sampler's bins); kept on the device, only the bins, which the whole step's graph makes there."""
    dataset = load_dataset(scene_dir)
    view = write_view(dataset, dataset.train_indices(6), tmp_path / "view")
    pipeline = NerfTrainer(build_config("nerfacto", view, tmp_path / "run", 10, 0, "cpu", "tiny")).pipeline
    model = pipeline.model.to("meta")
    make_batches_on_host(pipeline.datamanager, "meta")
    ray_bundle, _ = pipeline.datamanager.next_train(0)
    copies = {}
    for kept in (False, True):
        if kept:
            keep_on_device(model, torch.device("meta"))
        with DeviceWaits() as waits:
            model(ray_bundle)
        copies[kept] = waits.kinds().count("copy from the CPU")
        assert set(waits.kinds()) <= {"copy from the CPU"}, "a training forward reads nothing back"
    assert copies == {False: 52, True: 1}
