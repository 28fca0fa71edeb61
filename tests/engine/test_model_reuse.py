"""A saved model applied to a new file: every kind of schema difference is reported clearly, and
the files that cannot be scored are refused naming the columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.errors import ModelFileError, SchemaMismatchError
from engine.model_reuse import (
    apply_model,
    carried_schema,
    load_model,
    model_threshold,
    schema_differences,
)
from engine.pipeline import AnomalyModel
from engine.schema import ColumnInfo, Role, Schema


def _frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "entry": np.arange(1, n + 1),
        "amount": rng.lognormal(4, 0.4, n).round(2),
        "currency": rng.choice(["EUR", "USD", "GBP"], n),
        "label": ["normal"] * (n - 3) + ["fraud"] * 3,
    })


SCHEMA = Schema(columns=[ColumnInfo("entry", Role.IDENTIFIER, "t"), ColumnInfo("amount", Role.NUMERIC, "t"),
                         ColumnInfo("currency", Role.CATEGORICAL, "t"), ColumnInfo("label", Role.LABEL, "t")],
                label_column="label", normal_value="normal")


@pytest.fixture(scope="module")
def model():
    return AnomalyModel("ecod").fit(_frame(), SCHEMA)


def test_same_layout_fits_without_notes(model):
    diff = schema_differences(model, _frame(seed=1), file="next.csv")
    assert diff.fits and diff.identical and diff.lines() == []
    diff.raise_if_unfit()


def test_missing_column_is_refused_by_name(model):
    diff = schema_differences(model, _frame().drop(columns=["amount"]), file="next.csv")
    assert not diff.fits and diff.missing == ["amount"]
    assert any("missing column(s) the model needs: amount" in line for line in diff.lines())
    with pytest.raises(SchemaMismatchError, match=r"next\.csv.*amount"):
        diff.raise_if_unfit()


def test_extra_column_is_passed_through(model):
    frame = _frame().assign(region="north")
    diff = schema_differences(model, frame)
    assert diff.fits and diff.extra == ["region"]
    assert any("extra column(s) not in the model: region (passed through, not used)" in line for line in diff.lines())
    schema = carried_schema(model, frame.columns)
    assert schema.column("region").role is Role.IGNORED
    assert schema.column("amount").role is Role.NUMERIC and schema.label_column == "label"


def test_changed_type_is_refused_with_examples(model):
    frame = _frame().assign(amount=lambda f: "EUR " + f["amount"].astype(str))
    diff = schema_differences(model, frame, file="next.csv")
    assert not diff.fits and [c.column for c in diff.changed_type] == ["amount"]
    line = diff.lines()[0]
    assert "column 'amount' changed type" in line and "expects numbers" in line and "'EUR " in line
    with pytest.raises(SchemaMismatchError, match="amount"):
        diff.raise_if_unfit()


def test_a_few_bad_numbers_are_scored_as_missing(model):
    frame = _frame().astype({"amount": object})
    frame.loc[[3, 9], "amount"] = ["n/a", "twelve"]
    diff = schema_differences(model, frame)
    assert diff.fits and diff.invalid == {"amount": 2}
    assert any("'amount': 2 value(s) are not numbers" in line and "'twelve'" in line for line in diff.lines())


def test_unseen_category_is_reported_with_handling(model):
    frame = _frame()
    frame.loc[:4, "currency"] = "JPY"
    diff = schema_differences(model, frame)
    assert diff.fits and diff.unseen == {"currency": 5} and diff.unseen_examples["currency"] == ["JPY"]
    line = next(x for x in diff.lines() if "currency" in x)
    assert "5 row(s)" in line and "'JPY'" in line and "scored as the rare '<other>' level" in line


def test_missing_identifier_and_label_are_only_noted(model):
    diff = schema_differences(model, _frame().drop(columns=["entry", "label"]))
    assert diff.fits and diff.missing_other == [("entry", "identifier"), ("label", "label")]
    assert any("records are keyed by row" in line for line in diff.lines())


def test_threshold_override_and_default(model):
    assert model_threshold(model, 1.5) == (1.5, "given by the analyst")
    value, how = model_threshold(model)
    assert value == pytest.approx(np.quantile(model.train_scores_, 0.99), rel=0.05)
    assert "1%" in how


def test_apply_saved_model_to_new_file(model, tmp_path):
    bundle = model.save(tmp_path / "model")
    frame = _frame(seed=5)
    frame.loc[0, "currency"] = "CHF"
    csv_path = tmp_path / "next.csv"
    frame.assign(note="x").to_csv(csv_path, index=False)
    applied = apply_model(bundle, csv_path)
    assert applied.differences.extra == ["note"] and applied.differences.unseen == {"currency": 1}
    assert applied.schema.column("note").role is Role.IGNORED
    np.testing.assert_allclose(applied.result.scores, model.score(frame).scores)
    assert applied.keys[:2] == ["1", "2"] and applied.threshold is not None

    csv_path.write_text(frame.drop(columns=["currency"]).to_csv(index=False))
    with pytest.raises(SchemaMismatchError, match="currency"):
        apply_model(bundle, csv_path)


def test_load_model_names_the_folder(tmp_path):
    with pytest.raises(ModelFileError, match="no such model folder"):
        load_model(tmp_path / "nope")
