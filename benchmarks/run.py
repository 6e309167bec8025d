"""The benchmark suite: every case, both dtypes, 1 and 2 threads, plus cold start,
prediction latency and peak memory; writes a Markdown report and a chart.

Run by hand, never in CI (timings on a shared machine are noisy; compare only
within one run). For a fair BLAS, unset OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE
together in that one command; the report records the BLAS kernel in use::

    pip install -e ".[bench]" torch==2.13.0
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/run.py

Options: ``--cases tiny digits``, ``--searches breast_cancer``, ``--threads 1``,
``--repeats 3``, ``--lbfgs-rounds 3`` (0: no L-BFGS section; ``benchmarks/lbfgs.py``
also compares two checkouts), ``--quick`` (fewer repeats, no memory or cold-start runs),
``--out DIR``, ``--chart-only`` (measure nothing, redraw the chart from the report in
``--out``).
"""

import argparse
import datetime
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits

from fastbp import BackpropClassifier
from fastbp._search_timing import SEARCHES, format_search_table, run_search
from fastbp.bench import CASES, format_table, gemm_rate, machine_description, run_case

HERE = pathlib.Path(__file__).resolve().parent


def log(message):
    print(message, file=sys.stderr, flush=True)


def _run_python(code, env=None):
    """Run code in a fresh interpreter and return its last stdout line as JSON."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


FIRST_FIT = """
    import json, time, warnings
    start = time.perf_counter()
    import numpy as np
    from fastbp import BackpropClassifier
    imported = time.perf_counter()
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype("{dtype}")
    warnings.simplefilter("ignore")
    t = time.perf_counter()
    clf = BackpropClassifier(max_iter=5, random_state=0).fit(X, y)
    first = time.perf_counter() - t
    t = time.perf_counter()
    clf.predict(X)
    first_predict = time.perf_counter() - t
    t = time.perf_counter()
    BackpropClassifier(max_iter=5, random_state=0).fit(X, y)
    later = time.perf_counter() - t
    print(json.dumps(dict(import_s=imported - start, first_fit_s=first,
                          first_predict_s=first_predict, later_fit_s=later)))
"""

SKLEARN_IMPORT = """
    import json, time
    start = time.perf_counter()
    import numpy as np
    from sklearn.neural_network import MLPClassifier
    print(json.dumps(dict(import_s=time.perf_counter() - start)))
"""


def cold_start(dtype):
    """First fit (and first predict) in a fresh process: with an empty numba cache,
    then a warm one."""
    with tempfile.TemporaryDirectory() as cache:
        env = {"NUMBA_CACHE_DIR": cache}
        cold = _run_python(FIRST_FIT.format(dtype=dtype), env)
        warm = _run_python(FIRST_FIT.format(dtype=dtype), env)
    return {"cold": cold, "warm": warm}


def warmup_command():
    """Seconds of ``python -m fastbp --warmup`` (both dtypes) on an empty cache."""
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "fastbp", "--warmup"],
            env={**os.environ, "NUMBA_CACHE_DIR": cache},
            check=True,
            capture_output=True,
        )
        return time.perf_counter() - start


PEAK_MEMORY = """
    import gc, json, os, threading, time, warnings
    import numpy as np
    from fastbp.bench import make_data
    from {module} import {estimator}
    warnings.simplefilter("ignore")
    page = os.sysconf("SC_PAGE_SIZE")

    def resident():
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * page

    X, y = make_data(60000, 784, 10, np.float64)
    est = {estimator}(hidden_layer_sizes=(256,), solver="{solver}", max_iter={max_iter},
                      batch_size=128, random_state=0)
    est.fit(X[:256], y[:256])  # compile and warm up outside the measurement
    gc.collect()
    baseline = resident()
    peak = [baseline]
    done = threading.Event()

    def sample():  # the kernels release the GIL, so this thread sees the fit's peak
        while not done.is_set():
            peak[0] = max(peak[0], resident())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    est.fit(X, y)
    done.set()
    sampler.join()
    peak[0] = max(peak[0], resident())
    print(json.dumps(dict(added_mib=(peak[0] - baseline) / 2**20)))
"""


def peak_memory():
    """Peak resident memory that fit adds on the medium case (60000 x 784, float64)."""
    results = {}
    for solver, max_iter in (("adam", 1), ("lbfgs", 3)):
        for library, module, estimator in (
            ("fastbp", "fastbp", "BackpropClassifier"),
            ("sklearn", "sklearn.neural_network", "MLPClassifier"),
        ):
            code = PEAK_MEMORY.format(
                module=module, estimator=estimator, solver=solver, max_iter=max_iter
            )
            results[(solver, library)] = _run_python(code)["added_mib"]
            log(f"  peak memory {library} {solver}: {results[(solver, library)]:.0f} MiB")
    return results


def predict_latency(repeats=2000):
    """Single-row and 10k-row prediction, validation included, on a digits model."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X / 16
    batch = np.ascontiguousarray(np.tile(X, (6, 1))[:10000])
    row = np.ascontiguousarray(X[:1])
    results = {}
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        for name, cls in (("fastbp", BackpropClassifier), ("sklearn", MLPClassifier)):
            model = cls(max_iter=20, random_state=0).fit(X, y)
            for method in ("predict", "predict_proba"):
                call = getattr(model, method)
                call(row)
                times = []
                for _ in range(5):
                    start = time.perf_counter()
                    for _ in range(repeats // 5):
                        call(row)
                    times.append((time.perf_counter() - start) / (repeats // 5))
                results[(name, method, "1 row")] = min(times) * 1e6  # µs
                times = []
                for _ in range(10):
                    start = time.perf_counter()
                    call(batch)
                    times.append(time.perf_counter() - start)
                results[(name, method, "10k rows")] = statistics.median(times) * 1e3  # ms
    return results


def speedups_from_rows(rows):
    """``(label, fastbp / sklearn, fastbp / torch or None)`` per one-thread result row."""
    return [
        (
            f"{row['case']}\n{row['dtype']}",
            row["fastbp"]["median"] / row["sklearn"]["median"],
            row["fastbp"]["median"] / row["torch"]["median"] if row["torch"] else None,
        )
        for row in rows
        if row["threads"] == 1
    ]


def speedups_from_report(text):
    """The same, read back from a report's training-throughput table (its rounded
    ratios), so that the chart can be redrawn without measuring again."""

    def ratio(cell):
        return None if cell.strip() in ("–", "") else float(cell.strip().rstrip("×"))

    table = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in text.split("## Training throughput", 1)[1].split("\n## ", 1)[0].splitlines()
        if line.startswith("|") and not line.startswith("|---")
    ]
    header, body = table[0], table[1:]
    column = {name: index for index, name in enumerate(header)}
    return [
        (
            f"{row[column['case']]}\n{row[column['dtype']]}",
            ratio(row[column["fastbp / sklearn"]]),
            ratio(row[column["fastbp / torch"]]),
        )
        for row in body
        if row[column["threads"]] == "1"
    ]


def speedup_figure(speedups):
    """Bar chart of the speed-ups at one thread, ``speedups`` as from
    :func:`speedups_from_rows`.

    Horizontal bars on a logarithmic axis, each labelled with its ratio: the tiny
    network's 20-60x and the large networks' 1.2-3x both stay readable (on a linear
    axis the tiny case flattened every other bar near zero), and the case names and
    labels have room at the width of the documentation's column."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullLocator

    labels = [label.replace("\n", " ") for label, _, _ in speedups]
    positions = np.arange(len(speedups))
    fig, ax = plt.subplots(figsize=(8, max(3.5, 0.55 * len(speedups) + 1)))
    for offset, index, name in ((-0.2, 1, "fastbp / scikit-learn"), (0.2, 2, "fastbp / PyTorch")):
        shown = [(pos, bar[index]) for pos, bar in zip(positions, speedups) if bar[index]]
        # from 1× (no difference) to the ratio: a bar's length is the speed-up itself
        bars = ax.barh(
            [pos + offset for pos, _ in shown],
            [value - 1 for _, value in shown],
            0.4,
            left=1,
            label=name,
        )
        ax.bar_label(bars, [f"{value:.1f}×" for _, value in shown], fontsize=9, padding=3)
    ax.set_xscale("log")
    highest = max(value for bar in speedups for value in bar[1:] if value)
    lowest = min(value for bar in speedups for value in bar[1:] if value)
    ticks = [tick for tick in (0.5, 1, 2, 5, 10, 20, 50, 100, 200) if tick <= 1.5 * highest]
    ticks = [tick for tick in ticks if tick >= 1 or tick >= 0.6 * lowest]
    ax.set_xticks(ticks, [f"{tick:g}×" for tick in ticks], fontsize=10)
    ax.xaxis.set_minor_locator(NullLocator())  # no unlabelled log ticks between
    # room for the longest bar's label; a slowdown (below 1x) shows to the left
    ax.set_xlim(0.9 if lowest >= 1 else 0.6 * lowest, 2.5 * highest)
    ax.axvline(1, color="black", linewidth=0.8)
    ax.grid(axis="x", linewidth=0.4, alpha=0.5)
    ax.set_axisbelow(True)
    ax.set_yticks(positions, labels, fontsize=10)
    ax.invert_yaxis()  # the report's order, top to bottom
    ax.set_xlabel("training throughput ratio, log scale (above 1×: fastbp faster)", fontsize=10)
    ax.set_title("fastbp training speed, 1 thread, same data and epochs", fontsize=11)
    ax.legend(loc="lower right", fontsize=10)
    fig.tight_layout()
    return fig


def chart(speedups, path):
    """:func:`speedup_figure` written to ``path``; skipped without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib is not installed: no chart")
        return False
    fig = speedup_figure(speedups)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--searches", nargs="*", default=list(SEARCHES), choices=list(SEARCHES))
    parser.add_argument("--dtypes", nargs="+", default=["float64", "float32"])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--lbfgs-rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=pathlib.Path, default=HERE / "results")
    parser.add_argument(
        "--chart-only",
        action="store_true",
        help="measure nothing: redraw the chart from the report already in --out",
    )
    args = parser.parse_args()
    if args.chart_only:
        report = (args.out / "results.md").read_text(encoding="utf-8")
        chart(speedups_from_report(report), args.out / "speedup.png")
        return
    repeats = 1 if args.quick else args.repeats

    machine = machine_description()
    gemm_rates = {
        (dtype, threads): gemm_rate(np.dtype(dtype), threads)
        for dtype in args.dtypes
        for threads in args.threads
    }
    rows = []
    # Interleave: each case runs every contender back to back, in one process.
    for name in args.cases:
        for threads in args.threads:
            for dtype in args.dtypes:
                rows.append(run_case(name, CASES[name], dtype, threads, repeats, True, log))
    searches = [
        run_search(name, n_jobs, repeats, log) for name in args.searches for n_jobs in (1, 2)
    ]
    latency = predict_latency()
    lbfgs_lines = []
    if args.lbfgs_rounds > 0:
        sys.path.insert(0, str(HERE))
        import lbfgs

        lbfgs_lines = lbfgs.section([str(HERE.parent)], rounds=args.lbfgs_rounds)
    starts = {} if args.quick else {dtype: cold_start(dtype) for dtype in ("float64", "float32")}
    if starts:
        sklearn_import = _run_python(SKLEARN_IMPORT)["import_s"]
        warmup_seconds = warmup_command()
    memory = {} if args.quick else peak_memory()

    args.out.mkdir(parents=True, exist_ok=True)
    has_chart = chart(speedups_from_rows(rows), args.out / "speedup.png")
    lines = [
        "# fastbp benchmark results",
        "",
        f"Measured {datetime.date.today().isoformat()} by `benchmarks/run.py`"
        f" ({repeats} repeat(s) per timing, medians).",
        "",
        f"* Machine: {machine['cpu']}",
        f"* Software: {machine['versions']}",
        f"* BLAS (threadpoolctl): {machine['blas']}",
        f"* OPENBLAS_CORETYPE: {machine['openblas_coretype']}",
        "* Machine GEMM rate now (numpy, 1024², GFLOP/s): "
        + ", ".join(f"{d} {t} thread(s) {r:.0f}" for (d, t), r in gemm_rates.items()),
        "",
        "## Training throughput (samples/s = epochs × samples / fit time)",
        "",
        format_table(rows, gemm_rates),
        "",
    ]
    if has_chart:
        lines += ["![speed-up chart](speedup.png)", ""]
    if searches:
        lines += [
            "## Hyperparameter search (GridSearchCV over StandardScaler + the MLP, "
            "1 BLAS thread per process)",
            "",
            format_search_table(searches),
            "",
            "The epoch columns are measured in the n_jobs=1 search: its wall time per epoch "
            "fastbp ran (and the part inside the epoch kernel) against the time the same "
            "epochs' matrix products take alone.",
            "",
        ]
    lines += lbfgs_lines
    lines += [
        "## Prediction latency (validation included, 1 thread, digits model)",
        "",
        "| call | fastbp | scikit-learn | ratio |",
        "|---|---|---|---|",
    ]
    for method in ("predict", "predict_proba"):
        for size, unit in (("1 row", "µs"), ("10k rows", "ms")):
            ours, theirs = latency[("fastbp", method, size)], latency[("sklearn", method, size)]
            lines.append(
                f"| {method}, {size} | {ours:.1f} {unit} | {theirs:.1f} {unit} "
                f"| {theirs / ours:.1f}× |"
            )
    if starts:
        lines += [
            "",
            "## Start-up (fresh process, digits, 5 epochs)",
            "",
            "| dtype | import | first fit, empty numba cache | then first predict "
            "| first fit, warm cache | later fit |",
            "|---|---|---|---|---|---|",
        ]
        for dtype, result in starts.items():
            cold, warm = result["cold"], result["warm"]
            lines.append(
                f"| {dtype} | {cold['import_s']:.2f} s | {cold['first_fit_s']:.2f} s "
                f"| {cold['first_predict_s']:.3f} s | {warm['first_fit_s']:.3f} s "
                f"| {warm['later_fit_s']:.3f} s |"
            )
        lines += [
            "",
            f"scikit-learn's import (numpy, MLPClassifier): {sklearn_import:.2f} s; "
            f"`python -m fastbp --warmup` (both dtypes, empty cache): {warmup_seconds:.1f} s.",
        ]
    if memory:
        lines += [
            "",
            "## Peak memory added by fit (medium case, 60000 × 784 float64, hidden 256)",
            "",
            "| solver | fastbp | scikit-learn |",
            "|---|---|---|",
        ]
        for solver in ("adam", "lbfgs"):
            lines.append(
                f"| {solver} | {memory[(solver, 'fastbp')]:.0f} MiB "
                f"| {memory[(solver, 'sklearn')]:.0f} MiB |"
            )
    report = "\n".join(lines) + "\n"
    (args.out / "results.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
