"""Every fenced Python block of README.md and docs/*.md runs as written.

The files are found when the tests are collected, so a new page under docs/ is tested without
editing this file; each block is one test, named by its file, its index and its first line
(``docs/training.md-3-L77``). Blocks of one file run in order in one namespace, as a reader
runs them, in a worker process whose working folder is a fresh temporary one (blocks may write
files). Running a single block runs the blocks before it first; if one of those fails, the
later ones are skipped, naming it. Each block gets ``BLOCK_TIMEOUT`` seconds.

A comment after a ``print(...)`` on one line is what the block prints: ``print(x)  # 1.5``
checks that ``1.5`` is in that block's output (``, then ...`` ends what is checked). A comment
starting with "about", "roughly", "approximately", "e.g." or "~" is not checked.

What cannot run here must not be fenced as ``python``: a shell transcript (``console``,
``bash``), an interpreter session (``pycon``), output (``text``), or code that needs hardware
or a network this machine has not (a GPU): fence it as ``text`` and say so beside it.
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BLOCK_TIMEOUT = 600  # seconds for one block

# ```python or ```py at the start of a line (indented inside a list too), up to the closing fence
FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```(?:python|py)[ \t]*\n(?P<code>.*?)^(?P=indent)```[ \t]*$", re.M | re.S
)
PRINT_COMMENT = re.compile(r"^\s*print\(.*\)\s+#\s?(?P<shows>.+?)(?:, then .*)?\s*$")
UNCHECKED = ("about", "roughly", "approximately", "e.g.", "~")


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def python_blocks(path: Path) -> list[tuple[int, str]]:
    """(line number of the opening fence, dedented code) for each Python block in the file."""
    return blocks_in(path.read_text(encoding="utf-8"))


def blocks_in(text: str) -> list[tuple[int, str]]:
    found = []
    for m in FENCE.finditer(text):
        indent = len(m.group("indent"))
        lines = []
        for line in m.group("code").splitlines(keepends=True):
            if not line.strip():
                lines.append("\n")
            elif line[:indent].strip():  # less indented than the fence: keep what is there
                lines.append(line.lstrip())
            else:
                lines.append(line[indent:])
        found.append((text.count("\n", 0, m.start()) + 1, "".join(lines)))
    return found


CASES = [
    pytest.param(path, index, id=f"{path.relative_to(ROOT)}-{index}-L{line}")
    for path in documents()
    for index, (line, _) in enumerate(python_blocks(path))
]

# The worker: reads one JSON request a line ({"code", "name"}), runs it in one namespace, and
# answers on its own copy of stdout; the blocks' own output is captured per block.
WORKER = r"""
import contextlib, io, json, linecache, os, sys, traceback
requests, answers = os.fdopen(os.dup(0)), os.fdopen(os.dup(1), "w")
os.dup2(os.open(os.devnull, os.O_RDONLY), 0)  # a block reading stdin reads nothing
sys.stdin = open(os.devnull)
os.dup2(2, 1)  # output that bypasses sys.stdout (C code, subprocesses) goes to the log
namespace = {"__name__": "__main__"}
for request in requests:
    request = json.loads(request)
    code, name = request["code"], request["name"]
    linecache.cache[name] = (len(code), None, code.splitlines(True), name)
    printed = io.StringIO()
    error = None
    try:
        with contextlib.redirect_stdout(printed):
            exec(compile(code, name, "exec"), namespace)
    except BaseException as e:  # the traceback without this worker's own frame
        error = "".join(traceback.format_exception(type(e), e, e.__traceback__.tb_next))
    answers.write(json.dumps({"stdout": printed.getvalue(), "error": error}) + "\n")
    answers.flush()
"""


class Reader:
    """One worker per document: runs its blocks in order, each at most once."""

    def __init__(self, path: Path, folder: Path) -> None:
        self.path = path
        self.blocks = python_blocks(path)
        self.folder = folder
        self.log = folder / "_stderr.txt"
        self.results: dict[int, dict] = {}
        self.process: subprocess.Popen | None = None

    def _start(self) -> subprocess.Popen:
        env = dict(os.environ, MPLBACKEND="Agg", PYTHONUNBUFFERED="1")
        with open(self.log, "w") as log:
            return subprocess.Popen(
                [sys.executable, "-c", WORKER],
                cwd=self.folder,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env=env,
            )

    def run(self, index: int) -> dict:
        """The result of block index, running the blocks before it first."""
        for k in range(index + 1):
            if k in self.results:
                if self.results[k]["error"] and k < index:
                    return {"skipped": k}
                continue
            self.results[k] = self._run_one(k)
            if self.results[k]["error"] and k < index:
                return {"skipped": k}
        return self.results[index]

    def _run_one(self, k: int) -> dict:
        if self.process is None:
            self.process = self._start()
        line, code = self.blocks[k]
        shown = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path.name
        name = f"{shown} block {k} (line {line})"
        self.process.stdin.write(json.dumps({"code": code, "name": name}) + "\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], BLOCK_TIMEOUT)
        answer = self.process.stdout.readline() if ready else ""
        if not answer:
            timed_out = not ready
            self.close()
            tail = self.log.read_text(errors="replace")[-3000:]
            why = f"timed out after {BLOCK_TIMEOUT} s" if timed_out else "the worker died"
            return {"stdout": "", "error": f"{name}: {why}\n{tail}"}
        return json.loads(answer)

    def close(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@pytest.fixture(scope="module")
def readers(tmp_path_factory):
    made: dict[Path, Reader] = {}

    def reader(path: Path) -> Reader:
        if path not in made:
            made[path] = Reader(path, tmp_path_factory.mktemp(path.stem))
        return made[path]

    yield reader
    for r in made.values():
        r.close()


@pytest.mark.timeout(3600)
@pytest.mark.parametrize("path, index", CASES)
def test_python_block_runs_as_written(readers, path, index):
    reader = readers(path)
    result = reader.run(index)
    if "skipped" in result:
        line = reader.blocks[result["skipped"]][0]
        pytest.skip(f"block {result['skipped']} (line {line}) of this file failed first")
    assert result["error"] is None, result["error"]
    line, code = reader.blocks[index]
    missing = unprinted(code, result["stdout"])
    assert not missing, f"the block says it prints {missing}, but it printed:\n{result['stdout']}"


def unprinted(code: str, stdout: str) -> list[str]:
    """What the block's ``print(...)  # shown`` comments claim and its output does not hold."""
    missing = []
    for text in code.splitlines():
        m = PRINT_COMMENT.match(text)
        if m and not m.group("shows").lower().startswith(UNCHECKED):
            if m.group("shows") not in stdout:
                missing.append(m.group("shows"))
    return missing


def test_every_document_and_block_is_found():
    """The discovery itself: README.md and the docs pages; blocks inside lists too."""
    names = [p.relative_to(ROOT).as_posix() for p in documents()]
    assert names[0] == "README.md" and "docs/training.md" in names
    sample = "text\n\n- an item:\n\n  ```python\n  x = 1\n  ```\n\n```py\ny = 2\n```\n"
    sample += "```pycon\n>>> 1\n```\n```text\nprint(1)\n```\n"
    assert blocks_in(sample) == [(5, "x = 1\n"), (9, "y = 2\n")]
    nested = (
        "```python\nif True:\n\n    x = 1\n```\n- item\n\n  ```py\n  if True:\n      y = 2\n  ```\n"
    )
    assert [code for _, code in blocks_in(nested)] == [
        "if True:\n\n    x = 1\n",
        "if True:\n    y = 2\n",
    ]
    assert CASES  # (pages may be added while the suite runs: no exact count)


def test_blocks_share_a_namespace_per_file_and_claims_are_checked(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "```python\nx = 2\nprint(x * 3)  # 6\n```\n"
        "```python\nprint(x + 1)  # 3, then more\nprint(x)  # 7\nprint(0.1)  # about 0.1\n```\n"
        "```python\nimport sys\nassert sys.stdin.read() == ''\nopen('made.txt', 'w').write('hi')\n"
        "raise ValueError(f'x is {x}')\n```\n"
        "```python\nprint('never runs')\n```\n"
    )
    other = tmp_path / "other.md"
    other.write_text("```python\nprint(x)\n```\n")
    folder = tmp_path / "work"
    folder.mkdir()
    reader, stranger = Reader(page, folder), Reader(other, tmp_path)
    try:
        first = reader.run(0)
        assert first["error"] is None and first["stdout"] == "6\n"
        assert unprinted(reader.blocks[0][1], first["stdout"]) == []
        second = reader.run(1)
        assert second["error"] is None
        assert unprinted(reader.blocks[1][1], second["stdout"]) == ["7"]  # 3 holds, about is free
        third = reader.run(2)
        assert "ValueError: x is 2" in third["error"] and "raise ValueError" in third["error"]
        assert (folder / "made.txt").read_text() == "hi"  # in the reader's own folder
        assert reader.run(3) == {"skipped": 2}
        assert "NameError" in stranger.run(0)["error"]  # a namespace per file
    finally:
        reader.close()
        stranger.close()
