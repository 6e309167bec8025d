"""The documentation site builds with every warning an error, runs the whole gallery,
gives every public name an API page, and links to nothing that is missing.

The build reads a copy of the sources in a temporary directory (sphinx-gallery writes
its pages next to them), so the repository is left untouched. It takes about a minute
on two cores, most of it running the examples.
"""

import os
import pathlib
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from urllib.parse import unquote, urlsplit

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLES = sorted(path.stem for path in (ROOT / "examples").glob("*.py"))
# What the documentation reads: its sources, the examples it runs, the benchmark
# report it shows, and fastbp's source (for a literalinclude; the fastbp that runs is
# the repository's, imported from ROOT).
SOURCES = ("docs", "examples", "benchmarks/results", "fastbp")
GENERATED = ("_build", "auto_examples", "gen_modules", "sg_execution_times.rst", "__pycache__")

pytestmark = pytest.mark.slow


class _Links(HTMLParser):
    """The ``href`` and ``src`` values and the element ids of one HTML page."""

    def __init__(self):
        super().__init__()
        self.links, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("href", "src") and value is not None:
                self.links.append(value)
            elif name == "id" and value:
                self.ids.add(value)


def _parse(path):
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    modules = ("sphinx", "numpydoc", "sphinx_gallery", "pydata_sphinx_theme", "latex2mathml")
    for module in modules + ("matplotlib",):
        pytest.importorskip(module, reason=f'{module} is not installed: pip install ".[docs]"')
    work = tmp_path_factory.mktemp("site")
    for part in SOURCES:
        shutil.copytree(ROOT / part, work / part, ignore=shutil.ignore_patterns(*GENERATED))
    env = dict(os.environ, MPLBACKEND="Agg")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html"]
    command += ["-d", str(work / "doctrees"), str(work / "docs"), str(work / "html")]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    return work / "html"


def test_every_example_page_shows_a_figure_it_drew(site):
    for stem in EXAMPLES:
        page = (site / "auto_examples" / f"{stem}.html").read_text(encoding="utf-8")
        figures = re.findall(rf'<img[^>]*src="[^"]*sphx_glr_{stem}_\d+\.png"', page)
        assert figures, f"the gallery page of examples/{stem}.py shows no figure"


def test_every_public_name_has_an_api_page(site):
    import fastbp

    names = [name for name in fastbp.__all__ if name != "__version__"]
    assert "SKOPS_TRUSTED_TYPES" in names
    for name in names:
        page = site / "gen_modules" / f"fastbp.{name}.html"
        assert page.is_file(), f"no API page for fastbp.{name}"
        assert f"fastbp.{name}" in _parse(page).ids
    for estimator in ("BackpropClassifier", "BackpropRegressor"):
        ids = _parse(site / "gen_modules" / f"fastbp.{estimator}.html").ids
        for method in ("fit", "partial_fit", "predict", "to_sklearn", "from_sklearn"):
            assert f"fastbp.{estimator}.{method}" in ids


def test_api_pages_list_the_examples_that_use_them(site):
    page = (site / "gen_modules" / "fastbp.BackpropClassifier.html").read_text(encoding="utf-8")
    assert "Examples using" in page
    assert "auto_examples/quickstart.html" in page


def test_walkthrough_page_shows_the_example_numbers_computed_at_build_time(site):
    page = (site / "user_guide" / "backprop.html").read_text(encoding="utf-8")
    assert "equal the hand-computed ones: True" in page
    assert "E = -[t log p + (1 - t) log(1 - p)] = 0.619507" in page


def test_no_internal_link_is_broken(site):
    site = site.resolve()
    # every page Sphinx wrote (_static holds the theme's files, some of them templates)
    pages = {
        path.resolve(): _parse(path)
        for path in site.rglob("*.html")
        if "_static" not in path.relative_to(site).parts
    }
    assert len(pages) > 20
    broken = []
    for path, parsed in pages.items():
        for link in parsed.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith(("#", "mailto:", "data:")):
                continue
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            if not target.exists():
                broken.append(f"{path.relative_to(site)}: {link}")
            elif parts.fragment and target.suffix == ".html":
                if parts.fragment not in pages[target].ids:
                    broken.append(f"{path.relative_to(site)}: {link} (no such anchor)")
    assert not broken, "\n".join(broken[:50])


def _site_pages(site):
    return [path for path in site.rglob("*.html") if "_static" not in path.relative_to(site).parts]


def test_equations_are_mathml_and_no_page_loads_mathjax(site):
    # An offline reader sees rendered equations: MathML in the page, no script to fetch.
    page = (site / "user_guide" / "backprop.html").read_text(encoding="utf-8")
    spans = re.findall(r'<(?:span|div) class="math[^"]*">(.*?)</(?:span|div)>', page, re.S)
    assert len(spans) > 50
    assert all(span.lstrip().startswith("<math") for span in spans)
    assert (site / "_static" / "fonts" / "texgyredejavu-math.otf").is_file()
    for path in _site_pages(site):
        scripts = _parse(path).links
        assert not [link for link in scripts if "mathjax" in link.lower()], path


def test_no_page_loads_a_script_or_style_from_another_host(site):
    # The site works offline: every script and stylesheet is served with the pages.
    tags = re.compile(r"<script\b[^>]*>|<link\b[^>]*>", re.I)
    remote = re.compile(r"""\b(?:src|href)=["'](?:https?:)?//""", re.I)
    loading = {
        str(path.relative_to(site)): tag
        for path in _site_pages(site)
        for tag in tags.findall(path.read_text(encoding="utf-8"))
        if remote.search(tag) and (tag.lower().startswith("<script") or "stylesheet" in tag)
    }
    assert not loading, loading


def test_no_page_names_a_private_setting(site):
    text = re.compile(r"\bfastbp\._\w")
    named = [
        str(path.relative_to(site))
        for path in _site_pages(site)
        if "_modules" not in path.relative_to(site).parts
        and text.search(re.sub(r"<[^>]+>", "", path.read_text(encoding="utf-8")))
    ]
    assert not named, named
