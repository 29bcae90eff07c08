"""The README tells the truth: its set-up commands are what CI runs, its other commands work.

Its Python examples, and those of docs/, run in tests/project/test_docs.py.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_readme_starts_with_exactly_two_setup_commands():
    first_two = blocks("bash")[:2]
    assert len(first_two) == 2
    assert all(len(b.strip().splitlines()) == 1 for b in first_two)
    install_and_demo, install_and_test = (b.strip() for b in first_two)
    assert install_and_demo.endswith("backprop demo")
    assert install_and_test.endswith("python3 -m pytest")
    # no other command block comes before them
    assert README.index("```bash") < README.index("```python")


def test_ci_runs_the_second_command():
    second = blocks("bash")[1].strip()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert second in ci


def test_demo_command_trains_and_draws(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "backprop", "demo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    losses = [float(x) for x in re.findall(r"loss ([\d.]+)", result.stdout)]
    assert len(losses) >= 5 and losses[-1] < losses[0] / 10
    svg = (tmp_path / "neuron.svg").read_text()
    assert "<svg" in svg and "x1" in svg and "tanh" in svg


def test_the_notebook_command_installs_jupyter_and_opens_the_notebook(tmp_path):
    """The README's one command for the notebook: its pip part installs an extra that has
    Jupyter's notebook server in it, and the rest, run as written from the repository (plus
    a fixed port and token, and no browser), serves seed_notebook.ipynb from notebooks/."""
    (command,) = [b.strip() for b in blocks("bash") if "jupyter notebook" in b]
    install, _, rest = command.partition(" && ")
    assert install == "python3 -m pip install --break-system-packages '.[notebook]'"
    pyproject = (ROOT / "pyproject.toml").read_text()  # (tomllib is Python 3.11+)
    for extra in ("notebook", "test"):  # test: so that CI runs this test
        (requirements,) = re.findall(rf"^{extra} = \[(.*?)^\]", pyproject, flags=re.M | re.S)
        assert re.search(r'^\s*"notebook\b', requirements, flags=re.M), extra
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = "readme-test"
    extra = f" --no-browser --ip=127.0.0.1 --port={port} --IdentityProvider.token={token}"
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path), JUPYTER_CONFIG_DIR=str(tmp_path))
    with open(tmp_path / "jupyter.log", "w") as log:
        server = subprocess.Popen(["bash", "-c", rest + extra], cwd=ROOT, stdout=log,
                                  stderr=log, env=env, start_new_session=True)  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/api/contents/seed_notebook.ipynb?token={token}&content=0"
        deadline, answer = time.monotonic() + 120, None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    answer = json.load(response)
                break
            except OSError:
                time.sleep(0.5)
        log_text = (tmp_path / "jupyter.log").read_text()
        assert answer is not None, f"jupyter did not serve the notebook:\n{log_text[-3000:]}"
        assert answer["type"] == "notebook" and answer["path"] == "seed_notebook.ipynb"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    # and what `cd notebooks` is for: nn.py beside the notebook
    assert shlex.split(rest)[:2] == ["cd", "notebooks"] and (ROOT / "notebooks" / "nn.py").exists()


def _documents():
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _code(text: str) -> list[str]:
    """The fenced blocks and the inline `code` of a Markdown text."""
    fenced = re.findall(r"^[ \t]*```[^\n]*\n(.*?)^[ \t]*```", text, flags=re.M | re.S)
    prose = re.sub(r"^[ \t]*```[^\n]*\n.*?^[ \t]*```", "", text, flags=re.M | re.S)
    return fenced + re.findall(r"`([^`\n]+)`", prose)


def test_every_pip_install_works_on_the_debian_system_python():
    """The README targets Debian's system Python, where pip needs --break-system-packages."""
    commands = 0
    for path in _documents():
        for code in _code(path.read_text()):
            for m in re.finditer(r"(?:\S+ ){0,2}pip3? install[^\n]*", code):
                where = f"{path.name}: {m.group(0)!r}"
                assert m.group(0).startswith("python3 -m pip install") or (
                    " && python3 -m pip install" in m.group(0)
                ), where
                assert "--break-system-packages" in m.group(0), where
                commands += 1
    assert commands >= 4  # the two set-up commands, the notebook's, the benchmarks'


def test_no_heading_appears_twice():
    headings = re.findall(r"^(#+ .+?)\s*$", README, flags=re.M)
    assert len(headings) == len(set(headings)), [h for h in headings if headings.count(h) > 1]
    for path in sorted((ROOT / "docs").glob("*.md")):
        top = re.findall(r"^(##? .+?)\s*$", path.read_text(), flags=re.M)
        assert len(top) == len(set(top)), (path.name, top)


def test_the_command_line_examples_run(tmp_path):
    """The README's blocks of `backprop ...` commands, run as written in an empty folder."""
    examples = [b for b in blocks("bash") if b.startswith("backprop ")]
    assert len(examples) >= 2
    for number, example in enumerate(examples):
        result = subprocess.run(["bash", "-e", "-c", example], cwd=tmp_path, capture_output=True,
                                text=True, timeout=600)  # fmt: skip
        assert result.returncode == 0, f"example {number}:\n{example}\n{result.stderr[-2000:]}"
        for written in re.findall(r"--(?:save|plot|out|html|svg) (\S+)", example):
            assert (tmp_path / written).stat().st_size > 0, written
    predictions = (tmp_path / "preds.csv").read_text().splitlines()
    assert predictions[0] == "prediction,score" and len(predictions) == 3


# ---- the name users install, and what they are told (issue 17) ---------------------------------


def test_the_readme_names_the_distribution_and_installs_extras_from_the_checkout():
    pyproject = (ROOT / "pyproject.toml").read_text()
    (name,) = re.findall(r'^name = "([^"]+)"', pyproject, flags=re.M)
    assert name == "backprop-toolkit" and f"`{name}`" in README
    commands = [b.strip() for b in blocks("bash")]
    assert "python3 -m pip install --break-system-packages '.[torch]'" in commands
    for extra in re.findall(r"^(\w+) = \[", pyproject.split("[project.optional-dependencies]")[1]):
        assert f"`{extra}`" in README, extra  # every extra is named where the command is


def test_no_text_tells_a_user_to_install_another_projects_package():
    """`backprop` on the package index is another project: no install names it."""
    texts = [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "src").rglob("*.py")]
    for path in texts:
        text = path.read_text(encoding="utf-8")
        # pip install, its options, then a requirement named backprop (with extras or not)
        wrong = r"pip3? install (?:-\S+ )*['\"]?backprop(?:\[[^\]]*\])?['\"]?(?=[\s`&]|$)"
        assert not re.search(wrong, text, flags=re.M), path.name


def test_the_notebook_command_says_what_it_does_to_an_editable_install():
    before = README[: README.index("jupyter notebook --allow-root")]
    before = before[: before.rindex("```bash")].rstrip()
    paragraph = before[before.rindex("\n\n") :]
    assert "editable" in paragraph and "-e '.[notebook]'" in paragraph


def test_program_output_names_no_issue_numbers_or_stale_places():
    """What a benchmark prints, and a test's skip message, make sense without the tracker."""
    import ast

    for path in [*(ROOT / "benchmarks").glob("*.py"), *(ROOT / "tests").rglob("*.py")]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            if name not in ("print", "skip"):
                continue
            text = " ".join(
                n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and
                isinstance(n.value, str)
            )  # fmt: skip
            where = f"{path.name}:{node.lineno}"
            assert not re.search(r"\bissue\b", text, flags=re.I), where
            assert "shared seed" not in text, where
