"""Screenshots of the main screens, taken from the real window offscreen (README images).

Usage: QT_QPA_PLATFORM=offscreen .venv/bin/python -m ui.screenshots [OUT_DIR] [--ecg CSV]
Writes data.png, train.png, review.png, review_next_batch.png, threshold.png and heartbeat.png (a
140-point ECG beat beside its reconstruction) into OUT_DIR (default docs/screenshots), and compare.png,
compare_contamination.png and compare_playback.png (the Compare screen on the ECG file). ``--only compare`` renders just those.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ECG = Path(os.environ.get("ANOMALY_DESK_SHARED", ROOT.parent / "shared")) / "data" / "benchmarks" / \
    "ecg5000_sample.csv"


def _wait(app, condition, timeout_s: float = 900) -> None:
    end = time.perf_counter() + timeout_s
    while not condition():
        if time.perf_counter() > end:
            raise TimeoutError("the window did not get there in time")
        app.processEvents()
        time.sleep(0.01)


def _settle(app, seconds: float = 0.3) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.01)


def main(argv=None) -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", nargs="?", default=str(ROOT / "docs" / "screenshots"))
    ap.add_argument("--ecg", default=str(DEFAULT_ECG))
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--train-rows", type=int, default=10_000)
    ap.add_argument("--only", choices=("compare",), help="render only these screens")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from PySide6.QtCore import QSettings, Qt

    from ui.app import create_application
    from ui.main_window import SAMPLE_CSV, TAB_DATA, TAB_REVIEW, TAB_THRESHOLD, TAB_TRAIN, MainWindow

    app = create_application()
    tmp = Path(tempfile.mkdtemp(prefix="screens_"))
    window = MainWindow(settings=QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat), data_dir=tmp,
                        user="analyst", warm_up=False, ask=lambda title, text: "discard")
    window.resize(1400, 880)
    window.show()

    def shot(name: str) -> None:
        _settle(app)
        window.grab().save(str(out / f"{name}.png"))
        print(f"wrote {out / name}.png")

    if args.only == "compare":
        code = compare_shots(app, window, shot, args.ecg)
        window.close()
        return code

    window.open_file(SAMPLE_CSV)
    _wait(app, lambda: window.loaded is not None)
    window.tabs.setCurrentIndex(TAB_DATA)
    window.data_panel.table.selectRow(7)
    shot("data")

    window.train_panel.set_detector("autoencoder", {"epochs": args.epochs, "hidden_layers": [64, 32]})
    window.train_panel.sample_spin.setValue(args.train_rows)
    window.start_training()
    _wait(app, lambda: window.scores is not None or window.error_dialogs)
    if window.error_dialogs:
        print("training failed:", window.error_dialogs[-1].text())
        return 1
    window.tabs.setCurrentIndex(TAB_TRAIN)
    shot("train")

    window.tabs.setCurrentIndex(TAB_REVIEW)
    panel = window.review_panel
    panel.view.setFocus()
    panel.select_row(0)
    labels = window.labels
    from PySide6.QtTest import QTest

    for _ in range(6):
        record = panel.current_record()
        QTest.keyClick(panel.view, Qt.Key.Key_A if labels is not None and labels[record] else Qt.Key.Key_N)
    window.start_retrain()  # the retrain status (flagged before -> after) and the suggested threshold show
    _wait(app, lambda: window.session.last_retrain is not None or window.error_dialogs)
    panel.select_row(1)
    panel.note_edit.setText("posting key never used with this account")
    panel.select_row(2)
    shot("review")
    window.show_next_batch()  # the review loop's pick after the retrain, with its line above the queue
    shot("review_next_batch")
    panel.show_records(None)

    window.tabs.setCurrentIndex(TAB_THRESHOLD)
    tp = window.threshold_panel
    tp.method_combo.setCurrentIndex(tp.method_combo.findData("percentile"))
    tp.param_spin.setValue(0.5)
    tp.apply_method()
    _wait(app, lambda: tp._curves is not None, 120)
    shot("threshold")

    if Path(args.ecg).is_file():
        window.open_file(args.ecg)
        _wait(app, lambda: window.loaded is not None and window.loaded.path == str(args.ecg))
        window.train_panel.set_detector("autoencoder", {"epochs": 30, "hidden_layers": [32]})
        window.train_panel.sample_spin.setValue(0)
        window.start_training()
        _wait(app, lambda: window.scores is not None or window.error_dialogs)
        window.tabs.setCurrentIndex(TAB_REVIEW)
        panel.select_row(0)
        shot("heartbeat")
        compare_shots(app, window, shot, args.ecg)
    window.close()
    return 0


def compare_shots(app, window, shot, ecg: str) -> int:
    """The Compare screen on the labelled ECG file: metrics and curves, the contamination study, and
    the streaming playback half-way."""
    from ui.main_window import TAB_COMPARE

    if not Path(ecg).is_file():
        print(f"no ECG file at {ecg}: compare screenshots skipped")
        return 1
    # the published split when it is there: train on 200 normal beats, compare on the other 300
    test, normal = Path(ecg).parent / "ecg5000_test.csv", Path(ecg).parent / "ecg5000_train_normal.csv"
    if test.is_file() and normal.is_file():
        ecg = str(test)
    if window.loaded is None or window.loaded.path != str(ecg):
        window.open_file(ecg)
        _wait(app, lambda: window.loaded is not None and window.loaded.path == str(ecg))
    if test.is_file() and normal.is_file():
        window.set_reference(normal)
        _wait(app, lambda: window.reference is not None)
    window.tabs.setCurrentIndex(TAB_COMPARE)
    panel = window.compare_panel
    panel.set_checked(["autoencoder", "pca", "iforest", "ecod", "ocsvm"])
    panel.run()
    _wait(app, lambda: panel.comparison is not None or window.error_dialogs)
    if window.error_dialogs:
        print("comparison failed:", window.error_dialogs[-1].text())
        return 1
    panel.pages.setCurrentIndex(0)
    shot("compare")
    panel.pages.setCurrentIndex(2)
    study = panel.contamination
    study.study_detector.setCurrentText("autoencoder")
    study.run()
    _wait(app, lambda: study.study is not None or window.error_dialogs)
    shot("compare_contamination")
    panel.pages.setCurrentIndex(3)
    playback = panel.playback
    playback.speed_spin.setValue(10)
    playback.play_threshold.setCurrentIndex(playback.play_threshold.findData("best_f1"))
    playback.play()
    half = len(window.loaded.frame) // 2
    _wait(app, lambda: playback.last_step is not None and playback.last_step.seen >= half, 120)
    playback.pause()
    shot("compare_playback")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
