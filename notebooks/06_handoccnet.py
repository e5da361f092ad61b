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
# # 06 · HandOccNet: using the occluder instead of ignoring it
#
# **Learning goals.** After this chapter you can
# 1. explain HandOccNet's necessity map `M` and the split of the features into a primary part
#    `F_p = F * M` (the hand) and a secondary part `F_s = F * (1 - M)` (the occluders);
# 2. say what the feature injecting transformer (FIT) does, why its correlation is a softmax
#    *times* a sigmoid, and what the self-enhancing transformer (SET) adds;
# 3. read these intermediate tensors from a trained model (`handoccnet_r18`) and check where `M`
#    points on images whose occluders you know exactly;
# 4. measure a model's error by per-joint occlusion bucket (0-25 % ... 75-100 %) and compare
#    HandOccNet with the SimpleBaseline on the same occluded frames, against seed 003's claims.
#
# **Modules taught:** `handlab.models.handoccnet` (`stages`, `split_features`, `fit_attention`),
# `handlab.occlusion`, `handlab.viz.occlusion` (`plot_stages`, `StageExplorer`, `plot_buckets`),
# with `handlab.synth` and `handlab.zoo`.

# %% tags=["parameters"]
# fast: small workloads (CI runs every chapter with fast=True); out_dir: where 06.json goes
fast = False
seed = 0
out_dir = "."
# occluded test frames scored by bucket (fast mode uses 32)
n_frames = 256

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import torch
import torch.nn.functional as F
from IPython.display import Markdown, display

import handlab
from handlab import zoo
from handlab.models.handoccnet import fit_attention
from handlab.occlusion import BUCKET_NAMES, assign_buckets, bucket_table
from handlab.report import model_cards, save_numbers
from handlab.synth import SyntheticHands
from handlab.viz.notebook import setup_notebook
from handlab.viz.occlusion import StageExplorer, plot_buckets, plot_stages

setup_notebook()
torch.manual_seed(seed)
n = 32 if fast else n_frames
numbers = {"n_frames": n}

# %% [markdown]
# ## 1. What seed 003 claims
# Earlier occlusion-robust methods used a spatial attention map to *down-weight* occluded pixels
# and focus on the hand. HandOccNet (Park et al., CVPR 2022) argues the opposite: when much of
# the hand is hidden, the hand region alone carries too little information, and the occluder's
# region is *related* to the hand (an object held in a grasp has the shape of the grasp). So it
# keeps both parts and moves hand information into the occluded region:
#
# - a backbone (ResNet-50 + FPN in the paper) gives features `F`; a small convolution and a
#   sigmoid give the **necessity map** `M` in [0, 1] (where to look);
# - **primary** `F_p = F ⊗ M` (the hand), **secondary** `F_s = F ⊗ (1 - M)` (the occluders);
# - **FIT** (feature injecting transformer): queries from `F_s`, keys and values from `F_p`;
#   correlation `C = softmax(q k^T / √d) ⊗ sigmoid(pool(q' k'^T / √d))`. The softmax alone must
#   give every query weights that sum to 1, so a query related to *no* key still gets an
#   "undesired high correlation"; the sigmoid scores each pair on its own and switches those off
#   (handlab's `fit_attention` leaves the pooling out);
# - **SET** (self-enhancing transformer): self-attention refines `F_FIT` into `F_SET`, from which
#   the joints (and MANO parameters) are regressed.
#
# The seed's tables (HO-3D: errors in mm, F-scores in %; FPHA: 3D joint error in mm):

# %%
ho3d = pd.DataFrame(
    [
        ("Pose2Mesh", 12.5, 12.7, 44.1, 90.9),
        ("Hasson et al. [14]", 11.4, 11.4, 42.8, 93.2),
        ("I2L-MeshNet", 11.2, 13.9, 40.9, 93.2),
        ("Hasson et al. [15]", 11.1, 11.0, 46.0, 93.0),
        ("Hampali et al.", 10.7, 10.6, 50.6, 94.2),
        ("METRO", 10.4, 11.1, 48.4, 94.6),
        ("Liu et al.", 10.2, 9.8, 52.9, 95.0),
        ("HandOccNet", 9.1, 8.8, 56.4, 96.3),
    ],
    columns=["method", "joint mm", "mesh mm", "F@5", "F@15"],
).set_index("method")
fpha = pd.Series(
    {
        "I2L-MeshNet": 21.2,
        "Hasson et al. [14]": 18.0,
        "Liu et al.": 16.0,
        "Hasson et al. [15]": 14.9,
        "HandOccNet": 10.8,
    },
    name="FPHA 3D joint error (mm)",
)
display(ho3d)
display(fpha.to_frame())

# %% [markdown]
# Those numbers are on real datasets we do not have offline. What we *can* test here, with
# synthetic occluders whose pixels we know exactly: (a) does `M` separate hand from occluder?
# (b) is HandOccNet's error less hurt by occlusion than a plain heatmap model's?
#
# ## 2. The models and an occluded test set
# Two shipped models: `handoccnet_r18` (this chapter's network, ResNet-18 + FPN, 64 channels)
# and the flagship `simplebaseline_r18` (chapter 01). `zoo.load` raises, naming the model, if
# one is not shipped. Every test frame has occluders (`occluders=1.0`) and `extras=True` gives
# the occluder mask and each joint's occluded fraction.

# %%
models = {name: zoo.load(name) for name in ("handoccnet_r18", "simplebaseline_r18")}
display(model_cards(models))  # their training differs: read the steps before the comparison
hoc = models["handoccnet_r18"]
size = hoc.config.input_size
if models["simplebaseline_r18"].config.input_size != size:
    raise ValueError("models: expected handoccnet_r18 and simplebaseline_r18 at one input size")
test = SyntheticHands("test", size=size, occluders=1.0, extras=True)
# rendered 64 frames at a time to bound memory; depth is not used here
parts = [test.batch(list(range(i, min(n, i + 64)))) for i in range(0, n, 64)]
data = {k: torch.cat([p[k] for p in parts]) for k in parts[0] if k != "depth"}
del parts
occlusion = data["occlusion"]  # (n, 21) fraction of each joint's disk covered by an occluder
numbers["occluded_joint_fraction"] = float((occlusion > 0).float().mean())
counts = assign_buckets(occlusion).flatten().bincount(minlength=len(BUCKET_NAMES))
pd.Series(counts.tolist(), index=BUCKET_NAMES, name="joints per occlusion bucket").to_frame()

# %% [markdown]
# ## 3. Inside HandOccNet: `M`, `F_p`, `F_s`, `F_FIT`, `F_SET`
# `HandOccNet.stages` returns the intermediate tensors exactly as `forward` computes them. We
# run it over the test frames 32 at a time and keep what the statistics below need: `M`, the
# FIT correlation's row sums (how much hand feature each cell receives, averaged over heads)
# and the split error, which is zero by construction (`F_p + F_s = F`):

# %%
necessity, row_sums, split_error = [], [], 0.0
with torch.no_grad():
    for x in data["image"].split(32):
        s = hoc.stages(x)
        tokens = s["features"].flatten(2).transpose(1, 2)  # (b, h*w, C)
        split_error = max(split_error, float((s["primary"] + s["secondary"] - tokens).abs().max()))
        necessity.append(s["necessity"][:, 0])  # (b, h, w)
        row_sums.append(s["correlation"].mean(1).sum(-1))  # (b, h*w)
necessity = torch.cat(necessity)  # (n, h, w)
h, w = necessity.shape[-2:]
row_sums = torch.cat(row_sums).reshape(-1, h, w)  # (n, h, w)
numbers["split_max_error"] = split_error
print(f"F: {tuple(s['features'].shape[1:])} (C, h, w) per frame; M: {tuple(necessity.shape)}")
print(f"FIT correlation per frame: {tuple(s['correlation'].shape[1:])} (heads, h*w, h*w)")
print(f"max |F_p + F_s - F| = {split_error:.2e}")

# %% [markdown]
# The most occluded frames of the set, stage by stage (each map is the per-cell norm over
# channels; the occluders are outlined in white). In the paper's figure, `F_p` lights up the
# visible hand, FIT carries it into the occluded cells next to the hand, and SET smooths it.

# %%
order = occlusion.mean(1).argsort(descending=True)
picked = order[: 2 if fast else 3]
with torch.no_grad():
    shown = hoc.stages(data["image"][picked])
for k, i in enumerate(picked.tolist()):
    fig = plot_stages(
        data["image"][i],
        shown,
        index=k,
        keypoints=data["keypoints"][i],
        visibility=data["visibility"][i],
        occluder_mask=data["occluder_mask"][i],
    )

# %% [markdown]
# Browse any test frame (with a live kernel the figure follows the slider):

# %%
explorer = StageExplorer(hoc, data)
explorer.frame.value = int(order[0])
explorer.widget

# %% [markdown]
# **Where does `M` point?** We pool the exact hand and occluder masks to the `h x w` cells and
# average `M` over cells that are mostly visible hand, mostly occluder, or neither (background).
# If `M` is a "hand detector", hand cells score highest.

# %%
hand_cells = F.adaptive_avg_pool2d(data["mask"], (h, w))[:, 0] > 0.5  # (n, h, w)
occ_cells = F.adaptive_avg_pool2d(data["occluder_mask"], (h, w))[:, 0] > 0.5
background = ~hand_cells & ~occ_cells
m_mean = {
    name: float(necessity[cells].mean()) if cells.any() else float("nan")
    for name, cells in (("hand", hand_cells), ("occluder", occ_cells), ("background", background))
}
numbers["necessity_mean"] = {k: v for k, v in m_mean.items() if v == v}
pd.Series(m_mean, name="mean M over cells").to_frame()

# %%
# A verdict that can fail: `M` marks the hand only if hand cells score clearly above every other
# kind (by MARGIN); a map that is (nearly) the same everywhere marks nothing, whatever the order.
MARGIN = 0.05
means = numbers["necessity_mean"]
ranked = sorted(means, key=means.get, reverse=True)
spread = float(necessity.max() - necessity.min())
others = [v for k, v in means.items() if k != "hand"]
lead = means.get("hand", float("nan")) - max(others, default=float("nan"))
numbers["necessity_spread"] = spread
numbers["necessity_hand_lead"] = lead if lead == lead else None
if spread < 1e-3:
    verdict = f"cannot be tested: `M` is constant ({float(necessity.mean()):.3f} on every cell)"
elif lead > MARGIN:
    verdict = f"agrees (hand cells {lead:.2f} above the next kind)"
else:
    verdict = f"differs (hand cells {lead:+.2f} against the best other kind; needed > {MARGIN})"
numbers["necessity_marks_hand"] = verdict.split(" ")[0]
display(
    Markdown(
        f"`M` ranges over {spread:.3f} across cells; mean per kind: "
        + ", ".join(f"{k} {means[k]:.3f}" for k in ranked)
        + f". The paper's reading, that `M` marks the hand: **{verdict}**."
    )
)

# %% [markdown]
# ## 4. FIT: why a softmax times a sigmoid
# A toy first, with `fit_attention` itself: three keys, one query *aligned* with the first key
# and one *opposed* to all of them. The softmax rows both sum to 1, so the unrelated query still
# pulls in a full unit of key features; the sigmoid factor scores each pair on its own and
# shrinks that row.

# %%
keys = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.5, 1.5]])
queries = torch.tensor([[2.0, -1.0], [-2.0, -2.0]])  # related to key 0; related to none
q, k = queries[None, None], keys[None, None]  # (1, 1, N, d)
_, corr = fit_attention(q, k, q, k, torch.ones(1, 1, 3, 2))
soft = torch.softmax(q @ k.transpose(-2, -1) / 2**0.5, dim=-1)
toy = pd.DataFrame(
    {
        "softmax row sum": soft[0, 0].sum(-1).tolist(),
        "C = softmax * sigmoid, row sum": corr[0, 0].sum(-1).tolist(),
    },
    index=["related query", "unrelated query"],
)
numbers["toy_row_sum"] = {
    "related": float(corr[0, 0, 0].sum()),
    "unrelated": float(corr[0, 0, 1].sum()),
}
toy

# %% [markdown]
# In the trained model, each query cell's row sum of `C` (averaged over heads) is how much
# primary (hand) feature it receives. Seed 003 says FIT injects hand information into occluded
# regions; we compare the row sums of occluder cells and of the other cells.

# %%
row_sum = {
    name: float(row_sums[cells].mean()) if cells.any() else float("nan")
    for name, cells in (("hand", hand_cells), ("occluder", occ_cells), ("background", background))
}
numbers["fit_row_sum"] = {k: v for k, v in row_sum.items() if v == v}
pd.Series(row_sum, name="mean row sum of C (injected hand mass)").to_frame()

# %% [markdown]
# Where one occluded cell reads from: the correlation row of an occluder cell next to the hand
# in the most occluded frame (the first such cell in reading order), as a map over the key
# cells (head average).

# %%
i = int(order[0])
near_hand = F.max_pool2d(hand_cells[i][None, None].float(), 3, 1, 1)[0, 0] > 0
candidates = (occ_cells[i] & near_hand).flatten().nonzero().flatten()
cell = int(candidates[0]) if len(candidates) else int(row_sums[i].flatten().argmax())
row = shown["correlation"][0].mean(0)[cell].reshape(h, w)  # frame i is picked[0]
fig, axes = plt.subplots(1, 2, figsize=(6, 3))
axes[0].imshow(data["image"][i].permute(1, 2, 0))
stride = size / w
cy, cx = divmod(cell, w)
axes[0].add_patch(
    plt.Rectangle((cx * stride - 0.5, cy * stride - 0.5), stride, stride, fill=False, color="red")
)
axes[0].set_title("query cell (red)")
axes[1].imshow(data["image"][i].permute(1, 2, 0), alpha=0.35)
axes[1].imshow(row, extent=(-0.5, size - 0.5, size - 0.5, -0.5), alpha=0.65)
axes[1].set_title("its correlation over key cells")
for ax in axes:
    ax.axis("off")

# %% [markdown]
# ## 5. Error by occlusion bucket: HandOccNet vs SimpleBaseline
# Both models see the same occluded frames. Each joint falls in the bucket of its own occluded
# fraction (`handlab.occlusion`: the buckets of seed 003's DexYCB table). All joints count, hidden
# ones included: predicting what cannot be seen is the point.

# %%
with torch.no_grad():
    outs = {
        name: {
            k: torch.cat([model(x)[k] for x in data["image"].split(32)])
            for k in (("keypoints", "xyz") if model.is_3d else ("keypoints",))
        }
        for name, model in models.items()
    }
epe = bucket_table({k: o["keypoints"] for k, o in outs.items()}, data["keypoints"], occlusion)
gt_rel = data["xyz"] - data["xyz"][:, :1]
mpjpe = bucket_table({"handoccnet_r18": outs["handoccnet_r18"]["xyz"]}, gt_rel, occlusion)
numbers["epe_px"] = {m: {k: float(v) for k, v in epe.loc[m].items() if v == v} for m in outs}
numbers["mpjpe_mm"] = {
    "handoccnet_r18": {k: float(v) for k, v in mpjpe.loc["handoccnet_r18"].items() if v == v}
}
display(epe.round(2))
display(mpjpe.round(2))
fig = plot_buckets(epe, title="2D error by joint occlusion (occluded synthetic frames)")

# %% [markdown]
# How much worse does each model get from the clearest bucket (0-25 %) to the most occluded one
# that has joints?

# %%
worst = [b for b in BUCKET_NAMES if epe[b].notna().all()][-1]
ratio = {m: float(epe.loc[m, worst] / epe.loc[m, "0-25%"]) for m in outs}
numbers["epe_ratio_occluded_to_clear"] = ratio
hoc_all, sb_all = epe.loc["handoccnet_r18", "all"], epe.loc["simplebaseline_r18", "all"]
robust = "agrees" if ratio["handoccnet_r18"] < ratio["simplebaseline_r18"] else "differs"
better = "lower" if hoc_all < sb_all else "higher"
display(
    Markdown(
        f"Over all joints HandOccNet's 2D error is **{hoc_all:.2f} px** against SimpleBaseline's "
        f"**{sb_all:.2f} px** ({better}). From the 0-25 % bucket to the {worst} bucket, "
        f"HandOccNet's error grows x{ratio['handoccnet_r18']:.2f} and SimpleBaseline's "
        f"x{ratio['simplebaseline_r18']:.2f}: the seed's claim that HandOccNet is the more "
        f"occlusion-robust model **{robust}** with this run. (SimpleBaseline is a 2D model; "
        "HandOccNet's 3D error by bucket is the second table.)"
    )
)

# %% [markdown]
# ## 6. The benchmark's trained comparison
# `benchmarks/occlusion_tables.py` trains HandOccNet and SimpleBaseline (and the Deformer
# variants of chapter 07) under one budget and tabulates them by bucket. If its results were
# shipped, they are shown here; otherwise the command to produce them.


# %%
def sb_minus_handoccnet(tables: dict) -> tuple[pd.DataFrame, float, float]:
    """The 2D EPE table of a benchmark's JSON and SimpleBaseline minus HandOccNet (px) on the
    75-100 % bucket and over all joints: seed 003's claim is that the first is > 0."""
    epe = pd.DataFrame(next(t for name, t in tables.items() if name.startswith("2D EPE")))
    diff = epe.loc["simplebaseline"] - epe.loc["handoccnet"]
    return epe, float(diff["75-100%"]), float(diff["all"])


results = (
    Path(handlab.__file__).resolve().parent.parent / "benchmarks/results/occlusion_tables.json"
)
numbers["benchmark_table_available"] = results.is_file()
if results.is_file():
    shipped = json.loads(results.read_text())
    for name, table in shipped.items():
        display(Markdown(f"**{name}**"))
        display(pd.DataFrame(table) if isinstance(table, dict) else table)
    # seed 003: HandOccNet beats the plain heatmap model on occluded joints
    epe, gap, _ = sb_minus_handoccnet(shipped)
    numbers["benchmark_sb_minus_handoccnet_75_100_px"] = gap
    display(
        Markdown(
            f"On the 75-100 % bucket SimpleBaseline minus HandOccNet is **{gap:+.2f} px**: our "
            f"equal-budget run **{'agrees with' if gap > 0 else 'differs from'}** seed 003 "
            "(HandOccNet better on occluded joints). Both are short CPU runs at 64 px; the "
            "card-level models above are the longer-trained ones."
        )
    )
else:
    display(
        Markdown(
            f"The benchmark's table is **not available** (`{results.name}` was not shipped). "
            "Produce it with `python benchmarks/occlusion_tables.py --steps 300` (about an hour "
            "of CPU), or re-tabulate finished runs with `python benchmarks/occlusion_tables.py`."
        )
    )

# %% [markdown]
# The same table for the **shipped** models (`python benchmarks/occlusion_tables.py --zoo`: 256
# occluded frames at 128 px; `simplebaseline_r18` trained 6000 steps, `handoccnet_r18` 1100 from
# its trunk, so not an equal budget, but both trained until their curves flattened):

# %%
zoo_results = results.with_name("occlusion_tables_zoo.json")
numbers["zoo_table_available"] = zoo_results.is_file()
if zoo_results.is_file():
    zoo_epe, zoo_gap, zoo_all = sb_minus_handoccnet(json.loads(zoo_results.read_text()))
    display(zoo_epe.round(2))
    numbers["zoo_sb_minus_handoccnet_75_100_px"] = zoo_gap
    display(
        Markdown(
            f"Shipped models, 75-100 % bucket, SimpleBaseline minus HandOccNet: **{zoo_gap:+.2f} "
            f"px** (over all joints {zoo_all:+.2f} px): seed 003's claim "
            f"**{'holds' if zoo_gap > 0 else 'does not hold'}** for the longer-trained models."
        )
    )
else:
    display(Markdown("`occlusion_tables_zoo.json` was not shipped: run the command above."))

# %% [markdown]
# ## Exercises
# 1. Set `M = 1` everywhere by hand: what are `F_p` and `F_s`, and what can FIT still inject?
# 2. Recompute the bucket table counting only joints the renderer marks visible
#    (`mask=data["visibility"] > 0`). Which buckets empty out, and why?
# 3. Find the frame where HandOccNet beats SimpleBaseline by the largest margin and draw its
#    stages with `plot_stages`. Is the occluder inside the hand's outline?
#
# <details><summary>Solutions (click)</summary>
#
# 1. `F_p = F`, `F_s = 0`. FIT's queries then come from the position embedding alone (it is
#    added to the tokens after the split), so each cell asks by its place, not by what covers it:
#    the injection no longer depends on where the occluder is. (Before the embedding moved there,
#    every query was `LayerNorm(0)`, the same for every cell, and the first `handoccnet_r18`
#    collapsed into exactly this state: see `handlab/models/handoccnet.py`.) Try it with
#    `split_features(shown["features"], torch.ones_like(shown["necessity"]))`.
# 2. `bucket_table(preds, data["keypoints"], occlusion, mask=data["visibility"] > 0)`: the
#    75-100 % bucket nearly empties, because a joint covered by an occluder is not visible; the
#    remaining "occluded" visible joints are those whose disk is only partly covered.
# 3. `gap = (joint_errors(outs["simplebaseline_r18"]["keypoints"], data["keypoints"]) -
#    joint_errors(outs["handoccnet_r18"]["keypoints"], data["keypoints"])).mean(1)`, then
#    `plot_stages(..., index=int(gap.argmax()), ...)`
#    (with `from handlab.occlusion import joint_errors`). If `gap.max()` is negative there is no
#    such frame: HandOccNet loses everywhere (the cell below says which is the case here).
# </details>

# %% tags=["solutions"]
# The solutions, executed (the report and the tests run this cell, so they stay correct).
from handlab.models.handoccnet import split_features
from handlab.occlusion import joint_errors

f_p, f_s = split_features(shown["features"], torch.ones_like(shown["necessity"]))  # 1.
tokens = shown["features"].flatten(2).transpose(1, 2)
visible_only = bucket_table(  # 2.
    {k: o["keypoints"] for k, o in outs.items()},
    data["keypoints"],
    occlusion,
    mask=data["visibility"] > 0,
)
gap = (  # 3.
    joint_errors(outs["simplebaseline_r18"]["keypoints"], data["keypoints"])
    - joint_errors(outs["handoccnet_r18"]["keypoints"], data["keypoints"])
).mean(1)
best = int(gap.argmax())
with torch.no_grad():
    best_stages = hoc.stages(data["image"][[best]])
fig = plot_stages(
    data["image"][best],
    best_stages,
    index=0,
    keypoints=data["keypoints"][best],
    visibility=data["visibility"][best],
    occluder_mask=data["occluder_mask"][best],
)
numbers["solutions"] = {
    "m1_primary_error": float((f_p - tokens).abs().max()),
    "m1_secondary_max": float(f_s.abs().max()),
    "largest_gain_px": float(gap.max()),
    # share of each bucket's joints that the renderer marks visible (2.)
    "visible_share_by_bucket": {
        b: float(visible_only.loc["joints", b] / epe.loc["joints", b])
        for b in visible_only.columns
        if epe.loc["joints", b] > 0
    },
}
print(f"1. with M = 1: max |F_p - F| = {numbers['solutions']['m1_primary_error']:.1e}, "
      f"max |F_s| = {numbers['solutions']['m1_secondary_max']:.1e}")  # fmt: skip
if gap.max() > 0:
    print(f"3. frame {best}: HandOccNet {gap.max():.2f} px better than SimpleBaseline")
else:  # nothing to find: say so rather than call a loss a gain
    print(
        f"3. HandOccNet is worse than SimpleBaseline on every frame; frame {best}, drawn above, "
        f"is where it loses least ({-gap.max():.2f} px)"
    )
display(visible_only.round(2))  # 2.

# %% [markdown]
# ## Summary
# - HandOccNet splits features with a learned necessity map into hand (`F_p`) and occluder
#   (`F_s`) parts, exactly (`F_p + F_s = F`), and injects hand features into occluded cells
#   with FIT; SET refines the result.
# - FIT's sigmoid factor lets a query that matches no key take (almost) nothing, which a softmax
#   alone cannot do.
# - The bucket tables above measure, on the same occluded frames, how much each model's error
#   grows with occlusion; the verdicts printed are computed from this run's numbers.

# %%
save_numbers(numbers, out_dir, "06")
numbers
