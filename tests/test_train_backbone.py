"""--init-backbone: a trunk trained for one family starts another's (HandOccNet from the
flagship SimpleBaseline's ResNet-18); everything else keeps its initialisation."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from handlab.models import create
from handlab.training.config import TrainConfig
from handlab.training.loop import load_backbone


def _run_folder(path, model_name: str, **config) -> torch.nn.Module:
    torch.manual_seed(1)
    model = create(model_name, **config)
    path.mkdir()
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()}, path / "model.safetensors"
    )
    (path / "card.json").write_text(json.dumps({"model": model_name, "model_config": config}))
    return model


def test_the_trunk_is_copied_and_nothing_else(tmp_path):
    source = _run_folder(tmp_path / "sb", "simplebaseline", head_width=16)
    torch.manual_seed(2)
    model = create("handoccnet", width=16, heads=2, input_size=64)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    load_backbone(model, tmp_path / "sb")
    src, now = source.state_dict(), model.state_dict()
    trunk = [k for k in now if k.startswith("backbone.")]
    assert len(trunk) == 120  # every ResNet-18 tensor: convs, batch norms and their statistics
    assert all(torch.equal(now[k], src[k]) for k in trunk)
    convs = [k for k in trunk if before[k].dim() == 4]  # random before: they did change
    assert convs and not any(torch.equal(before[k], src[k]) for k in convs)
    assert all(torch.equal(now[k], before[k]) for k in now if not k.startswith("backbone."))


def test_a_trunk_that_does_not_fit_is_refused(tmp_path):
    _run_folder(tmp_path / "sb34", "simplebaseline", backbone="resnet34", head_width=16)
    model = create("handoccnet", width=16, heads=2, input_size=64)
    with pytest.raises(ValueError, match=r"init_backbone: the trunk of .* does not fit"):
        load_backbone(model, tmp_path / "sb34")
    with pytest.raises(TypeError, match="init_backbone"):
        TrainConfig(model="handoccnet", init_backbone="")
    assert TrainConfig.from_dict(TrainConfig(model="handoccnet").to_dict()).init_backbone is None


def test_a_shallower_trunk_takes_the_leading_stages(tmp_path, capsys):
    # TransPose keeps a ResNet's first stages (stride 8): the flagship's deeper stages are left.
    source = _run_folder(tmp_path / "sb", "simplebaseline", head_width=16)
    model = create("transpose", d_model=32, layers=1, heads=2, input_size=64)
    load_backbone(model, tmp_path / "sb")
    src, now = source.state_dict(), model.state_dict()
    trunk = [k for k in now if k.startswith("backbone.")]
    assert trunk and all(torch.equal(now[k], src[k]) for k in trunk)
    assert "backbone.6" in capsys.readouterr().err  # the stages not copied are named
    # RLE's pooled ResNet has the same trunk keys, so the flagship starts it too.
    rle = create("rle", backbone="resnet18", input_size=64)
    load_backbone(rle, tmp_path / "sb")
    assert torch.equal(
        rle.state_dict()["backbone.7.1.conv2.weight"], src["backbone.7.1.conv2.weight"]
    )


def test_a_stage_copied_in_part_is_refused(tmp_path):
    _run_folder(tmp_path / "sb", "simplebaseline", head_width=16)
    model = create("transpose", d_model=32, layers=1, heads=2, input_size=64)
    # A model whose stage 5 lacks a tensor the source has: not a shallower trunk, a different one.
    del model.backbone[5][1]
    with pytest.raises(ValueError, match=r"unexpected \['backbone\.5\.1\."):
        load_backbone(model, tmp_path / "sb")


def test_a_trunk_named_trunk_takes_the_source_backbone(tmp_path):
    # The Deformer's per-frame ResNet (three stages) is called `trunk`.
    source = _run_folder(tmp_path / "sb", "simplebaseline", head_width=16)
    model = create("deformer", T=3, width=16, heads=2, input_size=64, temporal_layers=1)
    load_backbone(model, tmp_path / "sb")
    src, now = source.state_dict(), model.state_dict()
    trunk = [k for k in now if k.startswith("trunk.")]
    assert trunk and all(torch.equal(now[k], src["backbone" + k[len("trunk") :]]) for k in trunk)
