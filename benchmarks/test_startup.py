"""Start-up cost of the command line, each command in a fresh process.
``unlearnbench --help`` must answer in under 1 s without importing torch;
the other commands' times are reported (they import torch, ~1-2 s)."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest
from _bench import REPO, UNLEARNBENCH, report

HELP_TARGET_S = 1.0

COMMANDS = {
    "--help": ["--help"],
    "--version": ["--version"],
    "run --help": ["run", "--help"],
    "list": ["list"],
    "run --dry-run": ["run", "--dry-run"],
    "status": ["status", "--out", "results"],
}


def test_help_imports_no_torch():
    code = ("import sys\nfrom unlearnbench.harness.cli import main\n"
            "for argv in (['--help'], ['run', '--help'], ['sweep', '--help']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "heavy = sorted(m for m in ('torch', 'numpy', 'pandas', 'sklearn') if m in sys.modules)\n"
            "print(heavy)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip().splitlines()[-1] == "[]", proc.stdout


@pytest.mark.parametrize("command", list(COMMANDS))
def test_startup(benchmark, bench, command):
    times: list[float] = []

    def start():
        t0 = time.perf_counter()
        proc = subprocess.run([UNLEARNBENCH, *COMMANDS[command]], capture_output=True, text=True, cwd=REPO)
        times.append(time.perf_counter() - t0)
        assert proc.returncode == 0, proc.stderr

    benchmark.pedantic(start, rounds=bench.rounds(5), iterations=1)
    median = sorted(times)[len(times) // 2]
    target = f" (target < {HELP_TARGET_S:.0f} s)" if command == "--help" else ""
    report(benchmark, f"start-up, unlearnbench {command}: {median:.2f} s{target}", seconds=median)
    if command == "--help":
        bench.check(median < HELP_TARGET_S, f"unlearnbench --help took {median:.2f} s (target < {HELP_TARGET_S} s)")
