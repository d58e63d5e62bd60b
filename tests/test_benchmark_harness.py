"""The benchmarks' shared module: a benchmark measures the code of the tree it lies in."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_benchmark_imports_the_core_of_its_own_tree_not_the_installed_one(tmp_path):
    # a git worktree of another commit, run with this checkout's environment, whose editable install of the
    # project points here: its records name its commit, so it must measure its own core
    tree = tmp_path / "worktree"
    (tree / "benchmarks").mkdir(parents=True)
    (tree / "core").mkdir()
    shutil.copy(ROOT / "benchmarks" / "harness.py", tree / "benchmarks")
    (tree / "core" / "__init__.py").write_text("WHICH = 'the worktree'\n")
    (tree / "benchmarks" / "probe.py").write_text("import harness\nimport core\n\nprint(core.WHICH)\n")
    run = subprocess.run(
        [sys.executable, str(tree / "benchmarks" / "probe.py")], capture_output=True, text=True, cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "the worktree"
