"""Small Sphinx helpers for fastbp's documentation, all offline.

* ``ExampleOrder`` orders the gallery: a reader's path first, any other example after
  them by file name.
* ``.. example-output:: PATH`` runs an example script and shows what it printed, so
  the numbers a page quotes are the example's, computed at build time.
* ``.. markdown-table:: PATH`` renders a pipe table of a Markdown file (the benchmark
  report in ``benchmarks/results/results.md``), so the numbers on the site are the
  report's, never copied by hand.
* Every parameter and attribute of a documented class gets an anchor and a label,
  ``<class name>.<name>`` (for instance ``BackpropClassifier.dropout``), so that the
  user guide can link to one parameter: ``:ref:`dropout <BackpropClassifier.dropout>```.
* A constant re-exported by ``fastbp/__init__.py`` (``SKOPS_TRUSTED_TYPES``) gets the
  ``#:`` comment written where it is defined, not the docstring of its type.
* References to ``sklearn.*`` and ``numpy.*`` objects that Sphinx cannot resolve
  become plain links to those projects' documentation (no intersphinx inventory is
  fetched: the build needs no network). The methods the estimators inherit from
  scikit-learn (``get_params``, ``score``, ``set_fit_request``...) keep scikit-learn's
  docstrings, whose glossary terms link to scikit-learn's glossary and whose other
  labels (its user guide's) render as plain text.
* Equations are rendered to MathML when the site is built (``latex2mathml``), so
  they show with no script and no network.
"""

import contextlib
import importlib
import inspect
import io
import pathlib
import re
import runpy

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx import addnodes
from sphinx.util.docutils import SphinxDirective

SKLEARN_API = "https://scikit-learn.org/stable/modules/generated/"
SKLEARN_GLOSSARY = "https://scikit-learn.org/stable/glossary.html#term-"
NUMPY_API = "https://numpy.org/doc/stable/reference/generated/"


# ---------------------------------------------------------------------------------
# The gallery's order
# ---------------------------------------------------------------------------------
class ExampleOrder:
    """Sort key of sphinx-gallery's ``within_subsection_order``: the examples in a
    reading order, then any other by file name."""

    ORDER = (
        "quickstart.py",
        "decision_boundary.py",
        "backprop_walkthrough.py",
        "loss_curves.py",
        "regression_pipeline.py",
        "float32_vs_float64.py",
        "sparse_text.py",
        "beyond_sklearn.py",
        "grid_search.py",
        "grid_search_dask.py",
        "onnx_export.py",
    )

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        if filename in self.ORDER:
            return (self.ORDER.index(filename), filename)
        return (len(self.ORDER), filename)


# ---------------------------------------------------------------------------------
# Markdown tables
# ---------------------------------------------------------------------------------
def markdown_tables(text):
    """Yield ``(heading, rows)`` for each pipe table, ``heading`` being the Markdown
    heading above it and ``rows`` lists of cell strings (the header row first)."""
    heading, rows = None, []
    for line in text.splitlines() + [""]:
        stripped = line.strip()
        if stripped.startswith("|"):
            cells = [cell.strip() for cell in stripped.strip("|").split("|")]
            if not all(set(cell) <= set("-: ") for cell in cells):  # skip |---|---|
                rows.append(cells)
            continue
        if rows:
            yield heading, rows
            rows = []
        if stripped.startswith("#"):
            heading = stripped.lstrip("#").strip()


class MarkdownTable(SphinxDirective):
    """``.. markdown-table:: relative/path.md`` with ``:heading:`` (the start of the
    Markdown heading the table sits under) and optionally ``:columns:`` (header names,
    comma-separated, in the order wanted). The table gets the class ``fastbp-report``
    (``_static/fastbp.css`` sets it in smaller type, so that nine columns fit)."""

    required_arguments = 1
    option_spec = {"heading": directives.unchanged_required, "columns": directives.unchanged}

    def run(self):
        _, path = self.env.relfn2path(self.arguments[0], self.env.docname)
        self.env.note_dependency(path)
        text = pathlib.Path(path).read_text(encoding="utf-8")
        wanted = self.options["heading"]
        found = [rows for heading, rows in markdown_tables(text) if heading.startswith(wanted)]
        if len(found) != 1:
            raise self.error(f"{len(found)} tables under a heading {wanted!r} in {path}")
        rows = found[0]
        header = rows[0]
        if "columns" in self.options:
            names = [name.strip() for name in self.options["columns"].split(",")]
            missing = [name for name in names if name not in header]
            if missing:
                raise self.error(f"no column(s) {missing} in the table: {header}")
            indices = [header.index(name) for name in names]
            rows = [[row[i] for i in indices] for row in rows]
        lines = [".. list-table::", "   :header-rows: 1", "   :class: fastbp-report", ""]
        for row in rows:
            for index, cell in enumerate(row):
                bullet = "   * - " if index == 0 else "     - "
                lines.append(bullet + (cell.replace("\\", "\\\\").replace("*", "\\*") or ".."))
        container = nodes.container(classes=["markdown-table"])
        self.state.nested_parse(StringList(lines, source=path), self.content_offset, container)
        return container.children


# ---------------------------------------------------------------------------------
# What an example prints
# ---------------------------------------------------------------------------------
class ExampleOutput(SphinxDirective):
    """``.. example-output:: relative/path.py``: run the script (as ``__main__``, in
    this process, figures discarded) and show its standard output as a literal block."""

    required_arguments = 1

    def run(self):
        _, path = self.env.relfn2path(self.arguments[0], self.env.docname)
        self.env.note_dependency(path)
        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            runpy.run_path(path, run_name="__main__")
        try:
            import matplotlib.pyplot as plt
        except ImportError:  # pragma: no cover - the gallery needs matplotlib anyway
            pass
        else:
            plt.close("all")
        text = output.getvalue().rstrip()
        block = nodes.literal_block(text, text, language="none")
        self.set_source_info(block)
        return [block]


# ---------------------------------------------------------------------------------
# One anchor and label per class parameter
# ---------------------------------------------------------------------------------
def label_class_parameters(app, doctree):
    """Give each entry of a class's Parameters and Attributes sections an id and a
    std-domain label ``ClassName.name`` (numpydoc renders each section as a definition
    list inside a field named after it)."""
    std = app.env.get_domain("std")
    docname = app.env.docname
    for desc in doctree.findall(addnodes.desc):
        if desc.get("domain") != "py" or desc.get("objtype") != "class":
            continue
        signature = next(iter(desc.findall(addnodes.desc_signature)), None)
        if signature is None:
            continue
        class_name = signature.get("fullname", "")
        content = next(iter(desc.findall(addnodes.desc_content)))
        # the class's own fields only, not those of its methods' nested descriptions
        fields = [
            field
            for field_list in content.children
            if isinstance(field_list, nodes.field_list)
            for field in field_list.children
        ]
        for field in fields:
            section = field[0].astext().strip()
            if section not in ("Parameters", "Attributes"):
                continue
            for item in field[1].findall(nodes.definition_list_item):
                strong = next(iter(item[0].findall(nodes.strong)), None)
                if strong is None:
                    continue
                name = strong.astext().strip()
                label = f"{class_name}.{name}".lower()
                node_id = nodes.make_id(f"{class_name}-{section}-{name}")
                item[0]["ids"].append(node_id)
                std.note_hyperlink_target(label, docname, node_id, name)


# ---------------------------------------------------------------------------------
# Documentation comments of re-exported constants
# ---------------------------------------------------------------------------------
def defining_comment(name, obj):
    """The ``#:`` comment above the assignment of ``obj`` in the fastbp module that
    defines it under ``name``, as lines, or None."""
    import sys

    from sphinx.pycode import ModuleAnalyzer

    short = name.rsplit(".", 1)[-1]
    for module_name, module in sorted(sys.modules.items()):
        if not module_name.startswith("fastbp.") or getattr(module, short, None) is not obj:
            continue
        comments = ModuleAnalyzer.for_module(module_name).find_attr_docs()
        if ("", short) in comments:
            return list(comments[("", short)])
    return None


def document_reexported_data(app, what, name, obj, options, lines):
    if what != "data" or not name.startswith("fastbp."):
        return
    comment = defining_comment(name, obj)
    if comment is not None:
        lines[:] = comment


# ---------------------------------------------------------------------------------
# Offline links to scikit-learn and numpy
# ---------------------------------------------------------------------------------
def _resolve(target):
    """``(module, object path inside it, object)`` for a dotted name, or None."""
    parts = target.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        inside = parts[split:]
        try:
            for name in inside:
                obj = getattr(obj, name)
        except AttributeError:
            return None
        return ".".join(parts[:split]), inside, obj
    return None


def external_api_url(target):
    """The scikit-learn or numpy documentation page of ``target``, or None."""
    if target.startswith("sklearn."):
        base = SKLEARN_API
    elif target.startswith("numpy."):
        base = NUMPY_API
    else:
        return None
    resolved = _resolve(target)
    if resolved is None:
        return None
    module, inside, obj = resolved
    if not inside:
        if base == SKLEARN_API:
            return f"https://scikit-learn.org/stable/api/{module}.html"
        return None
    page = f"{module}.{inside[0]}"
    if len(inside) == 1:
        return f"{base}{page}.html"
    if len(inside) == 2 and inspect.isclass(getattr(importlib.import_module(module), inside[0])):
        return f"{base}{page}.html#{target}"
    return None


def _from_sklearn_docstring(node):
    """True in a docstring fastbp inherits from scikit-learn, or in an autosummary
    table of methods (whose one-line summaries include those docstrings' first lines)."""
    source = node.source or ""
    return "docstring of sklearn." in source or "<autosummary>" in source


def link_external(app, env, node, contnode):
    domain, kind = node.get("refdomain"), node.get("reftype")
    target = node.get("reftarget", "")
    if domain == "std" and kind in ("ref", "term") and _from_sklearn_docstring(node):
        if kind == "ref":
            return contnode  # a label of scikit-learn's own user guide: plain text
        url = SKLEARN_GLOSSARY + nodes.make_id(target)
    elif domain == "py":
        url = external_api_url(target)
    else:
        url = None
    if url is None:
        return None
    reference = nodes.reference("", "", internal=False, refuri=url, reftitle=target)
    reference.append(contnode)
    return reference


# ---------------------------------------------------------------------------------
# Equations as MathML, written at build time
# ---------------------------------------------------------------------------------
def _mathml(translator, node, latex, display):
    """The MathML of one LaTeX formula (``latex2mathml``); a formula it cannot convert
    fails the build with the formula and where it is, rather than showing raw LaTeX."""
    from latex2mathml.converter import convert

    source = f"{node.source}:{node.line}" if node.source else translator.builder.current_docname
    try:
        mathml = convert(latex, display="block" if display else "inline")
    except Exception as error:  # noqa: BLE001 - latex2mathml raises many kinds
        raise ValueError(f"{source}: cannot render {latex!r} as MathML: {error}") from error
    if "\\" in re.sub(r"<[^>]+>", "", mathml):  # a macro it does not know, left as text
        raise ValueError(f"{source}: {latex!r} leaves raw LaTeX in its MathML: {mathml}")
    return mathml


def visit_math_mathml(self, node):
    self.body.append(self.starttag(node, "span", "", CLASS="math notranslate"))
    self.body.append(_mathml(self, node, node.astext(), display=False) + "</span>")
    raise nodes.SkipNode


def visit_displaymath_mathml(self, node):
    """A ``.. math::`` block: each equation (blank-line separated) a block of its own."""
    self.body.append(self.starttag(node, "div", CLASS="math notranslate"))
    if node["number"]:
        from sphinx.util.math import get_node_equation_number

        self.body.append(f'<span class="eqno">({get_node_equation_number(self, node)})</span>')
    for part in node.astext().split("\n\n"):
        if part.strip():
            self.body.append(_mathml(self, node, part, display=True))
    self.body.append("</div>\n")
    raise nodes.SkipNode


def setup(app):
    # Equations become MathML in the HTML (``html_math_renderer = "mathml"``): every
    # current browser draws it with no script, so they render offline, where MathJax
    # from a CDN left an offline reader raw LaTeX.
    app.add_html_math_renderer(
        "mathml", (visit_math_mathml, None), (visit_displaymath_mathml, None)
    )
    app.add_directive("markdown-table", MarkdownTable)
    app.add_directive("example-output", ExampleOutput)
    app.connect("doctree-read", label_class_parameters)
    app.connect("autodoc-process-docstring", document_reexported_data, priority=100)
    app.connect("missing-reference", link_external)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
