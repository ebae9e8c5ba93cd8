"""The job driver: ``python docker/driver.py submit [job.yml] | stop <job_name> | status | keys``.

The same command as the installed ``fedscale`` console script; it also runs from a source
checkout that is not installed.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fedscale.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
