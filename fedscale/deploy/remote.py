"""The host side of the ssh launcher: ``python -m fedscale.deploy.remote check|start|stop``.

Run over SSH on a worker host, it answers in JSON lines on stdout:

- ``check --path P ...``: this interpreter's Python and package versions, which paths exist, and
  the host's name, so the driver refuses a host that would fail later, in one line, before
  anything starts.
- ``start``: reads one JSON line on stdin, ``{"program": "executor", "args": [...], "env": {...}}``
  (the job secret and TLS certificates travel here, never on a command line), becomes the leader
  of a new session and process group, prints ``{"pid": ..., "start": ...}`` and replaces itself
  with the program, whose output then streams back over the SSH channel.
- ``stop --pgid G --start S [--kill]``: signals process group ``G`` if its leader is still the
  process that started at ``S`` (so a reused pid is never signalled).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
from pathlib import Path

from fedscale import __version__
from fedscale.deploy.registry import process_start
from fedscale.deploy.zygote import PROGRAMS
MAX_REQUEST_BYTES = 1 << 20


def python_version() -> str:
    return "{}.{}".format(*sys.version_info[:2])


def check(paths: list[str]) -> dict[str, object]:
    return {"python": python_version(), "fedscale": __version__, "host": socket.gethostname(),
            "executable": sys.executable, "paths": {path: Path(path).exists() for path in paths}}


def start(request: dict[str, object]) -> None:
    """Become a process group leader, say who we are, and become the requested program."""
    program = request.get("program")
    args, env = request.get("args", []), request.get("env", {})
    if program not in PROGRAMS or not isinstance(args, list) or not isinstance(env, dict):
        raise SystemExit(f"fedscale.deploy.remote: not a start request: {str(request)[:200]}")
    if os.getsid(0) != os.getpid():  # sshd usually made us a session leader already
        os.setsid()
    print(json.dumps({"pid": os.getpid(), "start": process_start(os.getpid())}), flush=True)
    os.dup2(sys.stdout.fileno(), sys.stderr.fileno())
    os.execve(sys.executable, [sys.executable, "-m", PROGRAMS[program], *map(str, args)],
              {**os.environ, **{str(k): str(v) for k, v in env.items()}})


def stop(pgid: int, start_time: int, kill: bool) -> bool:
    """Signal group ``pgid`` if its leader is the recorded process or gone; whether any was left."""
    started = process_start(pgid)
    if started is not None and started != start_time:
        return False
    try:
        os.killpg(pgid, signal.SIGKILL if kill else signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("check")
    p.add_argument("--path", action="append", default=[])
    sub.add_parser("start")
    p = sub.add_parser("stop")
    p.add_argument("--pgid", type=int, action="append", required=True)
    p.add_argument("--start", type=int, action="append", required=True)
    p.add_argument("--kill", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "check":
        print(json.dumps(check(args.path)), flush=True)
    elif args.command == "start":
        line = sys.stdin.buffer.readline(MAX_REQUEST_BYTES)
        start(json.loads(line))
    else:
        alive = [stop(g, s, args.kill) for g, s in zip(args.pgid, args.start)]
        print(json.dumps({"signalled": sum(alive)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
