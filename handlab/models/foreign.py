"""Explain your own model: a plain network made to follow handlab's model contract.

Taught in chapter 08 (``notebooks/08_poseig.py``); the contract is :mod:`handlab.models.base`.

:func:`wrap` puts a network that outputs heatmaps ``(B, J, h, w)`` or coordinates ``(B, J, 2)``
behind the contract: it takes RGB images ``(B, 3, H, W)`` in [0, 1] (so attribution paths and
baselines stay in image space), applies the network's own channel order and normalisation
inside, and decodes *differentiably* to ``keypoints`` ``(B, J, 2)`` input pixels (x, y). The
heatmap stride is read from each output (``W / w`` and ``H / h``), so any input size works
unless ``input_size`` fixes one. :func:`from_factory` builds a model from ``"module:function"``;
:func:`handlab.models.onnx.from_onnx` loads an ONNX file.

>>> net = nn.Conv2d(3, 21, kernel_size=4, stride=4)  # any (B, 3, H, W) -> (B, 21, H/4, W/4)
>>> model = wrap(net, output="heatmaps", normalize="imagenet")
>>> out = model(torch.rand(2, 3, 64, 48))
>>> out["heatmaps"].shape, out["keypoints"].shape
(torch.Size([2, 21, 16, 12]), torch.Size([2, 21, 2]))
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from handlab.codecs import GaussianHeatmap
from handlab.models._common import IMAGENET_MEAN, IMAGENET_STD
from handlab.models.base import PoseModel, check_model_input, check_pose_model

__all__ = ["WrappedModel", "from_factory", "wrap"]

Output = str | Callable[[Any], torch.Tensor]


def _stats(normalize: object) -> tuple[torch.Tensor, torch.Tensor] | None:
    if normalize is None:
        return None
    if normalize == "imagenet":
        mean, std = IMAGENET_MEAN, IMAGENET_STD
    elif isinstance(normalize, tuple | list) and len(normalize) == 2:
        mean, std = normalize
    else:
        raise ValueError(f"normalize: expected None, 'imagenet' or (mean, std), got {normalize!r}")
    m = torch.as_tensor(mean, dtype=torch.float32).flatten()
    s = torch.as_tensor(std, dtype=torch.float32).flatten()
    if m.numel() not in (1, 3) or s.numel() not in (1, 3) or not bool((s > 0).all()):
        raise ValueError(
            f"normalize: expected 1 or 3 means and positive stds, got mean {mean}, std {std}"
        )
    return m.expand(3).reshape(1, 3, 1, 1), s.expand(3).reshape(1, 3, 1, 1)


def _joint_order(joint_order: Sequence[int] | None, num_joints: int) -> list[int]:
    if not isinstance(num_joints, int) or num_joints < 1:
        raise ValueError(f"num_joints: expected a positive int, got {num_joints!r}")
    if joint_order is None:
        return list(range(num_joints))
    order = [int(j) for j in joint_order]
    if not order or len(set(order)) != len(order) or not all(0 <= j < num_joints for j in order):
        raise ValueError(
            f"joint_order: expected distinct indices into the network's {num_joints} joints "
            f"(one per handlab joint), got {list(joint_order)}"
        )
    return order


class WrappedModel(PoseModel):
    """A foreign network behind the model contract (made by :func:`wrap`; see its arguments).

    ``forward(images (B, 3, H, W) in [0, 1])`` returns ``keypoints`` (B, J, 2) input px,
    ``image_size`` (B, 2) (W, H) and the network's raw output as ``heatmaps`` (B, J', h, w) or
    ``coords`` (B, J', 2); ``decode`` maps the raw output to ``keypoints`` differentiably. The
    network is the submodule ``net``, so the randomisation test names its layers ``net.<name>``.
    """

    def __init__(
        self,
        module: nn.Module,
        *,
        output: Output,
        input_size: int | None,
        normalize: object,
        channels: str,
        num_joints: int,
        joint_order: Sequence[int] | None,
        sigma: float,
        one_at_a_time: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(module, nn.Module):
            raise TypeError(f"module: expected a torch.nn.Module, got {type(module).__name__}")
        if not (callable(output) or output in ("heatmaps", "coords")):
            raise ValueError(f"output: expected 'heatmaps', 'coords' or a callable, got {output!r}")
        if channels not in ("rgb", "bgr"):
            raise ValueError(f"channels: expected 'rgb' or 'bgr', got {channels!r}")
        if input_size is not None and (not isinstance(input_size, int) or input_size < 1):
            raise ValueError(f"input_size: expected None or a positive int, got {input_size!r}")
        if not sigma > 0:
            raise ValueError(f"sigma: expected a positive heatmap std (cells), got {sigma!r}")
        self.net = module
        self.output = output
        self.input_size = input_size
        self.channels = channels
        self.sigma = float(sigma)
        self.one_at_a_time = one_at_a_time  # a graph exported with a fixed batch of 1
        self.order = _joint_order(joint_order, num_joints)
        self.net_joints = num_joints
        self.num_joints = len(self.order)
        stats = _stats(normalize)
        if stats is not None:  # constants, not weights: kept out of state dicts
            self.register_buffer("mean", stats[0], persistent=False)
            self.register_buffer("std", stats[1], persistent=False)
        self.normalized = stats is not None
        self.train(module.training)

    def _run(self, x: torch.Tensor) -> Any:
        if not self.one_at_a_time:
            return self.net(x)
        parts = [self.net(x[i : i + 1]) for i in range(x.shape[0])]
        if isinstance(parts[0], tuple | list):  # several outputs: concatenate each
            return type(parts[0])(torch.cat(p) for p in zip(*parts, strict=True))
        return torch.cat(parts)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        if not isinstance(images, torch.Tensor) or images.dim() != 4:
            got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images)
            raise ValueError(f"images: expected a tensor (B, 3, H, W) in [0, 1], got {got}")
        # channels and size; the [0, 1] range is checked where images enter (poseig, evaluate),
        # not here: points on a noisy attribution path may leave it by design
        check_model_input(self, images, values=False)
        x = images.flip(1) if self.channels == "bgr" else images  # (B, 3, H, W)
        if self.normalized:
            x = (x - self.mean) / self.std
        raw = self._run(x)
        b, h, w = images.shape[0], images.shape[-2], images.shape[-1]
        size = images.new_tensor([w, h]).expand(b, 2)  # (B, 2) (W, H) px
        if callable(self.output):
            keypoints = self.output(raw)
            self._check_joints(keypoints, "output(raw)", b)
            return {"keypoints": keypoints[:, self.order], "image_size": size}
        raw = self._pick(raw)
        outputs = {self.output: raw, "image_size": size}
        return outputs | self.decode(outputs)

    def _pick(self, raw: Any) -> torch.Tensor:
        if isinstance(raw, dict) and self.output in raw:
            raw = raw[self.output]
        if not isinstance(raw, torch.Tensor):
            raise TypeError(
                f"output: the network returned {type(raw).__name__}, not one tensor; pass "
                "output=callable(raw) -> keypoints (B, J, 2) px to pick and convert it"
            )
        return raw

    def _check_joints(self, keypoints: object, name: str, b: int) -> None:
        want = (b, self.net_joints, 2)
        if not isinstance(keypoints, torch.Tensor) or tuple(keypoints.shape) != want:
            got = tuple(keypoints.shape) if isinstance(keypoints, torch.Tensor) else keypoints
            raise ValueError(f"{name}: expected keypoints of shape {want} px, got {got}")

    def decode(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Differentiable: raw ``heatmaps`` or ``coords`` -> ``keypoints`` (B, J, 2) input px."""
        if callable(self.output):
            return {"keypoints": outputs["keypoints"]}
        raw, size = outputs[self.output], outputs["image_size"]
        j = self.net_joints
        if self.output == "heatmaps":
            if raw.dim() != 4 or raw.shape[1] != j:
                raise ValueError(
                    f"output: expected heatmaps (B, {j}, h, w) from the network (num_joints "
                    f"{j}), got shape {tuple(raw.shape)}"
                )
            h, w = raw.shape[-2:]
            codec = GaussianHeatmap((h, w), stride=1, sigma=self.sigma)
            cells = codec.decode(raw, "local_soft_argmax")[0]  # (B, J, 2) cells, (x, y)
            stride = size[:, None, :] / raw.new_tensor([w, h])  # (B, 1, 2) px per cell
            keypoints = (cells + 0.5) * stride - 0.5  # pixel centres at integers on both sides
        else:
            coords = raw.reshape(raw.shape[0], j, -1) if raw.dim() == 2 else raw
            if coords.dim() != 3 or coords.shape[1] != j or coords.shape[2] not in (2, 3):
                raise ValueError(
                    f"output: expected coords (B, {j}, 2), (B, {j}, 3) or (B, {2 * j}) px from "
                    f"the network (num_joints {j}), got shape {tuple(raw.shape)}"
                )
            keypoints = coords[..., :2]
        return {"keypoints": keypoints[:, self.order]}


def wrap(
    module: nn.Module,
    *,
    output: Output = "heatmaps",
    input_size: int | None = None,
    normalize: object = None,
    channels: str = "rgb",
    num_joints: int = 21,
    joint_order: Sequence[int] | None = None,
    sigma: float = 2.0,
) -> WrappedModel:
    """A plain network as a handlab pose model (usable by ``poseig``, the indices,
    ``randomization_test``, ``evaluate`` and the report).

    Args:
        module: the network; it receives ``(B, 3, H, W)`` after ``channels`` and ``normalize``.
        output: ``"heatmaps"`` (B, num_joints, h, w), decoded by the codec's local soft-argmax
            at stride ``W / w``; ``"coords"`` (B, num_joints, 2 or 3) or (B, 2 * num_joints)
            input px (x, y); or a callable ``raw -> keypoints (B, num_joints, 2)`` px, which must
            be differentiable. A dict output is indexed by the ``output`` name.
        input_size: the one square side the network accepts (checked), or None for any size.
        normalize: what the network expects after [0, 1]: None, ``"imagenet"`` or
            ``(mean, std)`` per channel (``((0, 0, 0), (1 / 255,) * 3)`` gives 0-255 input).
        channels: ``"rgb"``, or ``"bgr"`` for networks trained on OpenCV images.
        num_joints: joints the network outputs.
        joint_order: ``joint_order[k]`` is the network's index of handlab joint ``k`` (the
            canonical order of :mod:`handlab.skeleton`); None keeps the network's order.
        sigma: heatmap Gaussian std in cells (sets the soft-argmax sharpness, power sigma^2).
    """
    return WrappedModel(
        module, output=output, input_size=input_size, normalize=normalize, channels=channels,
        num_joints=num_joints, joint_order=joint_order, sigma=sigma,
    )  # fmt: skip


def from_factory(spec: str, **kwargs: Any) -> nn.Module:
    """The model returned by ``module:function`` (``function(**kwargs)``), checked to follow
    the contract (a plain network must come back through :func:`wrap`), in eval mode.

    >>> from_factory("torch.nn:Identity")
    Traceback (most recent call last):
    ...
    TypeError: model: Identity has no decode(outputs) method; a plain network becomes a handlab \
pose model with handlab.models.wrap(module, output='heatmaps' or 'coords')
    """
    if not isinstance(spec, str) or spec.count(":") != 1 or "" in spec.split(":"):
        raise ValueError(
            f"spec: expected 'module:function' (e.g. 'mypkg.nets:build'), got {spec!r}"
        )
    name, func = spec.split(":")
    try:
        factory = getattr(importlib.import_module(name), func)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"spec: cannot load {func!r} from module {name!r}: {err}") from err
    if not callable(factory):
        raise TypeError(f"spec: {spec!r} is a {type(factory).__name__}, not a callable")
    model = factory(**kwargs)
    check_pose_model(model)
    return model.eval()
