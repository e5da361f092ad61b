import numpy as np
import pandas as pd
import pytest
import torch

from handlab.attribution.analysis import compare_models, inversion_errors, mcp_shortcut
from handlab.attribution.indices import index_table
from handlab.skeleton import GROUPS


def test_mcp_shortcut_detects_reliance_on_the_knuckles():
    ri = torch.ones(4, 21, 21)
    ri[:, 8, list(GROUPS["MCP"])] = 3.0  # the index tip leans on the knuckles
    ri[:, 8, 8] = 5.0
    table = mcp_shortcut(ri)
    assert len(table) == 16 and 5 not in set(table.joint)
    row = table[table.joint == 8].iloc[0]
    assert (row.RI_mcp, row.RI_other, row.RI_self, row.ratio) == (3.0, 1.0, 5.0, 3.0)
    assert table[table.joint != 8].ratio.eq(1.0).all()


def test_mcp_shortcut_excludes_invisible_targets():
    ri = torch.ones(2, 21, 21)
    ri[0, 8, 1] = 100.0  # toward the thumb CMC, invisible in sample 0
    vis = torch.ones(2, 21)
    vis[0, 1] = 0
    row = mcp_shortcut(ri, vis).set_index("joint").loc[8]
    assert row.RI_mcp == 1.0
    row = mcp_shortcut(ri).set_index("joint").loc[8]
    assert row.RI_mcp == pytest.approx((100 + 4 + 5) / 10)


def test_inversion_errors_against_a_naive_loop():
    g = torch.Generator().manual_seed(0)
    gt = torch.rand(5, 21, 2, generator=g) * 60
    pred = gt[:, torch.randperm(21, generator=g)] + torch.randn(5, 21, 2, generator=g) * 3
    vis = (torch.rand(5, 21, generator=g) > 0.2).float()
    table = inversion_errors(pred, gt, vis, threshold=10.0)
    flagged = set()
    for s in range(5):
        for j in range(21):
            if not vis[s, j]:
                continue
            own = float((pred[s, j] - gt[s, j]).norm())
            other = min(
                float((pred[s, j] - gt[s, k]).norm()) for k in range(21) if k != j and vis[s, k]
            )
            if own > 10 and other < 10:
                flagged.add((s, j))
    got = {(int(r.sample), int(r.joint)) for r in table[table.inverted].itertuples()}
    assert got == flagged and len(flagged) > 5
    assert len(table) == int(vis.sum())


def test_compare_models():
    g = torch.Generator().manual_seed(0)
    tables = {
        "a": index_table(torch.rand(2, 21, 16, 16, generator=g)),
        "b": index_table(torch.ones(2, 21, 16, 16)),
    }
    out = compare_models(tables, indices=("DI",))
    assert out.shape == (10, 5)
    b = out[out.model == "b"]
    assert np.allclose(b.value, 100.0) and b.n.tolist() == [2, 10, 10, 10, 10]
    assert (out[out.model == "a"].value < 100).all()


def test_analysis_errors():
    with pytest.raises(ValueError, match="ri: expected shape"):
        mcp_shortcut(torch.ones(1, 20, 20))
    with pytest.raises(ValueError, match="gt: expected shape"):
        inversion_errors(torch.zeros(1, 21, 2), torch.zeros(1, 20, 2))
    with pytest.raises(ValueError, match="threshold"):
        inversion_errors(torch.zeros(1, 21, 2), torch.zeros(1, 21, 2), threshold=-1)
    with pytest.raises(ValueError, match="tables"):
        compare_models({})
    with pytest.raises(ValueError, match="by"):
        compare_models({"a": pd.DataFrame({"visibility": [1.0], "DI": [1.0]})}, indices=("DI",))
