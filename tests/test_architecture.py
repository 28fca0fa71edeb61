"""Architecture rules that import-linter cannot express."""

import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_ui_and_engine_data_layer_do_not_import_torch_at_module_level():
    code = ("import sys, importlib, pkgutil, ui, engine.io, engine.schema, cli\n"
            "for m in pkgutil.walk_packages(ui.__path__, 'ui.'): importlib.import_module(m.name)\n"
            "bad = [m for m in ('torch',) if m in sys.modules]\n"
            "print(','.join(bad)); sys.exit(1 if bad else 0)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True,
                            env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, f"torch imported at module level: {result.stdout} {result.stderr}"
