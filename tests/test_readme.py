"""Every Python code block of the README runs, in order, in one namespace (as a
reader pastes them one after the other)."""

import pathlib
import re
import textwrap

import pytest

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def python_blocks():
    text = README.read_text()
    return [textwrap.dedent(block) for block in re.findall(r"```python\n(.*?)```", text, re.S)]


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
def test_every_readme_python_block_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # blocks that write files write them here
    namespace = {"__name__": "__main__"}  # as a script: blocks behind a main guard run too
    for index, block in enumerate(python_blocks()):
        code = compile(block, f"README.md block {index + 1}", "exec")
        exec(code, namespace)


def test_blocks_that_start_processes_have_a_main_guard():
    # A script that starts worker processes (Dask's LocalCluster, multiprocessing)
    # without the guard fails as a plain script: the workers re-import it.
    starters = ("LocalCluster(", "multiprocessing", "ProcessPoolExecutor(")
    for block in python_blocks():
        if any(starter in block for starter in starters):
            assert 'if __name__ == "__main__":' in block, block
