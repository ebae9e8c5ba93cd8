"""fedscale: a federated-learning systems simulator."""

__version__ = "0.1.0"
