"""Regenerates the Python stubs of protos/job_api.proto into fedscale/cloud/channels/.

Usage: python protos/generate.py [OUT_ROOT]   (OUT_ROOT defaults to the repository root)

The proto is mapped to the package path so the generated modules import each other as
``fedscale.cloud.channels.job_api_pb2``. Needs grpcio-tools (the ``dev``/``test`` extras).
"""
import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR = "fedscale/cloud/channels"


def generate(out_root: Path) -> None:
    """Write job_api_pb2.py and job_api_pb2_grpc.py under ``out_root/fedscale/cloud/channels``."""
    (out_root / PACKAGE_DIR).mkdir(parents=True, exist_ok=True)
    args = [
        "protoc",
        f"-I{PACKAGE_DIR}={ROOT / 'protos'}",
        f"-I{Path(protoc.__file__).parent / '_proto'}",
        f"--python_out={out_root}",
        f"--grpc_python_out={out_root}",
        f"{PACKAGE_DIR}/job_api.proto",
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed on protos/job_api.proto")


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT)
