"""Every Python code block of the README runs on its own, as a plain script (what a
reader gets who copies one block into a file)."""

import pathlib
import re
import subprocess
import sys
import textwrap

import pytest

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def python_blocks():
    text = README.read_text()
    return [textwrap.dedent(block) for block in re.findall(r"```python\n(.*?)```", text, re.S)]


def test_readme_shows_the_one_line_swap():
    # The drop-in promise, as the README states it: the first block swaps the import.
    first = python_blocks()[0]
    assert "from fastbp import MLPClassifier" in first
    code = [line.split("#")[0] for line in first.splitlines()]
    assert not any("sklearn.neural_network" in line for line in code)


def test_every_python_fence_is_a_block_that_compiles():
    """The slow test runs what python_blocks() finds: it must find every fence a reader
    sees as Python (```py, ```python3, indented under a list item), and each must be
    valid Python on its own."""
    fences = re.findall(r"^[ \t]*```[ \t]*(\S*)", README.read_text(), re.M)
    pythonish = [info for info in fences if info.lower().startswith("py")]
    blocks = python_blocks()
    assert pythonish == ["python"] * len(blocks) and blocks
    for index, block in enumerate(blocks):
        compile(block, f"README.md block {index + 1}", "exec")


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_every_readme_python_block_runs_as_a_plain_script(index, tmp_path):
    script = tmp_path / f"readme_block_{index + 1}.py"
    script.write_text(python_blocks()[index])
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_blocks_that_start_processes_have_a_main_guard():
    # A script that starts worker processes (Dask's LocalCluster, multiprocessing)
    # without the guard fails as a plain script: the workers re-import it.
    starters = ("LocalCluster(", "multiprocessing", "ProcessPoolExecutor(")
    for block in python_blocks():
        if any(starter in block for starter in starters):
            assert 'if __name__ == "__main__":' in block, block
