import numpy as np
import pandas as pd
import pytest

from engine.errors import DataError
from engine.evaluation import aucpr, aucroc, by_value, evaluate, found_at_budget, metrics, p_at_n


def test_metrics_on_a_known_example():
    y = np.array([1, 0, 1, 0, 0, 0], dtype=bool)
    s = np.array([0.9, 0.8, 0.7, 0.1, 0.2, 0.3])
    # positives outrank 4 and 4 of the 4 negatives, except 0.7 < 0.8: 7 of 8 pairs
    assert aucroc(y, s) == pytest.approx(7 / 8)
    # precision at the positives' ranks: 1/1 and 2/3 -> mean 5/6
    assert aucpr(y, s) == pytest.approx(5 / 6)
    assert p_at_n(y, s) == pytest.approx(0.5)
    assert found_at_budget(y, s, budget=3) == 2
    assert found_at_budget(y, s, budget=1) == 1


def test_ties_count_half_and_single_class_is_nan():
    assert aucroc([1, 0], [0.5, 0.5]) == pytest.approx(0.5)
    assert np.isnan(aucroc([0, 0], [0.1, 0.2]))
    assert aucroc([1, 0, 0], [np.nan, 0.1, 0.2]) == 0.0  # NaN ranks lowest


def test_by_value_counts_each_anomalous_value():
    n = 200
    values = np.array(["regular"] * n, dtype=object)
    values[:3] = "global"
    values[3:5] = "local"
    y = values != "regular"
    s = np.linspace(1.0, 0.0, n)  # row order = rank order
    s[4] = -1.0  # one local anomaly ranked last
    out = by_value(values, y, s)
    assert set(out) == {"global", "local"}
    assert out["global"] == {"count": 3, "in_top_1pct": 2, "aucroc": 1.0}  # top 1% of 200 = 2 rows
    assert out["local"]["count"] == 2 and out["local"]["in_top_1pct"] == 0
    assert out["local"]["aucroc"] == pytest.approx(0.5)
    m = metrics(y, s, values)
    assert m["n_anomalies"] == 5 and m["rows"] == n and set(m["by_value"]) == {"global", "local"}


def _labelled_csv(tmp_path, label_values):
    rng = np.random.default_rng(0)
    n = len(label_values)
    x = rng.normal(size=(n, 3))
    anomalous = np.asarray([v not in ("0", "false", "ok", "bad") for v in label_values])
    if "bad" in label_values:  # normal_value "bad": the "ok" rows are the anomalies
        anomalous = np.asarray([v == "ok" for v in label_values])
    x[anomalous] += 6
    frame = pd.DataFrame(x, columns=["a", "b", "c"])
    frame["status"] = label_values
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    return path


def test_evaluate_fits_without_labels_and_reports(tmp_path):
    labels = ["ok"] * 290 + ["fraud"] * 6 + ["error"] * 4
    path = _labelled_csv(tmp_path, labels)
    out = evaluate(path, "status", detector="ecod")
    assert out["aucroc"] > 0.95 and out["rows"] == 300
    assert out["normal_value"] == "ok"  # the most frequent string is normal
    assert "status" not in out["feature_columns"]
    assert set(out["by_value"]) == {"error", "fraud"}
    for key in ("aucpr", "p_at_n", "found_at_budget", "fit_seconds", "score_seconds", "detector"):
        assert key in out


@pytest.mark.parametrize("labels,normal", [(["0"] * 290 + ["1"] * 10, None),
                                           (["false"] * 290 + ["true"] * 10, None),
                                           (["ok"] * 10 + ["bad"] * 290, "bad")])
def test_evaluate_reads_every_kind_of_label(tmp_path, labels, normal):
    path = _labelled_csv(tmp_path, labels)
    out = evaluate(path, "status", normal_value=normal, detector="pca")
    assert out["n_anomalies"] == 10 and out["aucroc"] > 0.95


def test_evaluate_refuses_a_single_valued_label(tmp_path):
    path = _labelled_csv(tmp_path, ["ok"] * 50)
    with pytest.raises(DataError, match="both normal and anomalous"):
        evaluate(path, "status", detector="ecod")
    with pytest.raises(DataError, match="no label column"):
        evaluate(path, "nope", detector="ecod")
