"""The HTML repr (Jupyter) links each estimator to fastbp's API page."""

import pytest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import fastbp
from fastbp.estimators import DOCS_URL

ESTIMATORS = ["MLPClassifier", "MLPRegressor", "BackpropClassifier", "BackpropRegressor"]


@pytest.mark.parametrize("name", ESTIMATORS)
def test_html_repr_links_to_the_api_page_of_the_public_name(name, monkeypatch):
    monkeypatch.delenv("FASTBP_DOCS_URL", raising=False)
    estimator = getattr(fastbp, name)()
    page = f"{DOCS_URL}gen_modules/fastbp.{name}.html"
    assert estimator._get_doc_link() == page
    assert f'href="{page}"' in estimator._repr_html_()
    assert 'href="https://scikit-learn.org' not in estimator._repr_html_()


def test_html_repr_of_a_pipeline_links_the_fastbp_step(monkeypatch):
    monkeypatch.delenv("FASTBP_DOCS_URL", raising=False)
    html = make_pipeline(StandardScaler(), fastbp.MLPClassifier())._repr_html_()
    assert f'href="{DOCS_URL}gen_modules/fastbp.MLPClassifier.html"' in html
    assert "sklearn.preprocessing.StandardScaler.html" in html  # scikit-learn's own link


def test_the_api_page_named_by_the_link_is_the_one_the_docs_build():
    # autosummary writes gen_modules/<currentmodule>.<name>.html for each name listed
    # in docs/api.rst under ".. currentmodule:: fastbp".
    from pathlib import Path

    api = (Path(__file__).resolve().parent.parent / "docs" / "api.rst").read_text()
    assert ".. currentmodule:: fastbp" in api and ":toctree: gen_modules/" in api
    for name in ESTIMATORS:
        assert f"\n   {name}\n" in api


@pytest.mark.parametrize("url", ["file:///tmp/site/", "file:///tmp/site"])
def test_fastbp_docs_url_points_the_link_at_another_build(url, monkeypatch):
    monkeypatch.setenv("FASTBP_DOCS_URL", url)
    link = fastbp.MLPRegressor()._get_doc_link()
    assert link == "file:///tmp/site/gen_modules/fastbp.MLPRegressor.html"
