from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from engine.errors import NotFittedError, SchemaMismatchError
from engine.features import OTHER_LEVEL, FeatureMatrix, Preprocessor
from engine.schema import ColumnInfo, Role, Schema


def _frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    amount = np.exp(rng.normal(6, 2, n)).round(2)
    return pd.DataFrame({
        "id": np.arange(n),
        "amount": amount,
        "temp": rng.normal(20, 3, n),
        "kind": rng.choice(["a", "b", "c"], n, p=[0.6, 0.3, 0.1]),
        "when": pd.date_range("2024-01-01", periods=n, freq="37min").astype(str),
        "label": rng.integers(0, 2, n),
    })


def _schema() -> Schema:
    return Schema(columns=[ColumnInfo("id", Role.IDENTIFIER, "test"), ColumnInfo("amount", Role.NUMERIC, "test"),
                           ColumnInfo("temp", Role.NUMERIC, "test"), ColumnInfo("kind", Role.CATEGORICAL, "test"),
                           ColumnInfo("when", Role.DATETIME, "test"), ColumnInfo("label", Role.LABEL, "test")],
                  label_column="label", normal_value="0")


def test_layout_names_and_sources():
    df = _frame()
    p = Preprocessor().fit(df, _schema())
    fm = p.transform(df)
    assert fm.source_columns == ["amount", "temp", "kind", "when"]
    assert fm.values.shape == (len(df), fm.n_features)
    assert fm.values.dtype == np.float32
    assert len(fm.feature_names) == fm.n_features == len(fm.source_index)
    # numeric first: amount, temp, 4 datetime parts; then the one-hot block of kind (3 levels + other)
    assert fm.numeric_names[:2] == ["amount", "temp"]
    assert [n for n in fm.numeric_names if n.startswith("when__")] == [
        "when__hour", "when__weekday", "when__day", "when__month"]
    assert fm.categories == [["a", "b", "c", OTHER_LEVEL]]
    sl = fm.categorical_slices[0]
    assert np.all(fm.values[:, sl].sum(axis=1) == 1.0)
    assert np.array_equal(fm.values[:, sl].argmax(axis=1), fm.codes[:, 0])
    assert set(fm.source_index[sl]) == {2}


def test_log_for_heavy_tailed_amounts_and_robust_scale():
    df = _frame()
    p = Preprocessor().fit(df, _schema())
    assert p.numeric_["amount"]["transform"] == "log1p"
    assert p.numeric_["temp"]["transform"] == "none"
    fm = p.transform(df)
    amount = fm.numeric[:, fm.numeric_names.index("amount")]
    assert abs(np.median(amount)) < 0.05  # centred on the median
    assert 0.5 < np.subtract(*np.percentile(amount, [75, 25])) / 1.349 < 1.5  # IQR-scaled


def test_missing_values_imputed_with_indicator_and_counted():
    df = _frame()
    df.loc[[3, 7], "temp"] = np.nan
    p = Preprocessor().fit(df, _schema())
    fm = p.transform(df)
    assert "temp__missing" in fm.numeric_names
    ind = fm.numeric[:, fm.numeric_names.index("temp__missing")]
    assert ind[3] == 1.0 and ind[7] == 1.0 and ind.sum() == 2
    assert fm.numeric[3, fm.numeric_names.index("temp")] == 0.0  # the median, scaled
    assert fm.missing["temp"] == 2
    assert np.isfinite(fm.values).all()


def test_unseen_and_rare_categories_map_to_other_and_are_counted():
    df = _frame()
    df.loc[:1, "kind"] = "very_rare"  # 2 rows: below min_level_count
    p = Preprocessor(min_level_count=5).fit(df, _schema())
    assert "very_rare" not in p.levels_["kind"]
    new = df.head(10).copy()
    new.loc[:2, "kind"] = "never_seen"
    fm = p.transform(new)
    other = len(fm.categories[0]) - 1
    assert (fm.codes[:3, 0] == other).all()
    assert fm.unseen == {"kind": 3}


def test_missing_column_raises_schema_mismatch_naming_it():
    df = _frame()
    p = Preprocessor().fit(df, _schema())
    with pytest.raises(SchemaMismatchError, match="temp"):
        p.transform(df.drop(columns=["temp"]))


def test_not_fitted():
    with pytest.raises(NotFittedError):
        Preprocessor().transform(_frame())


def test_round_trip_through_json_gives_identical_encoding():
    df = _frame()
    p = Preprocessor().fit(df, _schema())
    d = json.loads(json.dumps(p.to_dict()))
    q = Preprocessor.from_dict(d)
    a, b = p.transform(df), q.transform(df)
    assert np.array_equal(a.values, b.values)
    assert a.feature_names == b.feature_names


def test_from_dict_rejects_incomplete_description():
    p = Preprocessor().fit(_frame(), _schema())
    d = p.to_dict()
    del d["levels"]["kind"]
    with pytest.raises(ValueError, match="kind"):
        Preprocessor.from_dict(d)


def test_inverse_transform_expected_returns_original_units():
    df = _frame()
    p = Preprocessor().fit(df, _schema())
    fm = p.transform(df)
    expected = p.inverse_transform_expected(fm.values)  # a perfect reconstruction
    assert list(expected.columns) == fm.source_columns
    np.testing.assert_allclose(expected["amount"].to_numpy(), df["amount"].to_numpy(), rtol=1e-4)
    np.testing.assert_allclose(expected["temp"].to_numpy(), df["temp"].to_numpy(), rtol=1e-4)
    assert (expected["kind"].to_numpy() == df["kind"].to_numpy()).all()
    assert expected["when"].iloc[0].startswith("hour 0, weekday 0, day 1, month 1")


def test_expected_numbers_stay_within_the_training_range():
    """A reconstruction far outside anything seen (a network extrapolating for a row unlike any it
    learnt) is shown at the nearest value the training rows had, not as an impossible number."""
    df = _frame()
    p = Preprocessor().fit(df, _schema())
    fm = p.transform(df)
    j = fm.feature_names.index("temp")
    wild = fm.values.copy()
    wild[0, j], wild[1, j] = -1e4, 1e4
    expected = p.inverse_transform_expected(wild)["temp"].to_numpy()
    assert expected[0] == pytest.approx(df["temp"].min()) and expected[1] == pytest.approx(df["temp"].max())
    np.testing.assert_allclose(expected[2:], df["temp"].to_numpy()[2:], rtol=1e-4)  # the rest untouched
    # the range travels with the JSON description; one written before it existed does not clip
    restored = Preprocessor.from_dict(json.loads(json.dumps(p.to_dict())))
    assert restored.inverse_transform_expected(wild)["temp"].iloc[0] == pytest.approx(df["temp"].min())
    old = json.loads(json.dumps(p.to_dict()))
    for spec in old["numeric"].values():
        del spec["min"], spec["max"]
    assert Preprocessor.from_dict(old).inverse_transform_expected(wild)["temp"].iloc[0] < df["temp"].min() - 100


def test_categorical_numbers_read_the_same_from_int_and_float_columns():
    schema = Schema(columns=[ColumnInfo("code", Role.CATEGORICAL, "test")])
    train = pd.DataFrame({"code": [1, 2, 3, 1, 2, 3] * 5})
    p = Preprocessor().fit(train, schema)
    score = pd.DataFrame({"code": [1.0, 2.0, np.nan]})
    fm = p.transform(score)
    assert list(fm.codes[:2, 0]) == [p.levels_["code"].index("1"), p.levels_["code"].index("2")]
    assert fm.unseen == {"code": 1}  # missing was never seen in training


def test_plain_matrix_feature_matrix():
    fm = FeatureMatrix(np.ones((5, 3), dtype=np.float32), ["a", "b", "c"], ["a", "b", "c"], np.arange(3))
    assert fm.n_features == 3 and fm.codes.shape == (5, 0)
    assert np.array_equal(fm.values, np.ones((5, 3)))


def test_subset_keeps_encoding():
    df = _frame()
    fm = Preprocessor().fit_transform(df, _schema())
    sub = fm.subset(np.arange(10))
    assert sub.n_rows == 10
    assert np.array_equal(sub.values, fm.values[:10])


def test_million_rows_transform_vectorised():
    df = _frame(2000)
    p = Preprocessor().fit(df, _schema())
    big = pd.concat([df] * 50, ignore_index=True)  # 100k rows: must stay well under seconds
    fm = p.transform(big)
    assert fm.n_rows == 100_000
