# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · 3D hands from depth with A2J: anchors, weights, offsets
#
# **Learning goals.** After this chapter you can
# 1. explain A2J's anchor-to-joint regression: anchors every 4 px, a softmax weight per anchor
#    and joint, an in-plane offset and a depth per anchor, joints as weighted sums;
# 2. read an anchor weight map and say which anchors a joint listens to;
# 3. evaluate a depth model in 3D (MPJPE, PA-MPJPE, AUC 20-50 mm) on clean and on noisy depth
#    with holes, and see why the camera intrinsics matter;
# 4. switch A2J to NYU's 14 joints and point it at the real NYU data;
# 5. recognise the clear errors an empty or all-background depth crop raises.
#
# **Modules taught:** `handlab.models.a2j`, `handlab.models.voxels` (input checks,
# segmentation), `handlab.synth` (depth, noise and holes), `handlab.metrics`, `handlab.data`
# (NYU), `handlab.viz.depth`.
#
# Seminar seed 000 lists A2J (Xiong et al., "A2J: Anchor-to-Joint Regression Network for 3D
# Articulated Pose Estimation from a Single Depth Image", ICCV 2019) as related work for a
# ResNet-based hand pose estimator: a depth input, a ResNet-50 backbone, code public
# (github.com/zhangboshen/A2J), trained and tested on the NYU hand pose dataset. handlab's
# `a2j_r18` is the same design on a ResNet-18 (the paper's ResNet-50 is an option), trained on
# synthetic depth; every number below is measured in this run.

# %% tags=["parameters"]
# fast: small workloads (CI runs every chapter with fast=True); out_dir: where 04.json goes
fast = False
seed = 0
out_dir = "."

# %%
import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import Markdown, display

from handlab import metrics, synth, zoo
from handlab.data import open_data
from handlab.models import create
from handlab.models.a2j import anchor_positions, weighted_joints
from handlab.report import model_cards, save_numbers
from handlab.skeleton import NYU_EVAL_JOINTS
from handlab.training import forward_in_chunks
from handlab.viz import depth as depth_viz
from handlab.viz import draw
from handlab.viz.notebook import setup_notebook

setup_notebook()
torch.manual_seed(seed)
n_samples = 16 if fast else 128
numbers = {}

# %% [markdown]
# ## 1. The method
# A2J never predicts a heatmap. It spreads **anchors** over the depth crop, one every 4 pixels,
# and for every anchor `a` and joint `j` predicts three things:
#
# - a weight logit; a softmax over *all* anchors turns it into a weight `w_aj` (they sum to 1);
# - an in-plane offset `o_aj` (px) from the anchor to the joint;
# - the joint's depth `d_aj` (mm) as seen from that anchor.
#
# The joint is the weighted vote of all anchors (the paper's equations 1-2):
#
# `uv_j = sum_a w_aj (p_a + o_aj)`,  `depth_j = sum_a w_aj d_aj`,
#
# then `(u, v, depth)` is back-projected with the camera intrinsics `K` to `xyz` in mm. The
# weights come from a trunk at stride 16 (ResNet stages 1-3), offsets and depths from a stride-1
# fourth stage, so each 16 x 16 px cell carries (16 / 4)^2 = 16 anchors. The loss adds an
# *anchor-surrounding* term (the weighted anchor positions alone must already land on the
# joint), which makes the informative anchors gather around each joint.

# %%
a2j = zoo.load("a2j_r18")
cfg = a2j.config
print(f"a2j_r18: {cfg.backbone}, {cfg.num_joints} joints, anchors every {cfg.anchor_stride} px, "
      f"{sum(p.numel() for p in a2j.parameters()) / 1e6:.1f} M parameters")  # fmt: skip
display(model_cards({"a2j_r18": a2j}))

# %% [markdown]
# The data: the frozen synthetic test split, 128 px. A2J reads a *segmented* hand: depth in mm
# with the background set to 0 (the generator's mask does the segmentation here; on NYU a
# depth threshold does, see section 5).

# %%
test = synth.SyntheticHands("test", size=128, length=n_samples)
data = test.batch(list(range(n_samples)))
hand_depth = data["depth"] * (data["mask"] > 0)  # (N, 1, 128, 128) mm, background 0
anchors = anchor_positions(128, 128, cfg.anchor_stride)  # (N_anchors, 2) px
numbers["anchors_per_image"] = len(anchors)
fig, axes = plt.subplots(1, 2, figsize=(8, 3.6))
draw.show_sample({"depth": hand_depth[0], "keypoints": data["keypoints"][0]}, axes=axes)
axes[1].scatter(anchors[:, 0], anchors[:, 1], s=1, c="0.6")
axes[1].set_title(f"{len(anchors)} anchors (every {cfg.anchor_stride} px)")
plt.show()


# %%
# Model outputs on the depth maps (N, 1, H, W) mm, 32 samples at a time, no gradients.
out = forward_in_chunks(a2j, hand_depth, data["K"])
{k: tuple(v.shape) for k, v in out.items()}

# %% [markdown]
# The aggregation really is the weighted vote above: recomputing it from the raw per-anchor
# outputs with `weighted_joints` gives the model's joints.

# %%
again = weighted_joints(out["anchor_logits"], out["offsets"], out["depths"], out["anchors"])
numbers["aggregation_max_error"] = float((again["uvd"] - out["uvd"]).abs().max())
weight_sums = out["anchor_weights"].sum(-1)
numbers["weight_sum_error"] = float((weight_sums - 1).abs().max())
print(f"max |recomputed - model uvd| = {numbers['aggregation_max_error']:.2e}; "
      f"weights sum to 1 within {numbers['weight_sum_error']:.1e}")  # fmt: skip

# %% [markdown]
# ## 2. Anchor weight maps
# One joint's weights over the depth crop of sample 0: bright cells are the anchors this joint
# listens to; cyan arrows go from the 8 heaviest anchors to where each one votes (anchor +
# offset); the white cross is the true joint, the red dot A2J's answer.

# %%
joint = 8  # index fingertip
fig, axes = plt.subplots(1, 2, figsize=(9, 4))
for ax, j in zip(axes, (0, joint), strict=True):
    depth_viz.plot_anchor_weights(
        ax, hand_depth[0], out["anchor_weights"][0, j], out["anchors"][0],
        stride=cfg.anchor_stride, keypoint=data["keypoints"][0, j],
        prediction=out["keypoints"][0, j], offsets=out["offsets"][0, j],
        title=f"joint {j}",
    )  # fmt: skip
plt.show()

# %% [markdown]
# Two numbers summarise how a trained A2J uses its anchors: the **effective number of anchors**
# per joint, `1 / sum_a w_aj^2` (1 if one anchor takes all the weight, the anchor count if all
# weigh the same), and the share of weight on anchors within 16 px of the true joint.

# %%
w = out["anchor_weights"]  # (N, J, A)
effective = 1.0 / w.pow(2).sum(-1)  # (N, J)
dist = (out["anchors"][:, None] - data["keypoints"][:, :, None]).norm(dim=-1)  # (N, J, A) px
near = (w * (dist <= 16.0)).sum(-1)  # (N, J)
numbers["effective_anchors"] = float(effective.mean())
numbers["weight_within_16px"] = float(near.mean())
share = 100 * numbers["weight_within_16px"]
display(
    Markdown(
        f"On average a joint spreads its weight over **{numbers['effective_anchors']:.1f}** "
        f"effective anchors (of {len(anchors)}), and **{share:.0f} %** of it sits within 16 px "
        "of the true joint."
    )
)

# %% [markdown]
# Browse every sample and joint (with a live kernel the figure follows the sliders):

# %%
explorer = depth_viz.AnchorExplorer(hand_depth, out, data["keypoints"], stride=cfg.anchor_stride)
explorer.widget

# %% [markdown]
# ## 3. Evaluation on synthetic depth: clean, noisy with holes, and without `K`
# Errors are root-relative MPJPE, PA-MPJPE and the 20-50 mm AUC (as for the RGB models), plus
# the depth papers' metric: the mean 3D distance in the camera frame (no root alignment), and
# the 2D error of `uv`. The noisy set renders the *same* hands with Kinect-like sensor noise,
# depth quantisation and holes (pixels with no measurement inside the hand).

# %%
noisy_data = synth.SyntheticHands("test", size=128, length=n_samples, depth_noise=True).batch(
    list(range(n_samples))
)
noisy_depth = noisy_data["depth"] * (noisy_data["mask"] > 0)
hand_pixels = data["mask"] > 0
numbers["hole_fraction"] = float(((noisy_depth == 0) & hand_pixels).sum() / hand_pixels.sum())
gt_rel = data["xyz"] - data["xyz"][:, :1]


def scores(outputs):
    """3D metrics (root-relative and camera frame) and the 2D EPE of ``outputs``."""
    s = metrics.evaluate_3d(outputs["xyz"], gt_rel)
    return {
        "mpjpe_mm": float(s["mpjpe_mm"]),
        "pa_mpjpe_mm": float(s["pa_mpjpe_mm"]),
        "auc_20-50mm": float(s["auc_20-50mm"]),
        "camera_frame_mm": metrics.mpjpe(outputs["xyz_cam"], data["xyz"]),
        "epe_px": metrics.epe(outputs["keypoints"], data["keypoints"], data["visibility"]),
    }


evaluation = {
    "clean": scores(out),
    "noise_holes": scores(forward_in_chunks(a2j, noisy_depth, data["K"])),
    "clean_no_K": scores(forward_in_chunks(a2j, hand_depth, None)),
}
numbers["evaluation"] = evaluation
labels = {
    "clean": "clean depth, true K",
    "noise_holes": f"noise + holes ({100 * numbers['hole_fraction']:.0f} % of hand pixels), true K",
    "clean_no_K": f"clean depth, default K (focal {cfg.focal} image widths)",
}
table = pd.DataFrame({labels[k]: v for k, v in evaluation.items()}).T
table.columns = ["MPJPE", "PA-MPJPE", "AUC 20-50", "camera-frame mm", "EPE px"]
table.round(3)

# %% [markdown]
# Without the true `K` the model falls back to a nominal focal length: `uv` and the depth are
# unchanged (they never need `K`), but back-projecting them with the wrong focal length scales
# x and y, which the camera-frame and root-relative errors show and PA-MPJPE (which removes a
# similarity) mostly forgives.

# %%
ev = evaluation
noise_cost = ev["noise_holes"]["mpjpe_mm"] - ev["clean"]["mpjpe_mm"]
k_cost = ev["clean_no_K"]["camera_frame_mm"] - ev["clean"]["camera_frame_mm"]
numbers["noise_cost_mm"] = noise_cost
display(
    Markdown(
        f"Noise and holes change MPJPE by **{noise_cost:+.1f} mm**; dropping the true `K` "
        f"changes the camera-frame error by **{k_cost:+.1f} mm**."
    )
)

# %%
metrics.per_group_table(out["xyz"], gt_rel, unit="mm")

# %% [markdown]
# For scale: the A2J paper reports 8.61 mm mean 3D error on NYU's 14 joints with a ResNet-50
# trained on NYU's 72,757 real frames. Our `a2j_r18` is a ResNet-18 trained briefly on synthetic
# hands and evaluated on all 21 joints of synthetic hands: the numbers are not comparable, and
# the chapter does not claim they are.

# %% [markdown]
# ## 4. Input errors: empty and all-background crops
# A depth crop with no measurement at all (an empty map, or a crop where the segmentation kept
# nothing, e.g. a mask that missed the hand) has no hand to find. A2J refuses it with an error
# that names the samples, rather than returning a confident pose of nothing:

# %%
errors = {}
for name, bad in {
    "empty depth map": torch.zeros(2, 1, 128, 128),
    "all-background crop (mask missed the hand)": data["depth"][:2] * 0,
}.items():
    try:
        a2j(bad)
        errors[name] = "no error"
    except ValueError as err:
        errors[name] = f"ValueError: {err}"
numbers["input_errors_raised"] = sum(v.startswith("ValueError") for v in errors.values())
for name, message in errors.items():
    print(f"{name}:\n    {message}")

# %% [markdown]
# ## 5. NYU: 14 joints and the real-data path
# NYU's 36 annotated joints have no clean 21-joint skeleton, so the benchmarks (and the A2J
# paper) evaluate 14 of them. The same family builds a 14-joint A2J, and for real crops without
# a hand mask `segment_mm` keeps the pixels within that distance of the crop's central depth:

# %%
nyu_model = create("a2j", num_joints=14, segment_mm=150.0).eval()
unsegmented = data["depth"][:2].clone()  # the synthetic crop *with* its background wall
nyu_out = forward_in_chunks(nyu_model, unsegmented, None)
numbers["nyu_joints"] = int(nyu_out["xyz"].shape[1])
shapes = f"keypoints {tuple(nyu_out['keypoints'].shape)}, xyz {tuple(nyu_out['xyz'].shape)}"
print(f"NYU mode: {shapes}; NYU joints used (of 36): {list(NYU_EVAL_JOINTS)}")

# %% [markdown]
# This model is untrained (no NYU weights ship: NYU's licence and size keep it out of the
# repository). With the dataset on disk in its published layout (`train/joint_data.mat`,
# `train/depth_1_0000001.png`, ...; see `handlab.data.nyu`), training and evaluating it are two
# commands:
#
# ```bash
# handlab train --model a2j --model-config num_joints=14 segment_mm=150 \
#     --data nyu:/data/NYU --steps 20000 --out runs/a2j_nyu
# handlab evaluate --model runs/a2j_nyu --data nyu:/data/NYU --split test --json a2j_nyu.json
# ```
#
# Here there is no NYU folder, and the loader says so plainly:

# %%
try:
    open_data("nyu:/data/NYU", "test")
    nyu_status = "found /data/NYU"
except ValueError as err:
    nyu_status = f"{type(err).__name__}: {err}"
print(nyu_status)

# %% [markdown]
# ## Exercises
# 1. Compute the weighted anchor positions `sum_a w_aj p_a` (the model's `surround` output)
#    and compare their error with the final joints'. How much do the offsets add?
# 2. Rank joints by their effective number of anchors. Do fingertips listen to fewer anchors
#    than the wrist?
# 3. Feed the noisy depth *without* the mask, segmented by a depth threshold instead
#    (`handlab.models.voxels.segment_depth(noisy_data["depth"], 150.0)`), as on NYU. How much
#    worse is it than the mask?
#
# <details><summary>Solutions (click)</summary>
#
# 1. `metrics.epe(out["surround"], data["keypoints"], data["visibility"])` against
#    `metrics.epe(out["keypoints"], ...)`: the offsets correct the coarse anchor average, so the
#    final EPE is lower for a trained model.
# 2. `pd.Series(effective.mean(0), index=JOINT_NAMES).sort_values()`; compare the tips with
#    joint 0.
# 3. `seg = segment_depth(noisy_data["depth"], 150.0)`, then
#    `scores(forward_in_chunks(a2j, seg, data["K"]))`:
#    the threshold keeps occluders and background near the hand's depth, which the model never
#    saw in training (it was trained on mask-segmented depth), so the error grows.
# </details>

# %% tags=["solutions"]
# The solutions, executed (the report and the tests run this cell, so they stay correct).
from handlab.models.voxels import segment_depth
from handlab.skeleton import JOINT_NAMES

surround_epe = metrics.epe(out["surround"], data["keypoints"], data["visibility"])  # 1.
final_epe = metrics.epe(out["keypoints"], data["keypoints"], data["visibility"])
by_joint = pd.Series(effective.mean(0).numpy(), index=JOINT_NAMES).sort_values()  # 2.
seg = segment_depth(noisy_data["depth"], 150.0)  # 3.
thresholded = scores(forward_in_chunks(a2j, seg, data["K"]))
numbers["solutions"] = {
    "surround_epe_px": surround_epe,
    "final_epe_px": final_epe,
    "threshold_mpjpe_mm": thresholded["mpjpe_mm"],
    "fewest_anchors_joint": str(by_joint.index[0]),
    "effective_anchors": {"wrist": float(by_joint["wrist"]), "fewest": float(by_joint.iloc[0])},
}
print(f"1. anchor average {surround_epe:.2f} px -> with offsets {final_epe:.2f} px")
print(f"2. fewest effective anchors: {by_joint.index[0]}; wrist: {by_joint['wrist']:.1f}")
print(
    f"3. depth threshold {thresholded['mpjpe_mm']:.1f} mm MPJPE against the mask's "
    f"{evaluation['noise_holes']['mpjpe_mm']:.1f} mm"
)

# %% [markdown]
# ## Summary
# - A2J votes: every anchor proposes a joint position and depth, and a softmax over anchors
#   decides whose vote counts.
# - The weight maps show where the model looks; the effective anchor count and the weight near
#   the joint quantify it.
# - Depth noise and holes and a wrong `K` cost accuracy in measurable, different ways.
# - Empty or all-background crops raise a clear `ValueError`; NYU needs `num_joints=14` and
#   `segment_mm`.

# %%
save_numbers(numbers, out_dir, "04")
numbers
