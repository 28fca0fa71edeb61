"""File > Settings…: the reviewer name feeds the verdicts; the cluster settings are kept; Parquet opens."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PySide6.QtCore import Qt

from tests.ui.conftest import open_and_wait, train_and_wait
from ui.settings_dialog import KEY_REVIEWER, AppSettings, os_user


def _settings_action(window):
    return next(a for a in window.menuBar().actions()[0].menu().actions() if a.text().startswith("Se&ttings"))


def test_reviewer_defaults_to_the_os_user(qtbot, make_window):
    w = make_window(user=None)
    assert w.session.user == os_user()
    assert w.app_settings.cluster == "" and w.app_settings.top_n == 10_000


def test_reviewer_setting_feeds_the_next_verdicts(qtbot, make_window, settings, small_csv):
    settings.setValue(KEY_REVIEWER, "first reviewer")
    w = make_window(user=None)
    assert w.session.user == "first reviewer"
    open_and_wait(qtbot, w, small_csv)
    train_and_wait(qtbot, w, "iforest", {"n_estimators": 20})
    w.review_panel.view.setFocus()
    w.review_panel.select_row(0)
    first = w.review_panel.current_record()
    qtbot.keyClick(w.review_panel.view, Qt.Key.Key_A)
    assert w.store.get(str(w.keys[first])).user == "first reviewer"

    _settings_action(w).trigger()
    dialog = w.settings_dialog
    assert dialog.reviewer_edit.text() == "first reviewer"
    dialog.reviewer_edit.clear()
    qtbot.keyClicks(dialog.reviewer_edit, "Second Person")
    dialog.cluster_edit.setText("local:2")
    dialog.threshold_spin.setValue(50)
    dialog.top_spin.setValue(5000)
    dialog.buttons.accepted.emit()
    assert not dialog.isVisible()
    w.review_panel.view.setFocus()
    second = w.review_panel.current_record()
    qtbot.keyClick(w.review_panel.view, Qt.Key.Key_N)
    assert w.store.get(str(w.keys[second])).user == "Second Person"
    assert w.store.get(str(w.keys[first])).user == "first reviewer"  # earlier verdicts keep theirs
    again = AppSettings.read(settings)
    assert (again.reviewer, again.cluster, again.threshold_mb, again.top_n) == ("Second Person", "local:2", 50, 5000)


def test_a_bad_cluster_address_is_refused_in_the_dialog(qtbot, window):
    dialog = window.open_settings()
    dialog.cluster_edit.setText("local:zero")
    dialog.buttons.accepted.emit()
    assert dialog.isVisible() and "local:N" in dialog.problem.text()
    dialog.reject()


def test_opening_a_big_file_with_a_cluster_set_says_how_to_score_it_there(qtbot, window, small_csv):
    window.apply_settings(AppSettings(reviewer="me", cluster="local:2", threshold_mb=0))
    open_and_wait(qtbot, window, small_csv)
    note = window.error_dialogs[-1].text()
    assert "local:2" in note and small_csv.name in note and "Apply model to new file" in note


@pytest.mark.slow
def test_a_big_file_is_scored_on_the_cluster_and_its_top_records_reviewed(qtbot, trained_window, small_csv,
                                                                         tmp_path):
    pytest.importorskip("distributed")
    w = trained_window
    big = tmp_path / "big.csv"
    pd.read_csv(small_csv).drop(columns=["label"]).to_csv(big, index=False)
    w.apply_settings(AppSettings(reviewer="me", cluster="local:1", threshold_mb=0, top_n=200))
    with qtbot.waitSignal(w.model_applied, timeout=180_000):
        w.apply_model_to(big)
    assert w.error_dialogs[-1].windowTitle() == "Scored on the cluster", w.error_dialogs[-1].text()
    assert w.queue.rowCount() == 200 and len(w.scores) == 200
    assert w.session.contributions is not None and w.session.contributions.shape[0] == 200
    every = pd.read_parquet(tmp_path / "appdata" / "cluster" / "big.scores.parquet")
    assert len(every) == len(pd.read_csv(small_csv))
    # the queue holds the highest-scored records, with the scores the cluster gave them
    np.testing.assert_allclose(np.sort(w.scores)[::-1], np.sort(every["score"].to_numpy())[::-1][:200],
                               rtol=1e-5)


def test_file_open_accepts_parquet(qtbot, window, small_csv, tmp_path):
    from ui.main_window import CSV_FILTER

    assert "*.parquet" in CSV_FILTER
    path = tmp_path / "ledger.parquet"
    pd.read_csv(small_csv).to_parquet(path)
    open_and_wait(qtbot, window, path)
    assert window.loaded.path == str(path) and window.queue.rowCount() == len(pd.read_csv(small_csv))
    assert window.error_dialogs == []
