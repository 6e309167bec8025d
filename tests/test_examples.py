import pathlib
import runpy

import pytest

EXAMPLES = sorted((pathlib.Path(__file__).parent.parent / "examples").glob("*.py"))
# Over ~10 s on two cores (the hyperparameter searches).
SLOW = {"grid_search.py", "grid_search_dask.py"}
assert SLOW <= {path.name for path in EXAMPLES}


@pytest.mark.parametrize(
    "path",
    [pytest.param(p, marks=[pytest.mark.slow] if p.name in SLOW else []) for p in EXAMPLES],
    ids=[p.name for p in EXAMPLES],
)
def test_example_runs(path, capsys):
    plt = pytest.importorskip("matplotlib.pyplot")  # every example draws
    try:
        runpy.run_path(str(path), run_name="__main__")
    finally:
        plt.close("all")
    assert capsys.readouterr().out
