"""Run time: the wall minutes of whole training runs, each ``ddpm-tui train`` as a learner runs it, in turn.

    .venv/bin/python benchmarks/run_time.py                      # Ho et al.'s decoder and the lean one, 20
                                                                 # epochs each, then the default
    .venv/bin/python benchmarks/run_time.py --runs "--decoder full --epochs 5" "--epochs 5" --repeats 3
    .venv/bin/python benchmarks/run_time.py --runs "--epochs 20" --baseline 1be599a --repeats 2

Each ``--runs`` entry is one run's extra flags (empty: the default recipe), started from a fresh output
folder, start-up, per-epoch previews and the final files included. The runs go one after another, the
whole list ``--repeats`` times, so slow drifts of the machine's speed reach every entry alike; run it on an
otherwise idle machine. Its figures are wall times, and their ratios hold only within one run of this
script. One record per run goes to ``docs/records/decoder/run_time.jsonl`` with the run's full config;
quality is measured on separate seeds (docs/decoder.md).

``--baseline COMMIT`` runs every entry twice in turn: first with the code of COMMIT (exported by ``git archive``
into a temporary folder and run from there, with this environment's packages), then with the work tree's. Its
records go to ``docs/records/speed/run_time_baseline.jsonl``, each saying which code ran. ``--keep DIR`` keeps
the runs' folders in DIR (named in each record) so their samples can be scored afterwards, as in
``benchmarks/fashion_recipe.py --runs DIR/*``; without it they are deleted.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import harness  # benchmarks/ is on the path when a script in it runs
from headline import command, final_loss

RESULTS = harness.RECORDS / "decoder" / "run_time.jsonl"
BASELINE_RESULTS = harness.RECORDS / "speed" / "run_time_baseline.jsonl"
RUNS = ("--decoder full --epochs 20", "--epochs 20", "")


def timed_run(flags: str, run_dir: Path, code: Path | None = None) -> dict[str, Any]:
    """Train with ``flags`` into ``run_dir`` (with the code exported to ``code``, or the work tree's); the record
    of its wall minutes, minutes per epoch and last epoch's loss."""
    seconds = command("train", *shlex.split(flags), "--output_dir", str(run_dir), cwd=code)
    config = json.loads((run_dir / "config.json").read_text())
    return {
        "part": "run_time",
        "flags": flags,
        "config": config,
        "figures": {
            "train_minutes": round(seconds / 60, 2),
            "minutes_per_epoch": round(seconds / 60 / config["epochs"], 3),
            "final_loss": final_loss(run_dir),
        },
        "wall_s": round(seconds, 1),
    }


def export(commit: str, folder: Path) -> Path:
    """The tracked files of ``commit`` in ``folder``, where ``python -m ddpm_tui`` run from it imports them."""
    folder.mkdir()
    archive = subprocess.run(["git", "archive", commit], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def main() -> None:
    parser = harness.parser(__doc__, RESULTS)
    parser.add_argument("--runs", nargs="+", default=list(RUNS), help="each run's train flags, quoted")
    parser.add_argument("--repeats", type=int, default=1, help="times to run the whole list, in turn")
    parser.add_argument("--baseline", help="a commit whose code runs each entry too, just before the work tree's")
    parser.add_argument("--keep", type=Path, help="keep the runs' folders in this folder")
    args = parser.parse_args()
    env = harness.environment(harness.setup(args))
    results = BASELINE_RESULTS if args.baseline and args.results == RESULTS else args.results
    with tempfile.TemporaryDirectory(prefix="run-time-") as folder:
        codes = {"work tree": None}
        if args.baseline:
            codes = {args.baseline: export(args.baseline, Path(folder) / "baseline"), **codes}
        runs = args.keep.resolve() if args.keep else Path(folder)  # absolute: the baseline runs from its own folder
        for repeat in range(args.repeats):
            for index, flags in enumerate(args.runs):
                for name, code in codes.items():
                    run_dir = runs / f"run{repeat}_{index}_{'baseline' if code else 'worktree'}"
                    row = timed_run(flags, run_dir, code)
                    kept = {"run_dir": str(run_dir)} if args.keep else {}
                    harness.record(results, {**row, "repeat": repeat, "code": name, **kept}, env)


if __name__ == "__main__":
    main()
