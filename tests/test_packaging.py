"""Packaging: `pip install .` gives every tool as a console script and py.typed, and leaves the source tree as it was."""

from __future__ import annotations

import os
import site
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("framework", "exchanges", "strategies")
CONSOLE_SCRIPTS = ("tradesync-run", "tradesync-report", "tradesync-audit", "tradesync-replay", "tradesync-sim",
                   "tradesync-dashboard", "tradesync-streamer", "tradesync-status")
MODULES = ("framework.runner", "framework.report", "framework.audit", "framework.dead_letters", "exchanges.simulator")
SCRIPTS = ("run_strategy.py", "trade_sync_report.py", "audit_trades.py", "replay_dead_letters.py")
BUILD_LEFTOVERS = ("build", "dist")

pytestmark = pytest.mark.slow


def _tree(root: Path) -> dict[Path, int]:
    """Every path under the checkout (not .git, caches or runtime output) with its modification time."""
    found: dict[Path, int] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in (".git", "__pycache__", ".venv", "logs", "data")]
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            found[path.relative_to(root)] = path.lstat().st_mtime_ns
    return found


def _is_build_output(path: Path) -> bool:
    return any(part in BUILD_LEFTOVERS or part.endswith((".egg-info", ".whl")) for part in path.parts)


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HYPOTHESIS_STORAGE_DIRECTORY")}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict[Path, int], dict[Path, int]]:
    """`pip install --no-deps .` into a fresh venv; the tree before and after. Dependencies come from this venv."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True, timeout=30).stdout.strip()
    # The project's dependencies from the running environment, after the venv's own site-packages (a path
    # line in a .pth file does not run that directory's .pth files, so an editable install there stays out).
    Path(purelib, "tradesync_test_deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    before = _tree(ROOT)
    result = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                             "--quiet", "--disable-pip-version-check", str(ROOT)],
                            capture_output=True, text=True, timeout=120, cwd=venv)
    assert result.returncode == 0, result.stderr
    return venv, before, _tree(ROOT)


def test_pip_install_leaves_no_build_dir_or_egg_info_in_the_source_tree(installed):
    _, before, after = installed
    new_or_changed = sorted(str(path) for path, mtime in after.items() if before.get(path) != mtime)
    assert [path for path in new_or_changed if _is_build_output(Path(path))] == []
    assert {path.parts[0] for path in after} == {path.parts[0] for path in before}


@pytest.mark.parametrize("script", CONSOLE_SCRIPTS)
def test_installed_console_script_help_names_its_own_program(installed, script, tmp_path):
    venv, _, _ = installed
    result = subprocess.run([str(venv / "bin" / script), "--help"], capture_output=True, text=True, timeout=60,
                            cwd=tmp_path, env=_clean_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith(f"usage: {script} ["), result.stdout


def test_installed_packages_are_the_copies_in_the_venv_each_with_py_typed(installed, tmp_path):
    venv, _, _ = installed
    code = "import importlib, sys; print('\\n'.join(importlib.import_module(p).__file__ for p in sys.argv[1:]))"
    result = subprocess.run([str(venv / "bin" / "python"), "-c", code, *PACKAGES], capture_output=True, text=True,
                            timeout=60, cwd=tmp_path, env=_clean_env())
    assert result.returncode == 0, result.stderr
    for init in map(Path, result.stdout.split()):
        assert init.is_relative_to(venv), init
        assert (init.parent / "py.typed").is_file(), init.parent


def test_installed_package_ships_the_dashboard_page(installed, tmp_path):
    venv, _, _ = installed
    code = "import framework.dashboard, pathlib; print(pathlib.Path(framework.dashboard.__file__).parent / 'static')"
    result = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, timeout=60,
                            cwd=tmp_path, env=_clean_env())
    assert result.returncode == 0, result.stderr
    static = Path(result.stdout.strip())
    assert static.is_relative_to(venv) and {"index.html", "app.js", "style.css"} <= {p.name for p in static.iterdir()}


@pytest.mark.parametrize("module", MODULES)
def test_python_dash_m_module_help_names_python_dash_m(installed, module, tmp_path):
    venv, _, _ = installed
    result = subprocess.run([str(venv / "bin" / "python"), "-m", module, "--help"], capture_output=True, text=True,
                            timeout=60, cwd=tmp_path, env=_clean_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith(f"usage: python -m {module} ["), result.stdout


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_wrapper_help_names_the_script(script, tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / script), "--help"], capture_output=True,
                            text=True, timeout=60, cwd=tmp_path, env=_clean_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith(f"usage: {script} ["), result.stdout


def test_hypothesis_test_run_keeps_its_storage_out_of_the_working_directory(tmp_path):
    workdir, scratch = tmp_path / "work", tmp_path / "tmp"
    workdir.mkdir()
    scratch.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(ROOT / "tests" / "exchanges" / "bybit" / "test_auth.py"), "-q",
         "-p", "no:randomly", "--rootdir", str(ROOT), "-c", str(ROOT / "setup.cfg")],
        capture_output=True, text=True, timeout=90, cwd=workdir, env=_clean_env(TMPDIR=str(scratch)),
    )
    assert result.returncode == 0, result.stdout[-2000:]
    assert sorted(p.name for p in workdir.iterdir()) == []
    assert (scratch / "tradesync-hypothesis").is_dir()
