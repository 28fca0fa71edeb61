"""``score`` warns on stderr when a file does not look like the data the model learnt (engine.drift),
naming the columns that moved and suggesting training on the file; the same company's file is quiet."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO_ROOT
from tests.engine.test_drift import ledgers  # noqa: F401 - the fixture: seed 7 model, seed 7 and seed 5 files


def test_score_warns_on_stderr(ledgers):  # noqa: F811 - the imported fixture
    root, model, same_company, other_company = ledgers
    bundle = model.save(root / "model7")
    for path, warns in ((other_company, True), (same_company, False)):
        result = subprocess.run([sys.executable, "main.py", "score", str(path), "--model", str(bundle), "--out",
                                 str(root / f"scores_{path.stem}.csv"), "--quiet"], cwd=REPO_ROOT,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        assert ("warning: " in result.stderr) is warns, result.stderr
        if warns:
            assert "columns that moved:" in result.stderr and "HKONT" in result.stderr
            assert f"python main.py train {path}" in result.stderr
