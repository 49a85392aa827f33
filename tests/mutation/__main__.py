"""Apply each listed mutant to the source, run its targeted tests, restore the file, and say whether the
tests caught it. By hand, not in CI:

    TEST_DATABASE_URL=postgresql://... python -m tests.mutation [--only ID[,ID]] [--list] [--report PATH]
                                                                 [--timeout SECONDS] [--no-baseline]

Exit code 0 only when every mutant run was killed; 1 when one survived, timed out, or the list is wrong
(an anchor missing or found more than once, a target pytest cannot find); 2 when the check refused to start.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tests.mutation.mutants import MUTANTS, Mutant

ROOT = Path(__file__).resolve().parents[2]
KILLED, SURVIVED, TIMEOUT, ANCHOR_MISSING, ERROR = "killed", "survived", "timeout", "anchor missing", "error"
FAILED_LINE = re.compile(r"^(?:FAILED|ERROR) (tests/.+?)(?: - .*)?$", re.MULTILINE)  # pytest's short summary


@dataclass
class Outcome:
    mutant: Mutant
    result: str
    seconds: float = 0.0
    detail: str = ""  # the test that killed it, or why the run says nothing about the mutant


class Stop(Exception):
    """SIGTERM or SIGHUP: leave like Ctrl-C does, through every `finally` (the file is restored)."""


def _stop(signum: int, _frame: object) -> None:
    raise Stop(signal.Signals(signum).name)


def anchor_count(mutant: Mutant) -> int:
    return (ROOT / mutant.file).read_bytes().decode("utf-8").count(mutant.anchor)


def dirty_files(files: list[str]) -> list[str]:
    """The files among `files` that differ from the last commit (or are not tracked at all)."""
    changed = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all", "--", *files], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    tracked = subprocess.run(["git", "ls-files", "--", *files], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return sorted({line[3:] for line in changed.splitlines()} | (set(files) - set(tracked)))


def _kill_group(process: subprocess.Popen[str]) -> str:
    """Ctrl-C to pytest's whole process group (its teardown drops the test database), then SIGKILL."""
    output = ""
    for sig, grace in ((signal.SIGINT, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            output, _ = process.communicate(timeout=grace)
            break
        except subprocess.TimeoutExpired:
            continue
    return output or ""


def run_pytest(targets: tuple[str, ...], timeout: float) -> tuple[int | None, str]:
    """(pytest's exit code or None on timeout, its output). Its own session, so a Ctrl-C here reaches only us
    and we stop it ourselves; no bytecode written, so a mutant never leaves a .pyc behind."""
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *targets]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, _kill_group(process)
    except BaseException:
        _kill_group(process)
        raise
    return process.returncode, output


def judge(code: int | None, output: str) -> tuple[str, str]:
    if code is None:
        return TIMEOUT, ""
    if code == 0:
        return SURVIVED, ""
    if code == 1:
        failed = FAILED_LINE.findall(output)
        return KILLED, failed[0] if failed else "a test failed"
    if code == 2 and "during collection" in output:  # the mutant broke an import
        return KILLED, "collection error"
    tail = " ".join(output.strip().splitlines()[-1:])[:200]
    return ERROR, f"pytest exit {code}: {tail}"


def run_mutant(mutant: Mutant, timeout: float) -> Outcome:
    path = ROOT / mutant.file
    original = path.read_bytes()
    text = original.decode("utf-8")
    found = text.count(mutant.anchor)
    if found != 1:
        return Outcome(mutant, ANCHOR_MISSING, detail=f"anchor found {found} times in {mutant.file}")
    mutated = text.replace(mutant.anchor, mutant.replacement, 1).encode("utf-8")
    if mutated == original:
        return Outcome(mutant, ERROR, detail="the replacement changes nothing")
    stat = path.stat()
    started = time.monotonic()
    try:
        path.write_bytes(mutated)
        code, output = run_pytest(mutant.targets, timeout)
    finally:
        path.write_bytes(original)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        if path.read_bytes() != original:  # never expected; never silent either
            raise SystemExit(f"could not restore {mutant.file}: check it with git diff")
    result, detail = judge(code, output)
    return Outcome(mutant, result, time.monotonic() - started, detail)


def baseline(mutants: list[Mutant], timeout: float) -> bool:
    """The targets pass on the unchanged tree; otherwise a 'killed' would prove nothing."""
    targets = tuple(dict.fromkeys(target for mutant in mutants for target in mutant.targets))
    print(f"baseline: {len(targets)} targets on the unchanged tree ...", flush=True)
    started = time.monotonic()
    code, output = run_pytest(targets, timeout * 4)
    print(f"baseline: {'green' if code == 0 else 'NOT GREEN'} in {time.monotonic() - started:.0f} s", flush=True)
    if code != 0:
        print(output[-4000:])
    return code == 0


def markdown(outcomes: list[Outcome], *, seconds: float) -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    counts = {result: sum(1 for o in outcomes if o.result == result) for result in (KILLED, SURVIVED, TIMEOUT, ANCHOR_MISSING, ERROR)}
    lines = [
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on commit {commit}: {len(outcomes)} mutants in {seconds / 60:.0f} min; "
        + ", ".join(f"{n} {result}" for result, n in counts.items() if n)
        + ".",
        "",
        "| Mutant | File | Rule it breaks | Result | Caught by | Time |",
        "|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        rule = o.mutant.rule.replace("|", "\\|")
        detail = o.detail.replace("|", "\\|")
        lines.append(f"| `{o.mutant.id}` | `{o.mutant.file}` | {rule} | **{o.result}** | {detail} | {o.seconds:.0f} s |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutation", description="Mutation check of the safety rules (docs/mutation.md).")
    parser.add_argument("--only", help="comma-separated mutant ids to run")
    parser.add_argument("--list", action="store_true", help="list the mutants and check their anchors; run nothing")
    parser.add_argument("--report", type=Path, help="write a Markdown table of the results to this path")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per mutant's test run (default 300)")
    parser.add_argument("--no-baseline", action="store_true", help="skip running the targets on the unchanged tree first")
    args = parser.parse_args(argv)

    ids = [mutant.id for mutant in MUTANTS]
    if duplicates := sorted({i for i in ids if ids.count(i) > 1}):
        print(f"duplicate mutant ids: {', '.join(duplicates)}")
        return 2
    chosen = list(MUTANTS)
    if args.only:
        wanted = [i.strip() for i in args.only.split(",") if i.strip()]
        if unknown := [i for i in wanted if i not in ids]:
            print(f"no such mutant: {', '.join(unknown)} (see --list)")
            return 2
        chosen = [mutant for mutant in MUTANTS if mutant.id in wanted]

    if args.list:
        wrong = 0
        for mutant in chosen:
            found = anchor_count(mutant)
            wrong += found != 1
            state = "" if found == 1 else f"   <-- ANCHOR FOUND {found} TIMES"
            print(f"{mutant.id:42} {mutant.file}{state}\n    {mutant.rule}\n    -> {' '.join(mutant.targets)}")
        print(f"{len(chosen)} mutants, {wrong} with an anchor not found exactly once")
        return 1 if wrong else 0

    files = sorted({mutant.file for mutant in chosen})
    if dirty := dirty_files(files):
        print("refusing to run: these files differ from the last commit (commit or stash them first):\n  " + "\n  ".join(dirty))
        return 2
    if not os.environ.get("TEST_DATABASE_URL"):
        print("note: TEST_DATABASE_URL is not set; the tests use the embedded PostgreSQL")

    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C, even when started with SIGINT ignored
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)
    started = time.monotonic()
    outcomes: list[Outcome] = []
    try:
        if not args.no_baseline and not baseline(chosen, args.timeout):
            print("refusing to judge mutants: the targeted tests fail on the unchanged tree")
            return 2
        for number, mutant in enumerate(chosen, start=1):
            outcome = run_mutant(mutant, args.timeout)
            outcomes.append(outcome)
            detail = f"  ({outcome.detail})" if outcome.detail else ""
            print(f"[{number:3}/{len(chosen)}] {mutant.id:42} {outcome.result:9} {outcome.seconds:5.0f} s{detail}", flush=True)
    except (KeyboardInterrupt, Stop) as stop:
        print(
            f"\ninterrupted ({stop.args[0] if stop.args else 'Ctrl-C'}); every file is restored; {len(outcomes)} of "
            f"{len(chosen)} mutants were run"
        )
        return 1
    finally:
        if dirty := dirty_files(files):
            print("WARNING: after the run these files differ from the last commit: " + ", ".join(dirty))

    seconds = time.monotonic() - started
    counts = {result: sum(1 for o in outcomes if o.result == result) for result in (KILLED, SURVIVED, TIMEOUT, ANCHOR_MISSING, ERROR)}
    print("\n" + ", ".join(f"{n} {result}" for result, n in counts.items()) + f" of {len(outcomes)} mutants in {seconds / 60:.1f} min")
    for outcome in outcomes:
        if outcome.result != KILLED:
            print(f"  {outcome.result:9} {outcome.mutant.id}: {outcome.mutant.rule}" + (f" [{outcome.detail}]" if outcome.detail else ""))
    if args.report:
        args.report.write_text(markdown(outcomes, seconds=seconds), encoding="utf-8")
        print(f"report written to {args.report}")
    return 0 if outcomes and all(o.result == KILLED for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
