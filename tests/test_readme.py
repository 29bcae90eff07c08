"""The README tells the truth: its set-up commands are what CI runs, and its examples run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
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


@pytest.mark.parametrize("code", blocks("python"), ids=lambda c: c.splitlines()[0][:40])
def test_python_examples_run(code, tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    for line in code.splitlines():  # what a comment after print(...) shows is checked
        m = re.match(r"\s*print\(.*\)\s+# (.+?)(, then .*)?$", line)
        if m:
            assert m.group(1) in result.stdout


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
