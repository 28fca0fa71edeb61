"""The Train screen: settings form, training in a worker, live progress, cancel, failures, closing."""

import time

import numpy as np
import pytest

from tests.ui.conftest import open_and_wait, train_and_wait
from ui.detector_form import DetectorForm, parse_layers
from ui.main_window import TAB_REVIEW
from ui.widgets import PROGRESS_STEPS


def test_settings_form_shows_only_the_chosen_detectors_settings(qtbot, window):
    panel = window.train_panel
    panel.detector_combo.setCurrentText("autoencoder")
    names = set(panel.form.editors)
    assert {"hidden_layers", "activation", "optimizer", "learning_rate", "batch_size", "epochs"} <= names
    assert {"latent_dim", "dropout", "l1", "l2"} <= names  # the autoencoder's own names (engine.detectors.params)
    assert "seed" not in names and "device" not in names
    layers = panel.form.editors["hidden_layers"]
    assert layers.text() in ("", "64-32")  # empty: the detector sizes the layers from the data
    layers.setText("64-32-8")
    panel.form.set_value("epochs", 3)
    assert panel.params()["hidden_layers"] == [64, 32, 8]
    assert panel.params()["epochs"] == 3
    assert "activation" not in panel.params()  # only what the analyst changed
    trim = panel.form.editors["trim"]
    assert trim.text() == "" and "learnt as normal" in trim.toolTip()
    assert "trim" not in panel.params()  # empty: the app chooses (0.2 on an all-numeric file fitted on itself)
    trim.setText("0.1")
    assert panel.params()["trim"] == pytest.approx(0.1)
    score = panel.form.editors["score"]
    assert score.currentText() == "auto" and "squared error" in score.toolTip()  # offered as a choice
    score.setCurrentText("nll")
    assert panel.params()["score"] == "nll"
    aggregate = panel.form.editors["aggregate"]  # offered as a choice, explained
    assert aggregate.currentText() == "auto" and "l4" in aggregate.toolTip()
    aggregate.setCurrentText("sum")
    assert panel.params()["aggregate"] == "sum"
    panel.detector_combo.setCurrentText("iforest")
    assert "hidden_layers" not in panel.form.editors
    assert "n_estimators" in panel.form.editors
    panel.detector_combo.setCurrentText("ecod")
    assert set(panel.form.editors) == {"tails"}  # ECOD's only setting, offered as a choice
    assert panel.form.editors["tails"].currentText() == "both"
    assert panel.detector_combo.itemText(0) == "auto"  # auto is the default choice


def test_layer_lists_and_the_form_round_trip(qtbot):
    assert parse_layers("64-32-8") == [64, 32, 8]
    assert parse_layers("64, 32 ,8") == [64, 32, 8]
    form = DetectorForm()
    qtbot.addWidget(form)
    form.set_detector("autoencoder", {"hidden_layers": [128, 16], "activation": "tanh", "learning_rate": 0.01})
    assert form.values()["hidden_layers"] == [128, 16]
    assert form.values()["activation"] == "tanh"
    assert form.values(only_changed=False)["learning_rate"] == pytest.approx(0.01)


def test_train_iforest_scores_every_record_and_opens_the_queue(qtbot, window, small_csv):
    open_and_wait(qtbot, window, small_csv)
    train_and_wait(qtbot, window, "iforest", {"n_estimators": 50})
    assert window.scores.shape == (1500,)
    assert window.tabs.currentIndex() == TAB_REVIEW
    assert window.train_panel.progress.value() == 1000
    assert window.train_panel.train_button.isEnabled() and not window.train_panel.cancel_button.isEnabled()
    assert window.queue.record_at(0) == int(np.argmax(window.severity)) or \
        window.severity[window.queue.record_at(0)] == window.severity.max()
    assert "Trained iforest" in window.train_panel.status.text()


def test_train_a_small_autoencoder_with_live_loss_curve(qtbot, window, small_csv):
    open_and_wait(qtbot, window, small_csv)
    seen = []
    window.train_panel.set_detector("autoencoder", {"epochs": 3, "hidden_layers": [16], "batch_size": 256})
    window.jobs.slot("train").busy_changed.connect(lambda b: None)
    with qtbot.waitSignal(window.scored, timeout=120_000):
        window.train_panel.train_button.click()
        job = window.jobs.slot("train").job
        job.progressed.connect(seen.append)
    assert window.model.detector == "autoencoder"
    assert any(p.loss_history for p in seen)
    xs, ys = window.train_panel.loss_plot.train.getData()
    assert len(xs) >= 2 and np.all(np.isfinite(ys))
    assert "hidden in turn" in window.train_panel.loss_plot.toolTip()  # what each curve measures
    bar = window.train_panel.progress  # the shared job controls' bar, full when the job is done
    assert bar.objectName() == "trainProgress" and bar.value() == bar.maximum() == PROGRESS_STEPS
    assert "device" in window.train_panel.device_label.text()
    assert window.train_panel.device_label.text() != "device –"
    assert "rows/s" in window.train_panel.speed_label.text()
    assert window.train_panel.eta_label.isHidden()  # the job is over: no ETA left behind


def start_a_long_training(qtbot, window):
    """An autoencoder set for 2,000 epochs, started and past its first progress report; its job."""
    window.train_panel.set_detector("autoencoder", {"epochs": 2000, "hidden_layers": [16], "batch_size": 64,
                                                    "early_stopping": 0})
    window.train_panel.train_button.click()
    job = window.jobs.slot("train").job
    qtbot.waitUntil(lambda: window.train_panel.progress.value() > 0, timeout=60_000)
    return job


def test_cancel_stops_training_within_a_second(qtbot, window, small_csv):
    open_and_wait(qtbot, window, small_csv)
    job = start_a_long_training(qtbot, window)
    assert window.train_panel.cancel_button.isEnabled()
    t0 = time.perf_counter()
    with qtbot.waitSignal(job.finished, timeout=5_000):
        window.train_panel.cancel_button.click()
    assert time.perf_counter() - t0 < 1.5
    assert window.model is None  # nothing half-trained is kept
    assert "cancelled" in window.train_panel.status.text()
    assert window.train_panel.train_button.isEnabled()
    assert window.error_dialogs == []


def test_no_eta_after_a_cancel(qtbot, window, small_csv):
    open_and_wait(qtbot, window, small_csv)
    job = start_a_long_training(qtbot, window)
    eta = window.train_panel.eta_label
    qtbot.waitUntil(lambda: not eta.isHidden() and eta.text().startswith("ETA"), timeout=10_000)
    with qtbot.waitSignal(job.finished, timeout=5_000):
        window.train_panel.cancel_button.click()
    qtbot.wait(50)  # any progress report queued before the cancel is delivered by now
    assert eta.isHidden() and eta.text() == ""
    assert "cancelled" in window.train_panel.status.text()


def test_the_window_stays_responsive_while_training(qtbot, window, small_csv):
    open_and_wait(qtbot, window, small_csv)
    window.train_panel.set_detector("autoencoder", {"epochs": 2000, "hidden_layers": [16], "batch_size": 64,
                                                    "early_stopping": 0})
    window.train_panel.train_button.click()
    qtbot.waitUntil(lambda: window.train_panel.progress.value() > 0, timeout=60_000)
    # the queue still sorts and filters and typing works while the model trains
    window.review_panel.sort(window.queue.column_index("DMBTR"))
    qtbot.keyClicks(window.review_panel.search_edit, "K01")
    window.review_panel.apply_filters()
    assert 0 < window.queue.rowCount() < 1500
    assert window.jobs.slot("train").busy
    window.cancel_training()
    qtbot.waitUntil(lambda: not window.jobs.slot("train").busy, timeout=5_000)


def test_an_exception_in_the_worker_becomes_a_dialog_and_the_app_stays_usable(qtbot, window, small_csv,
                                                                              monkeypatch):
    open_and_wait(qtbot, window, small_csv)
    from engine.pipeline import AnomalyModel

    def boom(self, *args, **kwargs):
        raise RuntimeError("simulated failure inside fit")

    monkeypatch.setattr(AnomalyModel, "fit", boom)
    window.train_panel.set_detector("iforest")
    window.train_panel.train_button.click()
    qtbot.waitUntil(lambda: len(window.error_dialogs) == 1, timeout=20_000)
    assert "simulated failure inside fit" in window.error_dialogs[0].text()
    assert "RuntimeError" in window.error_dialogs[0].detailedText()  # traceback under Show Details
    assert window.train_panel.train_button.isEnabled()
    monkeypatch.undo()
    train_and_wait(qtbot, window, "iforest", {"n_estimators": 20})
    assert window.scores is not None


def test_an_engine_error_is_shown_as_written(qtbot, window, small_csv):
    open_and_wait(qtbot, window, small_csv)
    for name in window.schema.feature_columns:
        window.data_panel.set_role(name, __import__("engine.schema").schema.Role.IGNORED)
    assert window.schema.feature_columns == []
    window.train_panel.set_detector("iforest")
    window.train_panel.train_button.click()
    qtbot.waitUntil(lambda: len(window.error_dialogs) == 1, timeout=20_000)
    assert "no usable feature column" in window.error_dialogs[0].text()
    assert not window.error_dialogs[0].detailedText()


def test_closing_the_window_during_training_stops_the_worker(qtbot, make_window, small_csv):
    window = make_window()
    open_and_wait(qtbot, window, small_csv)
    job = start_a_long_training(qtbot, window)
    t0 = time.perf_counter()
    window.close()
    assert time.perf_counter() - t0 < 3.0
    assert job.is_done and job.is_cancelled
    assert window.jobs.pool.activeThreadCount() == 0
