import numpy as np
import pandas as pd
import pytest
from PySide6.QtCore import QPersistentModelIndex, Qt

from ui.queue_model import NOTE, SCORE, SEVERITY, VERDICT, QueueFilter, QueueModel


@pytest.fixture
def model(qapp):
    rng = np.random.default_rng(0)
    n = 1000
    frame = pd.DataFrame({"id": np.arange(n), "amount": rng.lognormal(5, 1, n),
                          "account": rng.choice(["G001", "G002", "G010", "X999"], n),
                          "memo": [f"entry {i}" for i in range(n)]})
    m = QueueModel()
    m.set_frame(frame)
    m.set_scores(rng.random(n), rng.random(n) * 100)
    return m


def shown(model, column):
    return [model.data(model.index(r, column)) for r in range(model.rowCount())]


def test_sort_by_score_is_a_permutation_of_records_in_descending_order(model):
    model.sort(SCORE, Qt.SortOrder.DescendingOrder)
    scores = model.scores[model.visible]
    assert np.all(np.diff(scores) <= 0)
    assert sorted(model.visible.tolist()) == list(range(1000))
    model.sort(SCORE, Qt.SortOrder.AscendingOrder)
    assert np.all(np.diff(model.scores[model.visible]) >= 0)


def test_sort_by_text_and_numeric_data_columns(model):
    model.sort(model.column_index("account"), Qt.SortOrder.AscendingOrder)
    accounts = shown(model, model.column_index("account"))
    assert accounts == sorted(accounts)
    model.sort(model.column_index("amount"), Qt.SortOrder.DescendingOrder)
    amounts = model._values[model.columns.index("amount")][model.visible]
    assert np.all(np.diff(amounts) <= 0)


def test_filters_are_masks_over_the_sorted_order(model):
    model.set_threshold(float(np.quantile(model.scores, 0.9)))
    model.sort(SCORE, Qt.SortOrder.DescendingOrder)
    model.apply_filter(QueueFilter(flagged_only=True))
    assert model.rowCount() == int((model.scores >= model.threshold).sum())
    assert np.all(np.diff(model.scores[model.visible]) <= 0)  # still sorted
    model.apply_filter(QueueFilter(column="account", column_value="X999"))
    assert set(shown(model, model.column_index("account"))) == {"X999"}
    model.apply_filter(QueueFilter(column="amount", column_value=">500"))
    assert np.all(model._values[model.columns.index("amount")][model.visible] > 500)
    model.apply_filter(QueueFilter(text="entry 99"))
    assert {model.data(model.index(r, model.column_index("memo"))) for r in range(model.rowCount())} == \
        {"entry 99", *{f"entry {i}" for i in range(990, 1000)}}
    model.apply_filter(QueueFilter())
    assert model.rowCount() == 1000


def test_verdicts_notes_and_their_filters(model):
    model.set_verdict(5, "anomaly", "looks odd")
    model.set_verdict(7, "normal")
    model.set_verdict(9, "unsure")
    model.apply_filter(QueueFilter(verdict="anomaly"))
    assert model.visible.tolist() == [5]
    assert model.data(model.index(0, VERDICT)) == "anomaly"
    assert model.data(model.index(0, NOTE)) == "looks odd"
    model.apply_filter(QueueFilter(not_reviewed=True))
    assert model.rowCount() == 997
    model.apply_filter(QueueFilter(text="odd"))  # notes are searched too
    assert model.visible.tolist() == [5]
    c = model.counts()
    assert (c["reviewed"], c["confirmed"], c["normal"], c["unsure"]) == (3, 1, 1, 1)
    model.apply_filter(QueueFilter())
    model.sort(VERDICT, Qt.SortOrder.DescendingOrder)
    assert model.record_at(0) == 9  # unsure (3) > normal (2) > anomaly (1)


def test_selection_follows_its_record_across_sort_and_filter(model):
    model.sort(SEVERITY, Qt.SortOrder.DescendingOrder)
    record = model.record_at(10)
    persistent = QPersistentModelIndex(model.index(10, 0))
    model.sort(model.column_index("id"), Qt.SortOrder.AscendingOrder)
    assert model.record_at(persistent.row()) == record
    model.apply_filter(QueueFilter(column="id", column_value=str(record)))
    assert persistent.row() == 0


def test_colour_by_severity_and_dynamic_threshold(model):
    model.sort(SEVERITY, Qt.SortOrder.DescendingOrder)
    model.set_threshold(-1.0)  # every record flagged: the shade follows the severity
    top = model.data(model.index(0, 1), Qt.ItemDataRole.BackgroundRole).color()
    bottom = model.data(model.index(model.rowCount() - 1, 1), Qt.ItemDataRole.BackgroundRole).color()
    assert top.green() < bottom.green()  # redder at the top
    per_record = np.full(1000, 2.0)
    per_record[:3] = 0.0
    model.set_threshold(per_record)
    assert model.counts()["flagged"] == 3


def test_unflagged_and_ruled_records_are_not_painted_like_flagged_ones(model):
    model.sort(SEVERITY, Qt.SortOrder.DescendingOrder)
    top = model.record_at(0)
    model.set_threshold(np.inf)  # nothing flagged, even the most severe record
    assert model.data(model.index(0, 1), Qt.ItemDataRole.BackgroundRole) is None
    model.set_threshold(-1.0)
    assert model.data(model.index(0, 1), Qt.ItemDataRole.BackgroundRole) is not None
    ruled = np.zeros(1000, dtype=bool)
    ruled[top] = True
    model.set_ruled(ruled)
    assert not model.flagged[top] and model.counts()["flagged"] == 999
    assert model.data(model.index(0, 1), Qt.ItemDataRole.BackgroundRole) is None
    assert model.data(model.index(0, 1), Qt.ItemDataRole.ForegroundRole) is not None  # greyed
    model.apply_filter(QueueFilter(ruled=True))
    assert model.visible.tolist() == [top]


def test_reviewer_reason_and_note_filters(model):
    model.set_all_verdicts({1: "normal", 2: "anomaly", 3: "normal"}, {1: "Year-end ACCRUAL", 3: "vendor"},
                           {1: "ann", 2: "bob", 3: "ann"}, {2: "fraud", 3: "known vendor"})
    assert set(model.filter_mask(QueueFilter(reviewer="ann")).nonzero()[0]) == {1, 3}
    assert set(model.filter_mask(QueueFilter(reason="fraud")).nonzero()[0]) == {2}
    assert set(model.filter_mask(QueueFilter(note="accrual")).nonzero()[0]) == {1}
    model.set_verdict(3, "", note="", user="", reason="")
    assert set(model.filter_mask(QueueFilter(reviewer="ann")).nonzero()[0]) == {1}
