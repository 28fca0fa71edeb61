"""The entry point the CLI's ``gui`` command calls."""

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication

from ui import app as app_module


def test_run_app_opens_the_sample_and_returns_on_quit(qapp, monkeypatch, tmp_path):
    from ui.main_window import MainWindow

    seen = {}
    original_init = MainWindow.__init__

    def init(self, *args, **kwargs):
        kwargs.update(data_dir=tmp_path, warm_up=False,
                      settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
        original_init(self, *args, **kwargs)
        seen["window"] = self

    monkeypatch.setattr(MainWindow, "__init__", init)

    def quit_when_loaded():
        w = seen.get("window")
        if w is not None and w.loaded is not None:
            w.close()
            QApplication.instance().quit()
        else:
            QTimer.singleShot(50, quit_when_loaded)

    QTimer.singleShot(50, quit_when_loaded)
    assert app_module.run_app(None) == 0
    assert seen["window"].loaded.path.endswith("sample_journal_entries.csv")
    assert seen["window"].queue.rowCount() == 20_000
