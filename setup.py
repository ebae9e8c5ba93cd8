"""Installs the fedscale package and its ``fedscale`` command.

Every dependency is pinned: an unpinned torch would pull a multi-GB CUDA build, and the
generated gRPC stubs must match the grpcio they were generated for.
"""
import re
from pathlib import Path

from setuptools import find_packages, setup

VERSION = re.search(r'__version__ = "([^"]+)"', (Path(__file__).parent / "fedscale" / "__init__.py").read_text())[1]

setup(
    name="fedscale",
    version=VERSION,
    description="A federated-learning systems simulator: real gRPC rounds, virtual time, robust aggregation.",
    python_requires=">=3.10",
    packages=find_packages(include=["fedscale", "fedscale.*", "thirdparty", "thirdparty.*"]),
    package_data={"fedscale": ["jobs/*.yml", "cloud/internal/data/*.npz", "cloud/config/*.tsv"]},
    install_requires=[
        "torch==2.13.0",
        "numpy==2.4.6",
        "grpcio==1.85.3",
        "protobuf==7.36.2",
        "pyyaml==6.0.3",
        "pydantic==2.14.4",
        "scikit-learn==1.9.1",
        "scipy==1.17.1",
        "xgboost-cpu==3.2.0",
        "pillow==13.0.0",
        "rich==14.3.4",
        "matplotlib==3.11.2",
        "opentelemetry-api==1.45.2",
        "cryptography==48.0.0",
        "paramiko==5.1.0",
    ],
    extras_require={
        "dev": ["grpcio-tools==1.85.1"],
        "mcp": ["mcp==2.3.0"],
        "wandb": ["wandb==0.31.0"],
        "otel": ["opentelemetry-sdk==1.45.2", "opentelemetry-exporter-otlp-proto-http==1.45.2"],
        "slurm": ["submitit==1.5.4"],
        "kubernetes": ["kubernetes==37.0.2"],
        "test": ["pytest==9.0.3", "grpcio-tools==1.85.1", "mcp==2.3.0", "wandb==0.31.0", "opentelemetry-sdk==1.45.2",
                 "opentelemetry-exporter-otlp-proto-http==1.45.2", "submitit==1.5.4", "kubernetes==37.0.2",
                 "kubernetes-validate==1.37.0"],
    },
    entry_points={"console_scripts": ["fedscale=fedscale.cli:main"]},
)
