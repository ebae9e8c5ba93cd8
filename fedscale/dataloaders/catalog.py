"""The names of the data sets, partitions and models this package provides: the choices of
the ``data_set``, ``partition`` and ``model`` job keys. A light module, so reading a job
file does not import the loaders or torch."""

# The data sets of token sequences, the only ones a language model trains on; "blog" is FedScale's
# name for Reddit in its job files (benchmark/configs/reddit/reddit.yml).
TEXT_DATA_SETS: tuple[str, ...] = ("reddit", "blog", "stackoverflow")
DATA_SET_ALIASES: dict[str, str] = {"blog": "reddit"}
DATA_SETS: tuple[str, ...] = ("digits", "femnist", "cifar10", "openImg", "google_speech") + TEXT_DATA_SETS
PARTITIONS: tuple[str, ...] = ("iid", "dirichlet")
# Classifiers take a data set's samples; language models take token ids (fedscale.dataloaders.models).
CLASSIFIERS: tuple[str, ...] = ("logistic", "mlp", "cnn", "resnet18", "resnet34", "resnet50", "mobilenet_v2",
                                "shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "shufflenet_v2_x1_5",
                                "shufflenet_v2_x2_0")
LANGUAGE_MODELS: tuple[str, ...] = ("lstm", "albert-base-v2", "transformer-small")
MODEL_NAMES: tuple[str, ...] = CLASSIFIERS + LANGUAGE_MODELS
# Training samples of the data sets whose size is fixed (the client-mapped ones' come from their files).
TRAINING_SET_SIZES: dict[str, int] = {"digits": 1437, "cifar10": 50000}
# What data_dir holds for each data set read from files, in FedScale's layouts (the loaders' docstrings).
DATA_DIR_CONTENTS: dict[str, str] = {
    "femnist": "FedScale's FEMNIST files (client_data_mapping/ and the images)",
    "cifar10": "torchvision's cifar-10-batches-py/ or the binary cifar-10-batches-bin/",
    "openImg": "FedScale's Open Images files (client_data_mapping/, train/ and test/)",
    "google_speech": "FedScale's Speech Commands files (client_data_mapping/, train/ and test/)",
    **{name: "vocab.txt, client_data_mapping/ listing the text files, train/ and test/" for name in TEXT_DATA_SETS},
}
