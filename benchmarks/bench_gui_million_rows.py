"""The real window on a 1,000,000-row ledger, offscreen.

Generates the ledger with ../shared/tools/make_journal_entries.py into a temporary folder, opens it in
MainWindow and prints:
- load time (file chosen -> queue filled), and how long the GUI thread was busy taking the result;
- time to sort the queue by score (and by a text column), to filter (flagged only, by column value,
  by text);
- the longest event-loop stall while a model trains: a 5 ms QTimer measures its own lateness;
- the peer: QSortFilterProxyModel sorting the same queue at 20,000 rows (FIELD-NOTES: 5.4 s), measured
  here in the same run, against this model's argsort at 20,000 and 1,000,000 rows.

Targets (issue 5): stalls under 100 ms, sort under 0.5 s.

Usage: .venv/bin/python benchmarks/bench_gui_million_rows.py [--rows 1000000] [--detector autoencoder]
       [--train-rows 100000] [--epochs 2] [--csv EXISTING.csv]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
GENERATOR = Path(os.environ.get("ANOMALY_DESK_SHARED", ROOT.parent / "shared")) / "tools" / "make_journal_entries.py"


def wait_for(app, condition, timeout_s: float) -> bool:
    end = time.perf_counter() + timeout_s
    while not condition():
        if time.perf_counter() > end:
            return False
        app.processEvents()
        time.sleep(0.002)
    return True


class StallMeter:
    """A QTimer that measures how late it fires: the longest wait the event loop imposed."""

    def __init__(self, interval_ms: int = 5):
        from PySide6.QtCore import QTimer

        self.interval = interval_ms / 1000.0
        self.samples: list[tuple[float, float]] = []  # (time, lateness)
        self.timer = QTimer()
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)
        self.last = None

    def start(self) -> None:
        self.samples.clear()
        self.last = time.perf_counter()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.samples.append((now, max(0.0, now - self.last - self.interval)))
        self.last = now

    def worst(self, until: float | None = None) -> float:
        values = [late for t, late in self.samples if until is None or t <= until]
        return max(values, default=0.0)

    def percentile(self, q: float, until: float | None = None) -> float:
        import numpy as np

        values = [late for t, late in self.samples if until is None or t <= until]
        return float(np.percentile(values, q)) if values else 0.0


def proxy_sort_seconds(window, rows: int) -> float:
    """The peer: QSortFilterProxyModel over the same QueueModel class, sorting by score."""
    from PySide6.QtCore import QSortFilterProxyModel, Qt

    from ui.queue_model import SCORE, QueueModel

    model = QueueModel()
    model.set_frame(window.loaded.frame.head(rows))
    model.set_scores(window.scores[:rows], window.severity[:rows])
    model.sort(0, Qt.SortOrder.AscendingOrder)
    proxy = QSortFilterProxyModel()
    proxy.setSourceModel(model)
    t0 = time.perf_counter()
    proxy.sort(SCORE, Qt.SortOrder.DescendingOrder)
    seconds = time.perf_counter() - t0
    assert proxy.rowCount() == rows
    return seconds


def own_sort_seconds(window, rows: int) -> float:
    from PySide6.QtCore import Qt

    from ui.queue_model import SCORE, QueueModel

    model = QueueModel()
    model.set_frame(window.loaded.frame.head(rows))
    model.set_scores(window.scores[:rows], window.severity[:rows])
    t0 = time.perf_counter()
    model.sort(SCORE, Qt.SortOrder.DescendingOrder)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--csv", help="use this file instead of generating a ledger")
    ap.add_argument("--detector", default="iforest")
    ap.add_argument("--train-rows", type=int, default=100_000, help="rows the model learns from (0 = all)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--peer-rows", type=int, default=20_000)
    args = ap.parse_args()

    from PySide6.QtCore import QSettings, Qt
    from PySide6.QtWidgets import QApplication

    import ui  # noqa: F401
    from ui.main_window import MainWindow
    from ui.queue_model import SCORE

    tmp = Path(tempfile.mkdtemp(prefix="bench_gui_"))
    if args.csv:
        csv = Path(args.csv)
    else:
        csv = tmp / "ledger.csv"
        t0 = time.perf_counter()
        subprocess.run([sys.executable, str(GENERATOR), "--rows", str(args.rows), "--out", str(csv)], check=True,
                       stdout=subprocess.DEVNULL)
        print(f"generated {args.rows:,}-row ledger in {time.perf_counter() - t0:.1f} s ({csv.stat().st_size / 1e6:.0f} MB)")

    app = QApplication.instance() or QApplication(sys.argv)
    window = MainWindow(settings=QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat),
                        data_dir=tmp / "appdata", user="bench", ask=lambda title, text: "discard")
    window.resize(1400, 880)
    window.show()
    meter = StallMeter()

    # -- load -----------------------------------------------------------------------------------
    meter.start()
    t0 = time.perf_counter()
    handled = {}
    original = window.session.adopt

    def timed_adopt(outcome):
        t = time.perf_counter()
        original(outcome)
        handled["gui_s"] = time.perf_counter() - t

    window.session.adopt = timed_adopt
    window.open_file(csv)
    assert wait_for(app, lambda: window.loaded is not None, 600), "load did not finish"
    app.processEvents()
    load_s = time.perf_counter() - t0
    meter.stop()
    rows = len(window.loaded.frame)
    print(f"load: {load_s:.2f} s for {rows:,} rows (GUI thread busy {handled['gui_s']:.2f} s taking the result; "
          f"worst stall while reading {meter.worst() * 1000:.0f} ms)")

    # -- the window imports torch/sklearn in the background at start-up: measured on its own -----
    meter.start()
    t0 = time.perf_counter()
    assert wait_for(app, lambda: not window.jobs.slot("warm-up").busy, 600)
    meter.stop()
    print(f"start-up warm-up (torch, sklearn imported in a worker): finished {time.perf_counter() - t0:.1f} s "
          f"after the load; longest stall while it ran: {meter.worst() * 1000:.0f} ms")

    # -- the peer for stalls: the same timer with nothing running (what the machine's load alone costs)
    meter.start()
    t0 = time.perf_counter()
    wait_for(app, lambda: time.perf_counter() - t0 > 5.0, 10)
    meter.stop()
    idle_worst, idle_p99 = meter.worst(), meter.percentile(99)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"idle event loop, nothing running: longest stall {idle_worst * 1000:.0f} ms, 99th percentile "
          f"{idle_p99 * 1000:.1f} ms (machine load average {load:.1f} on {os.cpu_count()} cores)")

    # -- train while measuring the event loop ----------------------------------------------------
    params = {"epochs": args.epochs} if args.detector in ("autoencoder", "vae") else {}
    window.train_panel.set_detector(args.detector, params)
    window.train_panel.sample_spin.setValue(args.train_rows)
    marks = {}
    original_trained = window.actions_._trained

    def timed_trained(outcome):
        marks["result"] = time.perf_counter()
        original_trained(outcome)
        marks["shown"] = time.perf_counter()

    window.actions_._trained = timed_trained
    meter.start()
    t0 = time.perf_counter()
    window.start_training()
    messages: list[tuple[float, str]] = [(t0, "start")]
    window.jobs.slot("train").job.progressed.connect(lambda p: messages.append((time.perf_counter(), p.message)))
    # while it trains, the analyst keeps working: sort and filter the unscored queue
    app.processEvents()
    ok = wait_for(app, lambda: "shown" in marks or window.error_dialogs, 3600)
    meter.stop()
    if not ok or window.error_dialogs:
        print("training failed:", [d.text() + d.detailedText() for d in window.error_dialogs])
        return 1
    train_s = marks["result"] - t0
    stall = meter.worst(until=marks["result"])
    p99 = meter.percentile(99, until=marks["result"])
    print(f"train + score ({args.detector}, {args.train_rows or rows:,} training rows, {rows:,} scored): "
          f"{train_s:.1f} s on {window.model.device_}")
    print(f"longest event-loop stall while training: {stall * 1000:.0f} ms (99th percentile {p99 * 1000:.1f} ms, "
          f"{len([s for s in meter.samples if s[0] <= marks['result']]):,} timer ticks) -> target < 100 ms: "
          f"{'PASS' if stall < 0.1 else 'FAIL'}")
    worst = sorted((late, t) for t, late in meter.samples if t <= marks["result"])[-3:]
    for late, t in reversed(worst):
        before = [m for tm, m in messages if tm <= t - late]
        print(f"  stall of {late * 1000:.0f} ms at {t - t0:.1f} s, during: {before[-1] if before else 'start'}")
    print(f"showing the scored result (queue, histogram, error plot, threshold) took "
          f"{(marks['shown'] - marks['result']) * 1000:.0f} ms in the GUI thread (once, after training)")

    # -- sort ------------------------------------------------------------------------------------
    panel = window.review_panel
    timings = {}
    for name, column, order in (("sort by score (descending)", SCORE, Qt.SortOrder.DescendingOrder),
                                ("sort by score (ascending)", SCORE, Qt.SortOrder.AscendingOrder),
                                ("sort by text column HKONT", window.queue.column_index("HKONT"),
                                 Qt.SortOrder.AscendingOrder),
                                ("sort by HKONT again (cached codes)", window.queue.column_index("HKONT"),
                                 Qt.SortOrder.DescendingOrder)):
        t0 = time.perf_counter()
        panel.sort(column, order)
        app.processEvents()  # the view repaints
        timings[name] = time.perf_counter() - t0
    import numpy as np

    t0 = time.perf_counter()
    np.argsort(window.scores, kind="stable")
    raw = time.perf_counter() - t0
    print(f"(reference on this machine now: numpy argsort of {rows:,} scores alone takes {raw * 1000:.0f} ms; "
          f"the training worker computes it with the scores, so sorting by score is a lookup)")
    for name, s in timings.items():
        print(f"{name}: {s * 1000:.0f} ms" + (f" -> target < 500 ms: {'PASS' if s < 0.5 else 'FAIL'}"
                                             if "score" in name else ""))

    # -- filter ----------------------------------------------------------------------------------
    def timed(name, action):
        t0 = time.perf_counter()
        action()
        app.processEvents()
        print(f"{name}: {(time.perf_counter() - t0) * 1000:.0f} ms ({window.queue.rowCount():,} rows shown)")

    panel.sort(SCORE, Qt.SortOrder.DescendingOrder)
    timed("filter: flagged only", lambda: panel.flagged_check.setChecked(True))
    timed("filter: clear", panel.clear_filters)
    panel.column_combo.setCurrentText("BUKRS")
    panel.value_edit.setText("B002")
    timed("filter: BUKRS = B002", panel.apply_filters)
    panel.clear_filters()
    panel.search_edit.setText("K015")
    timed("filter: text search 'K015' in every text column", panel.apply_filters)
    panel.clear_filters()
    panel.unreviewed_check.setChecked(False)
    timed("filter: not reviewed", lambda: panel.unreviewed_check.setChecked(True))
    panel.clear_filters()

    # -- verdicts at speed -----------------------------------------------------------------------
    from PySide6.QtTest import QTest

    panel.view.setFocus()
    panel.select_row(0)
    t0 = time.perf_counter()
    for i in range(200):
        QTest.keyClick(panel.view, Qt.Key.Key_N if i % 4 else Qt.Key.Key_A)
    app.processEvents()
    per = (time.perf_counter() - t0) / 200
    print(f"verdict by keyboard (saved to SQLite, queue and plots updated): {per * 1000:.1f} ms each")

    # -- the peer --------------------------------------------------------------------------------
    peer = proxy_sort_seconds(window, args.peer_rows)
    own_small = own_sort_seconds(window, args.peer_rows)
    own_large = timings["sort by score (descending)"]
    print(f"peer QSortFilterProxyModel, sort by score at {args.peer_rows:,} rows: {peer:.2f} s; this model at "
          f"{args.peer_rows:,} rows: {own_small * 1000:.1f} ms ({peer / max(own_small, 1e-9):,.0f}x faster); "
          f"at {rows:,} rows: {own_large * 1000:.0f} ms ({rows // args.peer_rows}x the rows in "
          f"{own_large / max(peer, 1e-9):.2f}x the peer's time)")

    window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
