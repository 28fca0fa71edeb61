"""GUI test fixtures: a real MainWindow per test (offscreen), its settings and verdicts in tmp_path,
and a check that no job, thread or timer outlives the test."""

from __future__ import annotations

import gc

import pandas as pd
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QSettings, QThreadPool, QTimer  # noqa: E402

import ui  # noqa: E402,F401

SMALL_ROWS = 1500


@pytest.fixture(scope="session")
def small_csv(tmp_path_factory, sample_csv):
    """A slice of the bundled ledger with every labelled anomaly kept: small enough to train in a blink."""
    frame = pd.read_csv(sample_csv)
    anomalies = frame[frame["label"] != "regular"]
    regular = frame[frame["label"] == "regular"].head(SMALL_ROWS - len(anomalies))
    small = pd.concat([regular, anomalies]).sort_index()
    path = tmp_path_factory.mktemp("data") / "ledger_small.csv"
    small.to_csv(path, index=False)
    return path


@pytest.fixture
def settings(tmp_path):
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def make_window(qtbot, tmp_path, settings):
    from ui.main_window import MainWindow

    windows = []

    def make(**kwargs):
        kwargs.setdefault("settings", settings)
        kwargs.setdefault("data_dir", tmp_path / "appdata")
        kwargs.setdefault("user", "tester")
        kwargs.setdefault("warm_up", False)
        kwargs.setdefault("ask", lambda title, text: "discard")  # unsaved work: tests that ask pass their own
        w = MainWindow(**kwargs)
        qtbot.addWidget(w)
        w.show()
        windows.append(w)
        return w

    yield make
    for w in windows:
        w.close()
        # nothing the window started may outlive it
        assert w.jobs.pool.activeThreadCount() == 0, "a worker thread is still running after close"
        assert all(not slot.busy for slot in w.jobs.slots.values())
        for timer in w.findChildren(QTimer):
            assert not timer.isActive(), f"timer {timer.objectName() or timer} still active after close"
    assert QThreadPool.globalInstance().activeThreadCount() == 0
    # Free this test's Qt wrappers now, while no worker runs, rather than in a later test's event loop.
    windows.clear()
    gc.collect()


@pytest.fixture
def window(make_window):
    return make_window()


def open_and_wait(qtbot, window, path, timeout=30_000):
    with qtbot.waitSignal(window.file_loaded, timeout=timeout):
        window.open_file(path)
    return window


def set_known_good_reference(qtbot, window, csv, folder):
    """Writes the labelled ``csv``'s regular rows to ``folder/known_good.csv`` and sets it as the window's
    reference file, waiting until it is loaded. Returns its path."""
    import pandas as pd

    ref = folder / "known_good.csv"
    frame = pd.read_csv(csv)
    frame[frame["label"] == "regular"].to_csv(ref, index=False)
    window.set_reference(ref)
    qtbot.waitUntil(lambda: window.reference is not None, timeout=20_000)
    return ref


def train_and_wait(qtbot, window, detector="iforest", params=None, timeout=120_000):
    window.train_panel.set_detector(detector, params or {})
    with qtbot.waitSignal(window.scored, timeout=timeout):
        window.train_panel.train_button.click()
    return window


@pytest.fixture
def trained_window(qtbot, window, small_csv):
    open_and_wait(qtbot, window, small_csv)
    train_and_wait(qtbot, window, "iforest", {"n_estimators": 50})
    return window
