"""Small Sphinx helpers for fastbp's documentation, all offline.

* ``.. markdown-table:: PATH`` renders a pipe table of a Markdown file (the benchmark
  report in ``benchmarks/results/results.md``), so the numbers on the site are the
  report's, never copied by hand.
* Every parameter of a documented class gets an anchor and a label,
  ``<class name>.<parameter>`` (for instance ``BackpropClassifier.dropout``), so that
  the user guide can link to one parameter: ``:ref:`dropout <BackpropClassifier.dropout>```.
* References to ``sklearn.*`` and ``numpy.*`` objects that Sphinx cannot resolve
  become plain links to those projects' documentation (no intersphinx inventory is
  fetched: the build needs no network).
"""

import importlib
import inspect
import pathlib

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx import addnodes
from sphinx.util.docutils import SphinxDirective

SKLEARN_API = "https://scikit-learn.org/stable/modules/generated/"
NUMPY_API = "https://numpy.org/doc/stable/reference/generated/"


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
    comma-separated, in the order wanted)."""

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
        lines = [".. list-table::", "   :header-rows: 1", ""]
        for row in rows:
            for index, cell in enumerate(row):
                bullet = "   * - " if index == 0 else "     - "
                lines.append(bullet + (cell.replace("\\", "\\\\").replace("*", "\\*") or ".."))
        container = nodes.container(classes=["markdown-table"])
        self.state.nested_parse(StringList(lines, source=path), self.content_offset, container)
        return container.children


# ---------------------------------------------------------------------------------
# One anchor and label per class parameter
# ---------------------------------------------------------------------------------
def label_class_parameters(app, doctree):
    """Give each entry of a class's Parameters section an id and a std-domain label
    ``ClassName.parameter`` (numpydoc renders the section as a definition list inside
    a field named "Parameters")."""
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
        for field in content.findall(nodes.field):
            if field[0].astext().strip() != "Parameters":
                continue
            for item in field[1].findall(nodes.definition_list_item):
                term = item[0]
                strong = next(iter(term.findall(nodes.strong)), None)
                if strong is None:
                    continue
                parameter = strong.astext().strip()
                label = f"{class_name}.{parameter}".lower()
                node_id = nodes.make_id(f"{signature.get('module', '')}-{label}-parameter")
                term["ids"].append(node_id)
                std.note_hyperlink_target(label, docname, node_id, parameter)
            break  # only the class's own Parameters, not those of its methods


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


def link_external(app, env, node, contnode):
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    url = external_api_url(target)
    if url is None:
        return None
    reference = nodes.reference("", "", internal=False, refuri=url, reftitle=target)
    reference.append(contnode)
    return reference


def setup(app):
    app.add_directive("markdown-table", MarkdownTable)
    app.connect("doctree-read", label_class_parameters)
    app.connect("missing-reference", link_external)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
