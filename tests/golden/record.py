"""Re-record the golden event logs: ``python -m tests.golden.record [name ...]`` (default: all)."""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tests.golden import HERE, JOBS, run_job


def main(names: list[str]) -> None:
    for name in names or JOBS:
        with tempfile.TemporaryDirectory() as tmp:
            logs = run_job(name, Path(tmp))
        target = HERE / name
        target.mkdir(exist_ok=True)
        for old in target.glob("*.jsonl"):
            old.unlink()
        for file_name, lines in logs.items():
            (target / file_name).write_text("".join(line + "\n" for line in lines))
        print(f"{name}: {', '.join(f'{f} ({len(l)} lines)' for f, l in logs.items())}")


if __name__ == "__main__":
    main(sys.argv[1:])
