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
# # 13 · Hand meshes: a skinned template, a mesh graph CNN, hand-model regression, weak depth
#
# **Learning goals.** After this chapter you can
# 1. build a fixed-topology hand *mesh* from an articulated hand and pose it by linear blend
#    skinning (the MANO idea of seed 000);
# 2. regress joints from a mesh with a sparse, non-negative joint regressor;
# 3. explain three routes to a 3D hand from seed 002: regressing a hand model's parameters
#    (Boukhayma et al. 2019), predicting every vertex with a graph CNN (Ge et al. 2019), and
#    training the 3D branch from depth maps where 3D labels are missing (Cai et al. 2018);
# 4. score meshes with PA-MPVPE and the F-score, and read a measured comparison honestly.
#
# **Modules taught:** `handlab.mesh`, `handlab.mesh_render`, `handlab.models.handmodel_regression`,
# `handlab.models.meshgcn`, `handlab.models.weak3d`, `handlab.viz.mesh3d`.
#
# The seed notes are named in the README ("seed 002": the Chinese seminar note "3D hand pose
# estimation from a single RGB", 2020). The three methods here are the three papers of its list
# that handlab did not have before this chapter.

# %% tags=["parameters"]
# fast: small workloads (CI runs every chapter with fast=True); out_dir: where 13.json goes
fast = False
seed = 0
out_dir = "."

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch
from IPython.display import Markdown, display

from handlab import geometry, mesh, mesh_render, synth
from handlab.hand_model import HandModel
from handlab.models import create
from handlab.report import claims_table, save_numbers
from handlab.synth.poses import sample_pose
from handlab.viz import mesh3d
from handlab.viz.notebook import setup_notebook

setup_notebook()
torch.manual_seed(seed)
numbers = {}

# %% [markdown]
# ## 1. A template mesh from the capsule hand
# handlab's hand is a chain of capsules. Its surface at the rest pose becomes a signed distance
# on a voxel grid (negative inside any capsule), and scikit-image's marching cubes turns the zero
# level into triangles. A closed surface of one piece has Euler characteristic
# `V - E + F = 2`; every edge must be shared by exactly two triangles.

# %%
template = mesh.template_mesh(voxel_mm=6.0)
faces = template.faces.numpy()
pairs = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
edges, uses = np.unique(pairs, axis=0, return_counts=True)
numbers["template"] = {
    "vertices": template.num_vertices,
    "faces": len(faces),
    "euler": template.num_vertices - len(edges) + len(faces),
    "edges_not_shared_by_two": int((uses != 2).sum()),
}
pd.Series(numbers["template"]).to_frame("template (6 mm grid)")

# %% [markdown]
# The skinning weights: every vertex belongs softly to 16 rigid parts (the palm and 15 finger
# bones), by its distance to each part's capsule. Colour = the part with the largest weight.

# %%
part = template.weights.argmax(1)
fig = go.Figure([mesh3d.triangle_mesh_trace(template.vertices, template.faces, intensity=part)])
fig.update_layout(title="template mesh, coloured by dominant part", height=420,
                  scene={"aspectmode": "data"})  # fmt: skip
fig

# %% [markdown]
# ## 2. Posing by linear blend skinning
# Each part moves rigidly with its bone; a vertex moves with the weighted mean of its parts'
# motions. A check that can fail: the fingertip keypoints lie just under the skin at rest; after
# posing, they should still be about as deep under the skin, within a fraction of the 6 mm grid
# (a skin that lagged behind the bones would leave them centimetres outside).

# %%
pose, _ = sample_pose(8, torch.Generator().manual_seed(seed))
posed = mesh.pose_mesh(template, pose)
joints = HandModel()(pose)
rest_joints = HandModel()(torch.zeros(1, 16, 3))
tips = [4, 8, 12, 16, 20]
rest_gap = torch.cdist(rest_joints[0, tips], template.vertices).min(1).values
gaps = torch.stack([torch.cdist(joints[i, tips], posed[i]).min(1).values for i in range(8)])
numbers["fingertip_depth_change_mm"] = float((gaps - rest_gap).abs().max())
print(f"fingertip depth under the skin changes by at most "
      f"{numbers['fingertip_depth_change_mm']:.2f} mm over 8 sampled poses")  # fmt: skip
fig = go.Figure([
    mesh3d.triangle_mesh_trace(posed[0], template.faces, name="posed mesh", opacity=0.6),
    mesh3d.skeleton_trace(joints[0], name="joints"),
])  # fmt: skip
fig.update_layout(title="a sampled pose, skinned", height=420, scene={"aspectmode": "data"})
fig

# %% [markdown]
# Synthetic samples get per-vertex ground truth in the camera frame (`mesh.scene_vertices`), in
# the same frame as their joints. Projected with the sample's intrinsics, the vertices should
# cover the rendered hand: the share of them that falls inside the hand mask is a check of the
# whole chain (skinning, mirroring, placement, projection).

# %%
n = 4 if fast else 16
data = synth.SyntheticHands("test", size=128, length=n, occluders=0.0)
batch = data.batch(list(range(n)))
verts = mesh.scene_vertices(data.params(list(range(n))), template)
uv = geometry.project(verts, batch["K"])  # (n, V, 2) px
inside = []
for i in range(n):
    px = uv[i].round().long().clamp(0, 127)
    inside.append(float(batch["mask"][i, 0, px[:, 1], px[:, 0]].mean()))
numbers["projected_vertices_in_mask"] = float(np.mean(inside))
print(f"projected vertices inside the rendered hand: {numbers['projected_vertices_in_mask']:.1%}")

# %%
fig, axes = plt.subplots(1, min(n, 4), figsize=(12, 3.2))
for i, ax in enumerate(np.atleast_1d(axes)):
    ax.imshow(batch["image"][i].permute(1, 2, 0))
    ax.scatter(uv[i, :, 0], uv[i, :, 1], s=0.3, c="cyan", alpha=0.4)
    ax.set_axis_off()
    ax.set_title(f"sample {i}: {inside[i]:.0%} inside")
plt.suptitle("the skinned mesh projected onto the rendered images")
plt.tight_layout()
plt.show()

# %% [markdown]
# The mesh can also be *rendered* with the sample's camera (`mesh_render.render_mesh`, a small
# z-buffer): depth, mask and a shaded image with per-pixel ground truth from the mesh. Its mask
# should match the generator's own render of the capsule hand, once the capsules' forearm,
# which the template cuts off at the wrist, is left out (`mesh_render.hand_side`).

# %%
params = data.params(list(range(n)))
meshed = mesh_render.render_mesh(verts, template.faces, batch["K"], 128)
side = mesh_render.hand_side(batch["depth"][:, 0], batch["K"], params["pose"], params["trans"],
                             float(template.vertices[:, 1].min()))  # fmt: skip
hand = (batch["mask"][:, 0] > 0) & side
ious = [mesh_render.mask_iou(meshed["mask"][i], hand[i]) for i in range(n)]
numbers["mesh_render_iou"] = {"mean": float(np.mean(ious)), "min": float(np.min(ious))}
fig, axes = plt.subplots(1, 3, figsize=(10, 3.4))
axes[0].imshow(batch["image"][0].permute(1, 2, 0))
axes[0].set_title("generator: capsules")
axes[1].imshow(meshed["image"][0, 0], cmap="gray")
axes[1].set_title("mesh, z-buffer")
axes[2].imshow(torch.stack([hand[0] & ~meshed["mask"][0], hand[0] & meshed["mask"][0],
                            meshed["mask"][0] & ~hand[0]], -1).float())  # fmt: skip
axes[2].set_title(f"masks: both green, IoU {ious[0]:.2f}")
for ax in axes:
    ax.set_axis_off()
plt.tight_layout()
plt.show()
iou = numbers["mesh_render_iou"]
print(f"mask IoU, mesh vs capsule hand (wrist side), {n} samples: mean {iou['mean']:.2f}, "
      f"min {iou['min']:.2f}")  # fmt: skip

# %% [markdown]
# ## 3. Joints from the mesh, and a coarse-to-fine graph
# MANO's joints are a fixed linear function of its vertices. Here the regressor is fitted by
# non-negative least squares on skinned poses; on poses it never saw, it should put the joints
# within a millimetre. Ge et al.'s graph CNN works on a hierarchy of coarser graphs; handlab
# clusters vertices on growing grid cells.

# %%
regressor = mesh.joint_regressor(template)
unseen, _ = sample_pose(32, torch.Generator().manual_seed(seed + 1000))
err = (regressor @ mesh.pose_mesh(template, unseen) - HandModel()(unseen)).norm(dim=-1)
numbers["regressor_error_mm"] = {"mean": float(err.mean()), "max": float(err.max())}
levels = mesh.mesh_hierarchy(template)
numbers["hierarchy_vertices"] = [level.num_vertices for level in levels]
display(pd.DataFrame({
    "vertices": [level.num_vertices for level in levels],
    "edges": [len(level.edges) for level in levels],
}, index=[f"level {k}" for k in range(len(levels))]))  # fmt: skip
print(f"joint regressor on unseen poses: mean {float(err.mean()):.2f} mm, max "
      f"{float(err.max()):.2f} mm; nonzero weights per joint "
      f"{(regressor > 0).sum(1).tolist()}")  # fmt: skip

# %% [markdown]
# ## 4. Three routes to a 3D hand (seed 002)
# - **Boukhayma et al.** (`handmodel_regression`): a ResNet regresses the hand model's pose,
#   shape and a weak-perspective camera; the hand model makes the joints, so every prediction
#   is a valid hand, and 2D keypoints alone can train it.
# - **Ge et al.** (`meshgcn`): image features become features on the coarsest graph; Chebyshev
#   graph convolutions and unpooling grow them to every vertex; joints come from the regressor.
# - **Cai et al.** (`weak3d`): a decoder renders depth from a 3D pose; on samples without 3D
#   labels the rendered predicted pose is compared with the observed depth map.
#
# Each network, untrained, on one batch: what goes in and what comes out.

# %%
shapes = {}
for family, config in [
    ("handmodel_regression", {"input_size": 64}),
    ("meshgcn", {"input_size": 64, "head_width": 16}),
    ("weak3d", {"input_size": 64, "head_width": 16}),
]:
    model = create(family, **config).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 64, 64))
    shapes[family] = {
        "parameters (M)": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
        **{k: tuple(v.shape) for k, v in out.items() if k in ("xyz", "vertices", "pose",
                                                             "depth_render", "keypoints")},
    }  # fmt: skip
pd.DataFrame(shapes).T

# %% [markdown]
# ## 5. Measured at one small, equal budget
# `python benchmarks/seed002_methods.py --steps N` trains each route with one recipe (Adam,
# batch 16, 64 px, N steps, seed 0) on synthetic hands and scores 128 test hands. Its settings
# are these models' card: read them before the numbers. Budgets this small are far from
# converged, so the verdicts below are about this budget, not about the papers' full training.

# %%
results_path = Path("benchmarks/results/seed002_methods.json")  # chapters run from the repo root
measured = json.loads(results_path.read_text()) if results_path.exists() else None
if measured is None:
    display(Markdown("**Not measured yet**: run the benchmark; no verdict is drawn."))
    numbers["benchmark"] = "not measured"
else:
    display(Markdown(f"**Card** (the benchmark's settings): `{measured['settings']}`"))
    table = pd.DataFrame(measured["runs"]).T
    display(table.round(3))
    numbers["benchmark"] = measured["runs"]

# %% [markdown]
# The seed's claims next to this run. A verdict needs both runs of a comparison; a missing run
# is listed as missing, never as agreeing. A difference under 2 % of the larger error is no
# difference at this budget (one seed, 128 test hands): it does not count as agreeing.

# %%
MARGIN = 0.02


def beats(a: float, b: float) -> bool:
    """``a`` lower than ``b`` by more than MARGIN (the benchmark's own rule)."""
    return a < b * (1 - MARGIN)


claims = []
runs = measured["runs"] if measured else {}
if {"weak3d_10pct_depth", "weak3d_10pct_no_depth"} <= runs.keys():
    a = runs["weak3d_10pct_depth"]["mpjpe_mm"]
    b = runs["weak3d_10pct_no_depth"]["mpjpe_mm"]
    claims.append(("with few 3D labels, the depth regulariser lowers the 3D error (Cai)",
                   "STB/RHD AUC up with depth", f"{a:.1f} vs {b:.1f} mm", beats(a, b)))  # fmt: skip
if {"weak3d_10pct_depth", "weak3d_all_labels"} <= runs.keys():
    a = runs["weak3d_all_labels"]["mpjpe_mm"]
    b = runs["weak3d_10pct_depth"]["mpjpe_mm"]
    claims.append(("all 3D labels beat 10 % labels + depth (the upper bound)",
                   "full supervision best", f"{a:.1f} vs {b:.1f} mm", beats(a, b)))  # fmt: skip
if {"meshgcn", "handmodel_regression"} <= runs.keys():
    a = runs["meshgcn"]["pa_mpvpe_mm"]
    b = runs["handmodel_regression"]["pa_mpvpe_mm"]
    claims.append(("a graph CNN meshes better than a hand-model regressor (Ge vs Boukhayma)",
                   "MANO has limitations, use a graph", f"PA-MPVPE {a:.1f} vs {b:.1f} mm",
                   beats(a, b)))  # fmt: skip
if claims:
    claims_df, numbers["claims_agree"] = claims_table(claims)
    display(claims_df)
    display(Markdown(f"**{numbers['claims_agree']} of {len(claims)}** claims agree here."))
else:
    display(Markdown("No comparison was measured, so no claim is tested."))

# %% [markdown]
# ## Exercises
# 1. Build the template at 4 mm and at 8 mm. How do the vertex count and the fingertip depth
#    check change?
# 2. Skin a hand with `shape[:, 3] = 3` (longer fingers). Where does the skin stretch?
# 3. Set `tau_mm` of `template_mesh` to 0.5 and to 8 and pose a fist: what happens at the
#    knuckles?
#
# <details><summary>Solutions (click)</summary>
#
# 1. `mesh.template_mesh(voxel_mm=4.0).num_vertices` is about 2.4x the 6 mm count, 8 mm about
#    half; the fingertip check stays within a fraction of the grid step at every size (the
#    weights follow the bones whatever the density).
# 2. `mesh.pose_mesh(template, torch.zeros(1, 16, 3), shape)`: vertices beyond each bone's start
#    move out along the bone by the length ratio; the palm keeps its size.
# 3. Small `tau` gives nearly rigid parts (creases and gaps open at the knuckles when they
#    bend); large `tau` blends over long distances (the knuckles shrink, the "candy wrapper"
#    artefact of linear blend skinning). The cell below measures both: how far the edges stretch
#    and how much of the skin's thickness over the PIP knuckles is left in a fist.
# </details>

# %% tags=["solutions"]
# The solutions, executed (the report and the tests run this cell, so they stay correct).
from handlab.hand_model import POSE_LIMITS

by_voxel = {6.0: template}  # 1.
depth_change = {}
for voxel in (4.0, 8.0):
    by_voxel[voxel] = mesh.template_mesh(voxel_mm=voxel)
    skin = mesh.pose_mesh(by_voxel[voxel], pose)
    rest = torch.cdist(rest_joints[0, tips], by_voxel[voxel].vertices).min(1).values
    posed_gaps = torch.stack(
        [torch.cdist(joints[i, tips], skin[i]).min(1).values for i in range(8)]
    )
    depth_change[voxel] = float((posed_gaps - rest).abs().max())
longer = torch.zeros(1, 10)  # 2.
longer[:, 3] = 3.0  # finger_length
at_rest = torch.zeros(1, 16, 3)
stretched = mesh.pose_mesh(template, at_rest, longer)
shift = (stretched - mesh.pose_mesh(template, at_rest))[0].norm(dim=-1)  # (V,) mm
fist = torch.zeros(1, 16, 3)  # 3. every finger joint (not the thumb) at its flexion limit
fist[0, 1:13, 0] = POSE_LIMITS[1:13, 0, 1]
fist_joints = HandModel()(fist)[0]
pips = [6, 10, 14, 18]
knuckles = {}
for tau in (0.5, 8.0):
    soft = mesh.template_mesh(voxel_mm=6.0, tau_mm=tau)
    bent = mesh.pose_mesh(soft, fist)[0]
    edge = torch.cat([soft.faces[:, [0, 1]], soft.faces[:, [1, 2]], soft.faces[:, [2, 0]]])
    before = (soft.vertices[edge[:, 0]] - soft.vertices[edge[:, 1]]).norm(dim=-1)
    after = (bent[edge[:, 0]] - bent[edge[:, 1]]).norm(dim=-1)
    kept = before > 0.1  # marching cubes leaves a few degenerate (zero-length) edges
    skin_rest = torch.cdist(rest_joints[0, pips], soft.vertices).min(1).values
    skin_fist = torch.cdist(fist_joints[pips], bent).min(1).values
    knuckles[tau] = {
        "edge_stretch_q99": float((after[kept] / before[kept]).quantile(0.99)),
        "pip_skin_ratio": float((skin_fist / skin_rest).mean()),
    }
numbers["solutions"] = {
    "vertices_by_voxel_mm": {k: m.num_vertices for k, m in sorted(by_voxel.items())},
    "vertex_ratio_to_6mm": {
        k: by_voxel[k].num_vertices / template.num_vertices for k in (4.0, 8.0)
    },
    "fingertip_depth_change_mm": depth_change,
    "longer_fingers_shift_mm": {
        "palm": float(shift[part == 0].max()),
        "fingers": float(shift[part > 0].max()),
    },
    "fist": knuckles,
    "knuckle_shrink_large_over_small_tau": knuckles[8.0]["pip_skin_ratio"]
    / knuckles[0.5]["pip_skin_ratio"],
    "stretch_small_over_large_tau": knuckles[0.5]["edge_stretch_q99"]
    / knuckles[8.0]["edge_stretch_q99"],
}
sol = numbers["solutions"]
print(
    "1. vertices by grid step:", sol["vertices_by_voxel_mm"], "; fingertip depth change (mm):",
    {k: round(v, 2) for k, v in depth_change.items()},
)  # fmt: skip
moved = sol["longer_fingers_shift_mm"]
print(
    f"2. finger_length = 3 moves palm vertices by at most {moved['palm']:.2f} mm and finger "
    f"vertices by up to {moved['fingers']:.1f} mm"
)
for tau, k in knuckles.items():
    print(
        f"3. tau {tau} mm, fist: 1 % of the edges stretch more than x{k['edge_stretch_q99']:.2f}; "
        f"the skin over the PIP knuckles keeps {k['pip_skin_ratio']:.0%} of its rest thickness"
    )

# %% [markdown]
# ## Summary
# - A watertight template and distance-based LBS weights give the capsule hand a mesh with
#   per-vertex ground truth for every synthetic sample.
# - A sparse non-negative regressor recovers the joints from the mesh within a millimetre.
# - The three routes of seed 002 are in the registry; their comparison above is a measurement at
#   a stated budget, with its verdicts computed, not asserted.

# %%
save_numbers(numbers, out_dir, "13")
numbers
