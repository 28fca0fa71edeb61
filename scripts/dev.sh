#!/usr/bin/env bash
# One-command set-up and run. Creates/reuses .venv at the repository root, installs what is
# missing (torch==2.13.0 only when no torch is installed, so a user's CUDA build is kept), then:
#   scripts/dev.sh gui [CSV]   opens the GUI (on the bundled sample when no file is given)
#   scripts/dev.sh test [ARGS] runs ruff, the import-linter contracts and the whole pytest suite
set -euo pipefail
cd "$(dirname "$0")/.."
action=${1:-gui}
[ $# -gt 0 ] && shift

python_bin=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python_bin" -m venv .venv
venv_python=.venv/bin/python

if ! "$venv_python" -c "import torch" >/dev/null 2>&1; then
    "$venv_python" -m pip install -q --disable-pip-version-check "torch==2.13.0"
fi

extra="[cluster]"  # Dask, for score --cluster (README: "When one machine is not enough")
[ "$action" = "test" ] && extra="[dev,cluster]"
# Re-install only when pyproject.toml changed since the last install of this flavour.
stamp=".venv/.installed-${action}-$(sha1sum pyproject.toml | cut -c1-12)"
if [ ! -f "$stamp" ]; then
    "$venv_python" -m pip install -q --disable-pip-version-check -e ".${extra}"
    touch "$stamp"
fi

case "$action" in
    gui)
        exec "$venv_python" main.py gui "$@"
        ;;
    test)
        "$venv_python" -m ruff check .
        .venv/bin/lint-imports
        QT_QPA_PLATFORM=offscreen exec "$venv_python" -m pytest -q "$@"
        ;;
    *)
        echo "usage: scripts/dev.sh gui [CSV] | test [PYTEST ARGS]" >&2
        exit 2
        ;;
esac
