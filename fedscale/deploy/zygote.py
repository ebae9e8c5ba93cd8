"""A job's template process: it imports the aggregator's and the executors' code once (torch,
gRPC, the data loaders: about a second of CPU) and forks each of the job's processes from itself.

A process forked from it starts at once and shares those pages with its siblings, so a job costs
one import instead of one per process; a sweep running many small jobs side by side gains most.
The template never runs a torch operation, so no thread pool exists when it forks (a forked
child of a process that used OpenMP can hang in its own first parallel region).

It is started before the job's checks run, so that its imports overlap them. Each child retitles
itself (``ps`` shows ``fedscale <name> <run folder>``), and the template ``fedscale template <run
folder>`` once it knows the folder.

Protocol, on the template's stdin and stdout, one JSON object per line. The launcher asks
``{"program": "aggregator" | "executor" | "preflight", "args": [...], "out": path, "title": text,
"env": {...}}`` (``env``: variables for that child alone, such as the aggregator's W&B key, which
so never sits in the environment block of any process); the template answers
``{"started": pid}`` in the order asked, and ``{"exited": pid, "code": c}`` when a child ends (c
as ``Popen.returncode``: the exit status, or minus the signal that ended it). The template ends
when its stdin closes; every child dies with it (Linux parent-death signal). It leads the job's
process group and ignores Ctrl-C and SIGTERM sent to the group, so that it outlives its children
and reports how each ended.
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import importlib
import json
import os
import select
import signal
import sys
import traceback
from pathlib import Path
from typing import Any

from fedscale.cloud.process_end import exit_now
from fedscale.deploy.local import child_setup

PROGRAMS = {"aggregator": "fedscale.cloud.aggregation.aggregator",
            "executor": "fedscale.cloud.execution.executor",
            "preflight": "fedscale.cloud.preflight"}
PR_SET_NAME = 15


def exit_code(status: int) -> int:
    """A wait status as ``Popen.returncode`` reports it."""
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def set_title(title: str) -> None:
    """Show ``title`` as this process's command line (``ps``, ``/proc/<pid>/cmdline``), cut to the
    room the original one had: it is rewritten in place, from ``/proc/self/stat``'s arg_start and
    arg_end."""
    with open("/proc/self/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    start, end = int(fields[45]), int(fields[46])  # fields 48 and 49, counted from 1 before the name
    room = end - start
    ctypes.memmove(start, title.encode()[:room - 1].ljust(room, b"\0"), room)


def _run_child(program: str, args: list[str], out: str, title: str, env: dict[str, str], parent: int,
               inherited: list[int]) -> None:
    """In a forked child: become the program, its output appended to ``out``; never returns.
    ``inherited`` are the template's own descriptors, closed here."""
    code = 1
    try:
        child_setup()()  # die with the template
        if os.getppid() != parent:
            os._exit(1)
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_NAME, f"fedscale-{program}".encode()[:15])
        set_title(title)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.environ.update(env)
        null = os.open(os.devnull, os.O_RDONLY)
        output = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.dup2(null, 0)
        os.dup2(output, 1)
        os.dup2(output, 2)
        for fd in {null, output, *inherited} - {0, 1, 2}:
            os.close(fd)
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        code = importlib.import_module(PROGRAMS[program]).main(args)
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        exit_now(code)


def serve() -> None:
    """Answer the launcher on stdin/stdout until stdin closes."""
    requests, replies = sys.stdin.fileno(), os.dup(sys.stdout.fileno())
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # a stray print must not break the protocol
    children: dict[int, int] = {}  # pidfd -> pid
    pending = b""

    def reply(message: dict[str, Any]) -> None:
        os.write(replies, (json.dumps(message) + "\n").encode())

    while True:
        ready, _, _ = select.select([requests, *children], [], [])
        for fd in ready:
            if fd in children:
                pid = children.pop(fd)
                os.close(fd)
                _, status = os.waitpid(pid, 0)
                reply({"exited": pid, "code": exit_code(status)})
                continue
            chunk = os.read(requests, 65536)
            if not chunk:
                return
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                request = json.loads(line)
                if request["program"] not in PROGRAMS:
                    raise ValueError(f"unknown program {request['program']!r}")
                set_title(f"fedscale template {Path(request['out']).parent}")
                parent = os.getpid()
                pid = os.fork()
                if pid == 0:
                    _run_child(request["program"], list(request["args"]), request["out"], request["title"],
                               dict(request.get("env", {})), parent, [replies, *children])
                children[os.pidfd_open(pid)] = pid
                reply({"started": pid})


def preload() -> None:
    """Import the programs and what they import only when they run (the robust methods)."""
    from fedscale.robust.aggregators import AGGREGATORS
    from fedscale.robust.attacks import ATTACKS, DATA_ATTACKS
    from fedscale.robust.preaggregators import PREAGGREGATORS
    for module in PROGRAMS.values():
        importlib.import_module(module)
    for table in (AGGREGATORS, PREAGGREGATORS, ATTACKS, DATA_ATTACKS):
        for name in table:
            table[name]


def main() -> None:
    parser = argparse.ArgumentParser(description="A job's template process (started by its launcher).")
    parser.add_argument("--job-folder", required=True, help="where the job's run folders are (names it in ps)")
    parser.parse_args()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    preload()
    gc.freeze()  # the children's collections skip what the template imported, so its pages stay shared
    serve()
    sys.stderr.flush()
    os._exit(0)  # skip the interpreter's teardown of torch (half a second the driver would wait for)


if __name__ == "__main__":
    main()
