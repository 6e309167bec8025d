"""Whole processes, fastbp against scikit-learn: start-up to the first prediction, and
a few of scikit-learn's MLP gallery examples with only the import changed.

Every figure is a whole process timed from outside (from its start to its exit), the
contenders taking turns round after round (A B A B ...), so that a drift in the
machine's speed reaches both; the table gives each contender's median and range
over the rounds and the median of the per-round ratios. Warm caches: one uncounted
round first compiles fastbp's kernels (if needed) and writes Python's bytecode (the
runs keep it: ``PYTHONDONTWRITEBYTECODE`` is removed from their environment, as an
installed package has its bytecode). The start-up section also shows each process's
own profile of its steps (the medians of what ``gallery/first_prediction.py``
prints).

``--before PATH`` adds a third contender: fastbp imported from another checkout (the
code before a change), for a before/after table in the same run. Run by hand, never
in CI; for a fair BLAS, unset OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE together in that
one command::

    git worktree add /tmp/before main
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \\
        python benchmarks/startup.py --before /tmp/before --rounds 7
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
GALLERY = HERE / "gallery"
CHECKOUT = HERE.parent

#: script -> what it does (the gallery section's rows)
SCRIPTS = {
    "first_prediction.py": "fresh process to its first prediction (iris, 20 epochs)",
    "search_first_tasks.py": "GridSearchCV n_jobs=2, one small fit per worker",
    "mlp_alpha.py": "plot_mlp_alpha (L-BFGS, 3 datasets x 5 alphas, mesh predictions)",
    "mlp_training_curves.py": "plot_mlp_training_curves (7 solver settings x 4 datasets)",
    "grid_search.py": "GridSearchCV n_jobs=2, scaled pipeline, breast cancer 6x3",
}


def log(message):
    print(message, file=sys.stderr, flush=True)


def contenders(before):
    """label -> (library argument, checkout on PYTHONPATH)."""
    found = {"scikit-learn": ("sklearn", str(CHECKOUT)), "fastbp": ("fastbp", str(CHECKOUT))}
    if before:
        found["fastbp before"] = ("fastbp", str(pathlib.Path(before).resolve()))
    return found


def run_once(script, library, checkout):
    """(wall seconds of the whole process, its last stdout line)."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = os.pathsep.join([checkout, str(GALLERY)])
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, str(GALLERY / script), library],
        capture_output=True,
        text=True,
        env=env,
        cwd=GALLERY,
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{script} {library} ({checkout}) failed:\n{result.stderr}")
    lines = result.stdout.strip().splitlines()
    return seconds, lines[-1] if lines else ""


def measure(scripts, who, rounds):
    """{script: {label: [seconds per round]}}, and the first-prediction profiles."""
    times = {script: {label: [] for label in who} for script in scripts}
    profiles = {label: [] for label in who}
    for script in scripts:
        for library, checkout in who.values():
            run_once(script, library, checkout)  # warm-up: kernels, bytecode, disk cache
        for index in range(rounds):
            for label, (library, checkout) in who.items():
                seconds, last = run_once(script, library, checkout)
                times[script][label].append(seconds)
                if script == "first_prediction.py":
                    profiles[label].append(json.loads(last))
            log(f"  {script} round {index + 1}/{rounds}")
    return times, profiles


def spread(values, scale=1.0, digits=2):
    values = [value * scale for value in values]
    return (
        f"{statistics.median(values):.{digits}f} "
        f"({min(values):.{digits}f}–{max(values):.{digits}f})"
    )


def ratio(numerators, denominators):
    """The median of the per-round ratios (pairing keeps a drift out of them)."""
    return statistics.median(a / b for a, b in zip(numerators, denominators))


def blas_description():
    import numpy  # noqa: F401  - loads the BLAS that threadpoolctl then sees
    from threadpoolctl import threadpool_info

    return ", ".join(
        sorted(
            {
                f"{info['internal_api']} {info.get('version')} "
                f"({info.get('architecture')} kernel, {info['num_threads']} threads)"
                for info in threadpool_info()
                if info["user_api"] == "blas"
            }
        )
    )


def report(times, profiles, who, rounds, loads):
    labels = list(who)
    fastbp_labels = [label for label in labels if label != "scikit-learn"]
    lines = [
        "# Whole-process benchmarks: start-up and gallery scripts",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by "
        f"`benchmarks/startup.py`, {rounds} rounds, contenders interleaved; medians "
        "(min–max) in seconds; ratios are medians of the per-round ratios (below 1: "
        "fastbp's process is shorter).",
        "",
        f"* Load (uptime) before: {loads[0]}; after: {loads[1]}",
        f"* CPUs: {os.cpu_count()}; BLAS (threadpoolctl): {blas_description()}",
        f"* OPENBLAS_CORETYPE: {os.environ.get('OPENBLAS_CORETYPE', 'unset')}, "
        f"OPENBLAS_L2_SIZE: {os.environ.get('OPENBLAS_L2_SIZE', 'unset')}",
        "",
        "## Whole processes",
        "",
        "| script | " + " | ".join(labels) + " | "
        + " | ".join(f"{label} / scikit-learn" for label in fastbp_labels) + " |",
        "|---" * (1 + len(labels) + len(fastbp_labels)) + "|",
    ]  # fmt: skip
    for script, by_label in times.items():
        cells = [spread(by_label[label]) for label in labels]
        cells += [
            f"{ratio(by_label[label], by_label['scikit-learn']):.2f}" for label in fastbp_labels
        ]
        lines.append(f"| {SCRIPTS[script]} | " + " | ".join(cells) + " |")
    if "fastbp before" in who:
        lines += ["", "fastbp / fastbp before, per script:"]
        for script, by_label in times.items():
            lines.append(f"* {script}: {ratio(by_label['fastbp'], by_label['fastbp before']):.2f}")
    if any(profiles.values()):
        steps = list(next(iter(profiles.values()))[0])
        lines += [
            "",
            "## Start-up profile (inside the first-prediction process, ms)",
            "",
            "| step | " + " | ".join(labels) + " |",
            "|---" * (1 + len(labels)) + "|",
        ]
        for step in steps + ["total"]:
            cells = []
            for label in labels:
                values = [
                    sum(profile.values()) if step == "total" else profile[step]
                    for profile in profiles[label]
                ]
                cells.append(spread(values, 1000, 0))
            lines.append(f"| {step} | " + " | ".join(cells) + " |")
        lines += [
            "",
            "The process's own start (the interpreter, before its first line) is the "
            "difference between the whole-process time above and this total.",
        ]
    return "\n".join(lines) + "\n"


def uptime():
    try:
        with open("/proc/loadavg") as loadavg:
            return " ".join(loadavg.read().split()[:3])
    except OSError:
        return "unknown"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--before", help="a checkout of fastbp to compare with")
    parser.add_argument("--scripts", nargs="+", default=list(SCRIPTS), choices=list(SCRIPTS))
    parser.add_argument("--out", type=pathlib.Path, help="also write the report here")
    args = parser.parse_args()
    who = contenders(args.before)
    loads = [uptime()]
    times, profiles = measure(args.scripts, who, args.rounds)
    loads.append(uptime())
    text = report(times, profiles, who, args.rounds, loads)
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
