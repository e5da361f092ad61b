"""PoseIG's Table C: the claims hold on the seed's own numbers and can fail on other tables."""

import numpy as np
import pandas as pd
import pytest

from handlab.attribution.table_c import (
    CLAIMS,
    KINDS,
    SEED_DEPTHS,
    SEED_TABLE_C,
    check_claims,
    kind_table,
)


def _by_name(verdicts: pd.DataFrame) -> dict[str, pd.Series]:
    return {row.claim: row for row in verdicts.itertuples()}


def test_every_claim_holds_on_the_seed_table():
    verdicts = check_claims(SEED_TABLE_C, SEED_DEPTHS)
    assert len(verdicts) == len(CLAIMS) >= 5
    assert verdicts.holds.all() and (verdicts.verdict == "agrees").all()


def test_a_reversed_table_fails_the_ordering_claims():
    # groups read leaf -> trunk and the model order reversed: every ordering claim must fail
    flipped = SEED_TABLE_C.iloc[::-1]
    flipped = pd.DataFrame(flipped.to_numpy()[:, ::-1], index=flipped.index, columns=KINDS)
    found = _by_name(check_claims(flipped, SEED_DEPTHS))
    for name in ("fi_grows_to_leaves", "resnet50_highest", "rle_lowest"):
        assert found[name].holds is False and found[name].verdict == "differs", name
    assert found["fi_above_chance"].verdict == "agrees"


def test_depths_decide_which_resnet_is_deeper():
    # with a ResNet-18 standing in for ResNet-101, the seed's own numbers (the "ResNet-101"
    # column lower) say the shallower one is lower: the depth claim fails
    found = _by_name(check_claims(SEED_TABLE_C, {"ResNet-50": 50, "ResNet-101": 18}))
    assert found["deeper_resnet_lower"].holds is False
    assert "ResNet-50" in found["deeper_resnet_lower"].detail


def test_coordinate_models_above_heatmap_models_differs():
    fi = SEED_TABLE_C.copy()
    fi["RLE"] = fi["Integral"] = 3.0
    found = _by_name(check_claims(fi, SEED_DEPTHS))
    assert found["coordinate_below_heatmap"].verdict == "differs"
    assert found["rle_lowest"].verdict == "differs"


def test_below_chance_differs():
    fi = SEED_TABLE_C - 1.5  # every FI below 1
    assert _by_name(check_claims(fi, SEED_DEPTHS))["fi_above_chance"].verdict == "differs"


def test_a_missing_kind_is_not_testable_not_a_failure():
    fi = SEED_TABLE_C.drop(columns=["RLE"])
    found = _by_name(check_claims(fi, SEED_DEPTHS))
    for name in ("rle_lowest", "resnet50_highest", "coordinate_below_heatmap"):
        assert found[name].holds is None and found[name].verdict == "not testable", name
    assert found["fi_grows_to_leaves"].verdict == "agrees"  # the five present still rise


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="fi: expected columns"):
        check_claims(SEED_TABLE_C.rename(columns={"RLE": "rle"}), SEED_DEPTHS)
    with pytest.raises(ValueError, match="depths"):
        check_claims(SEED_TABLE_C, {"ResNet-50": 50})


def test_kind_table_from_a_tidy_comparison():
    rows = []
    for model, base in (("m1", 1.0), ("m2", 2.0)):
        for k, group in enumerate(("wrist", "MCP", "PIP", "DIP", "TIP")):
            rows.append({"model": model, "group": group, "index": "FI", "value": base + k})
            rows.append({"model": model, "group": group, "index": "DI", "value": 50.0})
    table = kind_table(pd.DataFrame(rows), {"RLE": "m2", "Integral": "m1"})
    assert list(table.columns) == ["RLE", "Integral"]
    assert list(table.index) == ["wrist", "MCP", "PIP", "DIP", "TIP"]
    np.testing.assert_allclose(table.RLE, [2, 3, 4, 5, 6])
    with pytest.raises(ValueError, match="kinds"):
        kind_table(pd.DataFrame(rows), {"rle": "m2"})
    with pytest.raises(ValueError, match="comparison"):
        kind_table(pd.DataFrame(rows), {"RLE": "m3"})


def test_zoo_models_for_table_c_are_shipped_rgb_models():
    # chapters 09 and 11 compare these by default: one shipped RGB model per kind of the seed's
    from handlab import zoo
    from handlab.attribution.table_c import KINDS, TABLE_C_ZOO_MODELS

    assert tuple(TABLE_C_ZOO_MODELS) == KINDS
    assert set(TABLE_C_ZOO_MODELS.values()) <= set(zoo.RGB_MODELS)
    assert set(TABLE_C_ZOO_MODELS.values()) <= set(zoo.list())
