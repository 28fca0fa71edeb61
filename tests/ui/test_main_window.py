"""Projects, window layout, exports, model reuse, menus: the whole window."""

import numpy as np
import pandas as pd
from PySide6.QtCore import Qt

from engine.schema import Role
from tests.ui.conftest import open_and_wait, train_and_wait
from ui.main_window import TAB_THRESHOLD


def test_save_and_reopen_a_project_continues_the_review(qtbot, make_window, small_csv, tmp_path):
    w = make_window()
    open_and_wait(qtbot, w, small_csv)
    w.data_panel.set_role("WAERS", Role.IGNORED)
    train_and_wait(qtbot, w, "iforest", {"n_estimators": 40})
    w.review_panel.view.setFocus()
    w.review_panel.select_row(0)
    given = {}
    for k in (Qt.Key.Key_A, Qt.Key.Key_N, Qt.Key.Key_N):
        given[w.review_panel.current_record()] = {Qt.Key.Key_A: "anomaly", Qt.Key.Key_N: "normal"}[k]
        qtbot.keyClick(w.review_panel.view, k)
    threshold = float(np.sort(w.scores)[-50])
    w.threshold_panel.set_threshold(threshold, "manual")
    w.threshold_panel.loss_spin.setValue(777.0)
    project = tmp_path / "review.adproj"
    assert w.save_project(project)
    assert (tmp_path / "review.model").is_dir()
    scores = w.scores.copy()
    w.close()

    w2 = make_window()
    with qtbot.waitSignal(w2.scored, timeout=60_000):
        w2.open_project(project)
    assert w2.loaded.path == str(small_csv)
    assert w2.overrides.roles == {"WAERS": Role.IGNORED}
    assert "WAERS" not in w2.schema.feature_columns
    assert w2.train_panel.detector() == "iforest"
    np.testing.assert_allclose(w2.scores, scores)
    assert w2.threshold_panel.value == threshold
    assert w2.queue.counts()["flagged"] == int((scores >= threshold).sum())
    assert w2.threshold_panel.loss_spin.value() == 777.0
    for record, verdict in given.items():
        assert w2.store.get(str(w2.keys[record])).verdict == verdict
        assert w2.queue.verdicts[record] == {"anomaly": 1, "normal": 2}[verdict]
    assert w2.queue.counts()["reviewed"] == 3


def test_a_hostile_project_is_refused_with_a_dialog(qtbot, window, tmp_path):
    evil = tmp_path / "evil.adproj"
    evil.write_bytes(b"\x80\x04\x95garbage pickle")
    window.open_project(evil)
    assert len(window.error_dialogs) == 1
    assert "refused" in window.error_dialogs[0].text()
    assert window.loaded is None


def test_window_layout_is_remembered(qtbot, make_window, settings):
    w = make_window()
    w.resize(1000, 640)
    w.tabs.setCurrentIndex(TAB_THRESHOLD)
    w.review_splitters[1].setSizes([500, 300])
    qtbot.wait(20)
    before = (w.width(), w.height())
    w.close()
    w2 = make_window(settings=settings)
    assert w2.tabs.currentIndex() == TAB_THRESHOLD
    # the offscreen screen is 800 px wide: Qt fits the width to it, the height comes back as saved
    assert w2.height() == before[1]
    assert settings.value("window/geometry") is not None
    assert settings.value("window/splitter1") is not None


def test_export_queue_and_report(qtbot, trained_window, tmp_path):
    w = trained_window
    w.review_panel.view.setFocus()
    w.review_panel.select_row(0)
    qtbot.keyClick(w.review_panel.view, Qt.Key.Key_A)
    for suffix in ("csv", "xlsx", "html"):
        path = tmp_path / f"out.{suffix}"
        with qtbot.waitSignal(w.exported, timeout=60_000):
            w.export(path, title="Quarter review", author="tester", notes="<b>escaped</b>")
        assert path.stat().st_size > 0
    table = pd.read_csv(tmp_path / "out.csv")
    assert len(table) == 1500 and "anomaly" in set(table.astype(str).stack())
    assert "Quarter review" in (tmp_path / "out.html").read_text()
    # the dialog offers format, path, title, author, notes
    w.choose_export()
    dialog = w.export_dialog
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData("pdf"))
    assert dialog.path().endswith(".pdf") and dialog.title_edit.isEnabled()
    dialog.path_edit.setText(str(tmp_path / "report.pdf"))
    with qtbot.waitSignal(w.exported, timeout=120_000):
        dialog.accept()
    assert (tmp_path / "report.pdf").read_bytes()[:4] == b"%PDF"


def test_apply_the_model_to_a_new_file_reports_schema_differences(qtbot, trained_window, small_csv, tmp_path):
    w = trained_window
    new = pd.read_csv(small_csv).head(300).drop(columns=["label"])
    new["EXTRA"] = 1
    new.loc[0, "HKONT"] = "G999"
    path = tmp_path / "next_month.csv"
    new.to_csv(path, index=False)
    with qtbot.waitSignal(w.model_applied, timeout=60_000) as blocker:
        w.apply_model_to(path)
    diff = blocker.args[0]
    assert "EXTRA" in diff.extra
    assert w.loaded.path == str(path) and w.queue.rowCount() == 300
    assert w.scores.shape == (300,)
    assert "EXTRA" in w.error_dialogs[-1].text()
    # a file missing a needed column is refused with a dialog, the review stays
    bad = tmp_path / "bad.csv"
    new.drop(columns=["DMBTR"]).to_csv(bad, index=False)
    w.apply_model_to(bad)
    qtbot.waitUntil(lambda: "Cannot apply" in w.error_dialogs[-1].windowTitle(), timeout=30_000)
    assert "DMBTR" in w.error_dialogs[-1].text()
    assert w.queue.rowCount() == 300


def test_verdict_csv_export_and_import(qtbot, trained_window, tmp_path):
    w = trained_window
    w.review_panel.view.setFocus()
    w.review_panel.select_row(0)
    qtbot.keyClick(w.review_panel.view, Qt.Key.Key_A)
    out = tmp_path / "verdicts.csv"
    assert w.store.export_csv(out) == 1
    record = w.queue.record_at(5)
    out.write_text(f"key,verdict,note\n{w.keys[record]},normal,imported\n")
    w.import_verdicts(out)
    assert w.queue.verdicts[record] == 2 and w.queue.notes[record] == "imported"


def test_menus_exist_and_are_enabled_when_they_can_work(qtbot, window, small_csv):
    titles = [a.text() for a in window.menuBar().actions()]
    assert titles == ["&File", "&Review", "&View", "&Help"]
    assert not window.act_export.isEnabled() and not window.act_retrain.isEnabled()
    open_and_wait(qtbot, window, small_csv)
    assert window.act_save.isEnabled() and not window.act_export.isEnabled()
    train_and_wait(qtbot, window, "iforest", {"n_estimators": 20})
    assert window.act_export.isEnabled() and window.act_retrain.isEnabled() and window.act_apply.isEnabled()
