"""What a reader of the documentation site sees, checked from its sources without
building it (the build is in test_docs.py, marked slow): no private names on its pages,
report tables set to fit, equations that need no network, and a speed-up chart whose
small ratios are as readable as the large ones.
"""

import importlib.util
import math
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
GENERATED = ("_build", "auto_examples", "gen_modules")


def _pages():
    return [
        path
        for path in DOCS.rglob("*.rst")
        if not set(path.relative_to(DOCS).parts) & set(GENERATED)
    ]


def test_no_page_names_a_private_module():
    # A user sets what the API offers: a ``fastbp._module.NAME`` on a page reads as a
    # setting to change, and breaks when the internals move. (Pointing at a source
    # file, ``fastbp/_losses.py``, for a reader of the code is allowed.)
    pages = _pages()
    assert len(pages) > 5
    named = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in pages
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"\bfastbp\._\w", line)
    ]
    assert not named, "\n".join(named)


def test_equations_are_rendered_at_build_time_and_load_nothing():
    conf = (DOCS / "conf.py").read_text(encoding="utf-8")
    assert re.search(r'^html_math_renderer = "mathml"', conf, re.MULTILINE)
    assert "sphinx.ext.mathjax" not in conf
    assert (DOCS / "_static" / "fonts" / "texgyredejavu-math.otf").is_file()
    assert (DOCS / "_static" / "fonts" / "LICENSE-texgyredejavu-math.txt").is_file()


def test_every_equation_of_the_pages_converts_to_mathml():
    converter = pytest.importorskip("latex2mathml.converter", reason='pip install ".[docs]"')
    formulas = []
    for path in _pages():
        text = path.read_text(encoding="utf-8")
        formulas += re.findall(r":math:`([^`]+)`", text)
        for block in re.finditer(r"^\.\. math::\n\n((?:   .*\n|\n)+)", text, re.MULTILINE):
            formulas += [part for part in block.group(1).split("\n\n") if part.strip()]
    assert len(formulas) > 50
    for formula in formulas:
        mathml = converter.convert(formula)
        text = re.sub(r"<[^>]+>", "", mathml)
        assert "\\" not in text, f"{formula!r} left LaTeX in its MathML: {text!r}"


def test_report_tables_get_the_class_that_fits_them_to_the_page():
    css = (DOCS / "_static" / "fastbp.css").read_text(encoding="utf-8")
    source = (DOCS / "_ext" / "fastbp_docs.py").read_text(encoding="utf-8")
    assert ":class: fastbp-report" in source
    assert re.search(r"table\.fastbp-report\s*\{[^}]*font-size", css)
    assert re.search(r"div\.highlight pre[^{]*\{[^}]*white-space:\s*pre-wrap", css)
    assert "fastbp.css" in (DOCS / "conf.py").read_text(encoding="utf-8")


def _benchmark_script():
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "benchmarks" / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_speedup_chart_shows_every_ratio_readably():
    pytest.importorskip("matplotlib")
    run = _benchmark_script()
    report = (ROOT / "benchmarks" / "results" / "results.md").read_text(encoding="utf-8")
    speedups = run.speedups_from_report(report)
    assert len(speedups) >= 6
    ratios = [value for _, *values in speedups for value in values if value]
    assert max(ratios) / min(ratios) > 20  # the report's range, as the chart must show it
    figure = run.speedup_figure(speedups)
    try:
        axes = figure.axes[0]
        assert axes.get_xscale() == "log"
        start, end = axes.get_xlim()
        # a doubling (deep's 1.2x against digits' 2.6x) is a tenth of the axis or more
        # (on the linear axis up to tiny's 58x it was under 2%)
        assert math.log(2) / math.log(end / start) > 0.1
        labels = [text.get_text() for text in axes.texts]
        assert f"{min(ratios):.1f}×" in labels and f"{max(ratios):.1f}×" in labels
    finally:
        figure.clf()
