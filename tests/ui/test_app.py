"""The entry point the CLI's ``gui`` command calls."""

import time

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from ui import app as app_module


def test_run_app_opens_the_sample_and_returns_the_exit_code(qapp, monkeypatch, tmp_path):
    from ui.main_window import MainWindow

    seen = {}
    original_init = MainWindow.__init__

    def init(self, *args, **kwargs):
        kwargs.update(data_dir=tmp_path, warm_up=False,
                      settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
        original_init(self, *args, **kwargs)
        seen["window"] = self

    def exec_until_loaded(self=None):
        # stands in for the event loop: quitting the shared test QApplication would end later tests' loops
        end = time.perf_counter() + 60
        while seen["window"].loaded is None and time.perf_counter() < end:
            QApplication.processEvents()
            time.sleep(0.01)
        seen["window"].close()
        return 0

    monkeypatch.setattr(MainWindow, "__init__", init)
    monkeypatch.setattr(QApplication, "exec", exec_until_loaded)
    assert app_module.run_app(None) == 0
    assert seen["window"].loaded.path.endswith("sample_journal_entries.csv")
    assert seen["window"].queue.rowCount() == 20_000


def test_importing_the_ui_changes_no_process_wide_plot_option_and_start_up_sets_them():
    import subprocess
    import sys

    code = ("import pyqtgraph as pg; before = dict(pg.CONFIG_OPTIONS); "
            "import ui.main_window, ui.plots, ui.panels.compare; assert dict(pg.CONFIG_OPTIONS) == before; "
            "from ui.app import create_application; create_application(['x']); "
            "assert pg.getConfigOption('background') == 'w' and pg.getConfigOption('foreground') == 'k'")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"})
    assert out.returncode == 0, out.stderr
