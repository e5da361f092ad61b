"""Tiny models that follow handlab's model contract, for the attribution tests (CPU, < 1 ms)."""

from __future__ import annotations

import torch
from torch import nn

from handlab.models.base import PoseModel


def soft_argmax(heatmaps: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """(B, J, H, W) -> (B, J, 2) expected (x, y) in heatmap pixels under softmax(beta * H)."""
    b, j, h, w = heatmaps.shape
    prob = torch.softmax(beta * heatmaps.flatten(2), dim=-1).view(b, j, h, w)
    xs = torch.arange(w, dtype=heatmaps.dtype)
    ys = torch.arange(h, dtype=heatmaps.dtype)
    return torch.stack([(prob.sum(2) * xs).sum(-1), (prob.sum(3) * ys).sum(-1)], dim=-1)


class TinyHeatmapNet(PoseModel):
    """conv-BN-ReLU-conv-BN-ReLU-conv -> J heatmaps at stride 2, soft-argmax decode (input px)."""

    def __init__(self, joints: int = 4, width: int = 6, seed: int = 0) -> None:
        super().__init__()
        self.num_joints = joints
        torch.manual_seed(seed)
        self.conv1 = nn.Conv2d(3, width, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=2, padding=1)
        self.bn2 = nn.BatchNorm2d(width)
        self.head = nn.Conv2d(width, joints, 1)
        with torch.no_grad():  # non-trivial running statistics, as after training
            self.bn1.running_mean.uniform_(-0.1, 0.1)
            self.bn2.running_var.uniform_(0.5, 2.0)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = torch.relu(self.bn1(self.conv1(images)))
        x = torch.relu(self.bn2(self.conv2(x)))
        heatmaps = self.head(x)  # (B, J, H/2, W/2)
        out = {"heatmaps": heatmaps}
        out["keypoints"] = self.decode(out)["keypoints"].detach()
        return out

    def decode(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        uv = soft_argmax(outputs["heatmaps"], beta=4.0)  # (B, J, 2) heatmap px
        return {"keypoints": uv * 2 + 0.5}  # stride 2: heatmap px -> input px


class TinyRegression3D(PoseModel):
    """Pooled conv features -> linear head: keypoints (B, J, 2) px and xyz (B, J, 3) mm."""

    is_3d = True

    def __init__(self, joints: int = 3, seed: int = 0) -> None:
        super().__init__()
        self.num_joints = joints
        torch.manual_seed(seed)
        self.conv = nn.Conv2d(3, 4, 5, stride=2, padding=2)
        self.fc = nn.Linear(4 * 16, joints * 5)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = torch.tanh(self.conv(images))
        x = nn.functional.adaptive_avg_pool2d(x, 4).flatten(1)
        raw = self.fc(x).view(images.shape[0], self.num_joints, 5)
        return {"keypoints": raw[..., :2] * 10 + 16, "xyz": raw[..., 2:] * 50}

    def decode(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"keypoints": outputs["keypoints"], "xyz": outputs["xyz"]}


class ShiftedDecode(PoseModel):
    """forward's "keypoints" are 100 px off; only decode is right (the target must use decode)."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = TinyHeatmapNet(joints=2)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.inner(images)
        return {"heatmaps": out["heatmaps"], "keypoints": out["keypoints"] + 100}

    def decode(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.inner.decode(outputs)


def images(b: int = 2, size: int = 32, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    """Smooth random images (B, 3, size, size) in [0, 1]: two coloured Gaussian blobs."""
    g = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(
        torch.arange(size, dtype=dtype), torch.arange(size, dtype=dtype), indexing="ij"
    )
    out = torch.full((b, 3, size, size), 0.2, dtype=dtype)
    for _ in range(2):
        centre = torch.rand(b, 2, 1, 1, generator=g, dtype=dtype) * size
        colour = torch.rand(b, 3, 1, 1, generator=g, dtype=dtype)
        d2 = (xs - centre[:, :1]) ** 2 + (ys - centre[:, 1:]) ** 2  # (B, H, W)
        out = out + 0.7 * colour * torch.exp(-d2 / (2 * (size / 6) ** 2))
    return out.clamp(0, 1)


def targets(b: int = 2, joints: int = 4, size: int = 32, seed: int = 1, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, joints, 2, generator=g, dtype=dtype) * (size - 1)


def near_targets(model, x: torch.Tensor, offset: float = 2.0) -> torch.Tensor:
    """Targets ``offset`` px from the model's decoded joints (a likelihood that varies)."""
    return (model.decode(model.eval()(x))["keypoints"] + offset).detach()


RUN_STEPS = 2


class BlobHands(torch.utils.data.Dataset):
    """A frozen stand-in dataset: item i is made from seed i only (image, mask, 21 keypoints)."""

    def __len__(self) -> int:
        return 5

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        image = images(b=1, size=48, seed=i, dtype=torch.float32)[0]
        g = torch.Generator().manual_seed(100 + i)
        keypoints = 8 + torch.rand(21, 2, generator=g) * 32
        visibility = (torch.rand(21, generator=g) > 0.2).float()
        mask = (image.mean(0, keepdim=True) > 0.4).float()  # (1, H, W)
        return {"image": image, "keypoints": keypoints, "visibility": visibility, "mask": mask}


def run_case():
    """The tiny dataset-scale case shared by the runner tests and their subprocesses."""
    from handlab.attribution.config import PoseIGConfig
    from handlab.attribution.runner import RunConfig

    model = TinyHeatmapNet(joints=21, width=4).eval()
    data = BlobHands()
    poseig = PoseIGConfig(path="blur", method="gausslegendre", steps=RUN_STEPS)
    config = RunConfig(poseig=poseig, batch_size=2)
    return model, data, config


def kill_after_first_unit(out: str) -> None:
    """Run in a subprocess: SIGKILL itself right after unit 1 is written."""
    import os
    import signal

    from handlab.attribution.runner import run_attribution

    torch.set_num_threads(1)
    model, data, config = run_case()

    def die(unit: int) -> None:
        if unit == 1:
            os.kill(os.getpid(), signal.SIGKILL)

    run_attribution(model, data, out, config=config, progress=False, on_unit=die)


def distributed_worker(rank: int, world: int, port: int, out: str) -> None:
    """One gloo rank of a 2-process CPU run (started by torch.multiprocessing.spawn)."""
    import torch.distributed as dist

    from handlab.attribution.runner import run_attribution

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    model, data, config = run_case()
    done = run_attribution(model, data, out, config=config, progress=False)
    assert done["computed"] == [u for u in range(3) if u % world == rank], done
    dist.destroy_process_group()
