"""Start-up time of the `mailservice` command: `--help`, `deadline` and `requests list` against a bare Python start.

Each figure is the median wall time of N whole processes, started in turn (bare Python, then each command, then
again), so a machine whose speed drifts moves all of them alike. Beside it, the median CPU time (user + system) of
the same processes: the other load of a shared machine lengthens the wall time far more than it. The load average
is printed with the figures. `requests list` runs on a fresh SQLite database with 20 requests, made once before the
timing. The target of issue 15 is at most 0.4 s per command (wall, idle machine). Last, the import time of each command
(`python -X importtime`: the sum of every module's own time, one run after the timing), which the load of a shared
machine inflates less than the wall time and which shows where a start goes.

    .venv/bin/python bench/cli.py            # N = 11
    .venv/bin/python bench/cli.py --quick    # N = 5

The last line of the output is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 0.4
BIN = Path(sys.executable).parent


def command_line() -> list[str]:
    """The installed `mailservice` script next to this Python (what a user runs), else `python -m mailservice`."""
    script = BIN / "mailservice"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "mailservice"]


def children_cpu() -> float:
    """CPU seconds (user + system) of every child process waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one whole process."""
    cpu, start = children_cpu(), time.perf_counter()
    subprocess.run(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start, children_cpu() - cpu


def import_seconds(args: list[str], env: dict[str, str]) -> float:
    """Seconds a command spends importing modules: the sum of the self times `-X importtime` prints."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", *args], env=env, capture_output=True, text=True, check=True
    )
    micros = 0
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            field = line.removeprefix("import time:").split("|")[0].strip()
            micros += int(field) if field.isdigit() else 0
    return micros / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=11, help="runs of each command (default 11)")
    parser.add_argument("--quick", action="store_true", help="5 runs of each")
    args = parser.parse_args(argv)
    n = 5 if args.quick else args.n
    if n < 1:
        parser.error("--n must be positive")
    cli = command_line()
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as folder:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAILSERVICE_")}
        env |= {"MAILSERVICE_DATA_DIR": folder, "MAILSERVICE_ENVIRONMENT": "development", "COLUMNS": "100"}
        subprocess.run([*cli, "db", "upgrade"], env=env, capture_output=True, check=True)
        for i in range(20):
            subprocess.run(
                [*cli, "requests", "register", "--channel", "phone", "--name", f"Заявитель {i}",
                 "--subject", "Часы приёма", "--text", "Спрашивает часы приёма"],
                env=env, capture_output=True, check=True,
            )  # fmt: skip
        cases = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "mailservice --help": [*cli, "--help"],
            "mailservice deadline": [*cli, "deadline", "--law", "8-fz", "--registered", "2026-03-01"],
            "mailservice requests list": [*cli, "requests", "list"],
        }
        for case in cases.values():  # warm-up: bytecode caches, page cache
            run(case, env)
        times: dict[str, list[float]] = {name: [] for name in cases}
        cpu: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(n):
            for name, case in cases.items():
                wall, used = run(case, env)
                times[name].append(wall)
                cpu[name].append(used)
        # The same commands through this Python (`-m mailservice` for the script), for their import times.
        as_module = {name: case if case[0] == sys.executable else [sys.executable, "-m", "mailservice", *case[1:]]
                     for name, case in cases.items()}  # fmt: skip
        imports = {name: import_seconds(case[1:], env) for name, case in as_module.items()}
    load = os.getloadavg()
    medians = {name: statistics.median(values) for name, values in times.items()}
    cpu_medians = {name: statistics.median(values) for name, values in cpu.items()}
    baseline = medians["python -c pass"]
    print(f"{'command':<28}{'median s':>10}{'min s':>8}{'max s':>8}{'x python':>10}{'CPU s':>8}{'import s':>10}")
    for name, values in times.items():
        print(
            f"{name:<28}{medians[name]:>10.3f}{min(values):>8.3f}{max(values):>8.3f}{medians[name] / baseline:>10.1f}"
            f"{cpu_medians[name]:>8.3f}{imports[name]:>10.3f}"
        )
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")
    within = {name: medians[name] <= TARGET_SECONDS for name in cases if name != "python -c pass"}
    print(f"target: at most {TARGET_SECONDS} s each; met: {', '.join(k for k, v in within.items() if v) or 'none'}")
    result = {
        "bench": "cli",
        "runs": n,
        "median_seconds": {name: round(value, 4) for name, value in medians.items()},
        "median_cpu_seconds": {name: round(value, 4) for name, value in cpu_medians.items()},
        "ratio_to_python": {name: round(value / baseline, 2) for name, value in medians.items()},
        "import_seconds": {name: round(value, 4) for name, value in imports.items()},
        "target_seconds": TARGET_SECONDS,
        "within_target": within,
        "loadavg": [round(x, 2) for x in load],
    }
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
