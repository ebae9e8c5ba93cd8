"""Stable public names: event-log tags, gradient policies, the secret's metadata key and environment variable.

The sweep, the report and users' notebooks match on these strings: add new ones, never rename.
The gradient policies are the names of the registered server algorithms.
"""
from fedscale.cloud.aggregation.server_algorithms import SERVER_ALGORITHMS

JOB_BEGIN = "JOB_BEGIN"
EXECUTOR_JOINED = "EXECUTOR_JOINED"
EXECUTOR_LOST = "EXECUTOR_LOST"
ROUND_BEGIN = "ROUND_BEGIN"
ROUND_END = "ROUND_END"
TEST_RESULT = "TEST_RESULT"
CLIENT_FAILED = "CLIENT_FAILED"
CLIENTS_REASSIGNED = "CLIENTS_REASSIGNED"
JOB_END = "JOB_END"

STATUS_COMPLETED = "completed"
STATUS_FAILED = "failed"
STATUS_STOPPED = "stopped"
STATUS_DIVERGED = "diverged"

# how the aggregator aggregates: in synchronous rounds, or in buffered asynchronous steps
# (FedBuff; a job whose aggregator_entry is async_aggregator.py), the ``mode`` of its events
MODE_SYNC = "sync"
MODE_ASYNC = "async"

GRADIENT_POLICIES = tuple(SERVER_ALGORITHMS)

SECRET_METADATA_KEY = "x-fedscale-secret"
SECRET_ENV = "FEDSCALE_JOB_SECRET"

AGGREGATOR_LOG = "aggregator.jsonl"
JOB_FILE = "job.json"


def executor_id(number: int) -> str:
    """The name of a job's ``number``-th executor (from 1): ``executor-<number>``."""
    return f"executor-{number}"


def executor_log_name(executor_id: str) -> str:
    """File name of an executor's event log inside the run folder."""
    return f"{executor_id}.jsonl"


def console_output_name(process: str) -> str:
    """File name, inside the run folder, of a process's console output (where tracebacks go);
    ``process`` is ``aggregator`` or an executor id."""
    return f"{process}.out"
