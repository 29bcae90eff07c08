"""The documented digits configuration: its wall time and test accuracy, run as a user runs it.

    python3 benchmarks/bench_digits.py            # the command in docs/training.md, once
    python3 benchmarks/bench_digits.py --seeds 0 1 2

Reads the `backprop train --dataset digits ...` command from docs/training.md (so the figure is
the documented command's), runs it in a fresh process per seed, and prints the wall time and
the test accuracy it reports; the bar is 96% within about a minute.
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def documented_command() -> list[str]:
    text = (ROOT / "docs" / "training.md").read_text(encoding="utf-8")
    found = re.search(r"^backprop train --dataset digits.*?(?<!\\)$", text, flags=re.M | re.S)
    if found is None:
        sys.exit("no `backprop train --dataset digits` command in docs/training.md")
    words = shlex.split(found.group(0).replace("\\\n", " "))
    return [w for w in words[2:] if not w.endswith(".json") and w != "--save"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args()
    command = documented_command()
    print("backprop train " + " ".join(command) + " --quiet --seed N")
    with tempfile.TemporaryDirectory() as folder:
        for seed in args.seeds:
            start = time.perf_counter()
            result = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "backprop",
                    "train",
                    *command,
                    "--quiet",
                    "--seed",
                    str(seed),
                ],
                capture_output=True,
                text=True,
                cwd=folder,
                check=True,
            )
            took = time.perf_counter() - start
            (line,) = [x for x in result.stdout.splitlines() if x.startswith("test accuracy")]
            accuracy = float(line.split()[2].rstrip("%"))
            verdict = "meets" if accuracy >= 96 and took <= 90 else "misses"
            print(f"seed {seed}: {line}, {took:.1f} s wall ({verdict} 96% within about a minute)")


if __name__ == "__main__":
    main()
