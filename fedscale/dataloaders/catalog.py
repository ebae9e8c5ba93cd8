"""The names of the data sets, partitions and models this package provides: the choices of
the ``data_set``, ``partition`` and ``model`` job keys. A light module, so reading a job
file does not import the loaders or torch."""

DATA_SETS: tuple[str, ...] = ("digits", "femnist")
PARTITIONS: tuple[str, ...] = ("iid", "dirichlet")
MODEL_NAMES: tuple[str, ...] = ("logistic", "mlp", "cnn")
# Training samples of the data sets whose size is fixed (femnist's comes from its files).
TRAINING_SET_SIZES: dict[str, int] = {"digits": 1437}
