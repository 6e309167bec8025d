"""One before/after report: this checkout against an older one, every section in one run.

Runs, one after the other and each alternating the two checkouts round by round:

* ``lbfgs.py``: L-BFGS against scikit-learn (the ``plot_mlp_alpha`` fits, breast
  cancer, digits, the compiled objective above the exact budget), by CPU time;
* ``startup.py``: whole processes against scikit-learn (start-up to the first
  prediction, the gallery scripts with only the import changed, a search's first
  loky tasks), by the wall clock;
* ``ab_checkouts.py``: training speed (adam, sgd, early stopping, L-BFGS,
  partial_fit) and one-row prediction, by CPU time;

and writes their tables, with the machine's BLAS and load, to one Markdown file.
Run by hand, never in CI, on a machine nothing else is using; for a fair BLAS, unset
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE together in that one command::

    git worktree add /tmp/before e618eae
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \\
        python benchmarks/before_after.py /tmp/before --out benchmarks/results/before_after.md
"""

import argparse
import datetime
import os
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent


def _load():
    try:
        return " / ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def _commit(checkout):
    result = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"],
        capture_output=True, text=True,
    )  # fmt: skip
    return result.stdout.strip() or "not a git checkout"


def _section(title, command):
    """Run one benchmark script; its Markdown output under a heading."""
    print(f"== {title}: {' '.join(command)}", file=sys.stderr, flush=True)
    before = _load()
    result = subprocess.run(command, capture_output=True, text=True, cwd=HERE.parent)
    output = result.stdout.strip()
    if result.returncode != 0:
        output += f"\n\n(exit {result.returncode})\n```\n{result.stderr.strip()[-2000:]}\n```"
    return f"## {title}\n\n`{' '.join(command[1:])}`; load {before} -> {_load()}\n\n{output}\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=pathlib.Path, help="the older checkout (A)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=pathlib.Path, help="write the report here too")
    args = parser.parse_args()
    before = str(args.before.resolve())
    after = str(HERE.parent)
    python = sys.executable
    import numpy  # noqa: F401  (loads the BLAS library threadpool_info reports)
    from threadpoolctl import threadpool_info

    blas = [
        (info.get("internal_api"), info.get("version"), info.get("architecture"))
        for info in threadpool_info()
        if info.get("user_api") == "blas"
    ]
    sections = [
        _section(
            "L-BFGS against scikit-learn (CPU time)",
            [
                python,
                "benchmarks/lbfgs.py",
                "--before",
                before,
                "--clock",
                "cpu",
                "--rounds",
                str(args.rounds),
            ],
        ),  # fmt: skip
        _section(
            "Whole processes: start-up, gallery scripts, a search's first tasks",
            [python, "benchmarks/startup.py", "--before", before, "--rounds", str(args.rounds)],
        ),
        _section(
            "Training speed and one-row prediction, before/after (CPU time)",
            [
                python,
                "benchmarks/ab_checkouts.py",
                before,
                after,
                "--clock",
                "cpu",
                "--rounds",
                str(args.rounds),
            ],
        ),  # fmt: skip
    ]
    header = (
        f"# Before/after report, {datetime.date.today().isoformat()}\n\n"
        f"A (before) = {_commit(args.before)} ({before}); B (after) = {_commit(HERE.parent)}; "
        f"BLAS {blas}; Python {sys.version.split()[0]}; {os.cpu_count()} CPUs.\n"
    )
    report = header + "\n" + "\n".join(sections)
    print(report)
    if args.out:
        args.out.write_text(report)


if __name__ == "__main__":
    main()
