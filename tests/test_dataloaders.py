"""Tests for fedscale.dataloaders: loaders, partitions, the federated entry point and models."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from fedscale.dataloaders.catalog import CLASSIFIERS
from fedscale.dataloaders.dataset import ArrayDataset, DataError
from fedscale.dataloaders.digits import load_digits
from fedscale.dataloaders.federated import load_federated_data
from fedscale.dataloaders.femnist import MAPPING_DIR, load_femnist, write_femnist_fixture
from fedscale.dataloaders.models import MODEL_NAMES, build_model
from fedscale.dataloaders.partition import dirichlet_partition, iid_partition, map_file_partition

NUM_CLIENTS, SAMPLES_PER_CLIENT = 4, 8


@pytest.fixture(scope="module")
def digits() -> tuple[ArrayDataset, ArrayDataset]:
    return load_digits(seed=0)


@pytest.fixture
def femnist_dir(tmp_path: Path) -> Path:
    return Path(write_femnist_fixture(tmp_path / "femnist", NUM_CLIENTS, SAMPLES_PER_CLIENT, seed=3))


def first_train_image(root: Path) -> Path:
    return root / (root / MAPPING_DIR / "train.csv").read_text().splitlines()[1].split(",")[1]


def write_text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def assert_exact_cover(parts: list[np.ndarray], num_samples: int) -> None:
    joined = np.concatenate(parts)
    assert np.array_equal(np.sort(joined), np.arange(num_samples))


def assert_one_line_naming(error: pytest.ExceptionInfo[DataError], path: Path) -> None:
    message = str(error.value)
    assert "\n" not in message and str(path) in message and "expected" in message


def label_skew(labels: np.ndarray, parts: list[np.ndarray]) -> float:
    """Mean total-variation distance between each client's label mix and the global one."""
    num_classes = labels.max() + 1
    overall = np.bincount(labels, minlength=num_classes) / len(labels)
    mixes = [np.bincount(labels[p], minlength=num_classes) / len(p) for p in parts]
    return float(np.mean([0.5 * np.abs(mix - overall).sum() for mix in mixes]))


def test_digits_split_is_stratified_standardised_and_seeded(digits: tuple[ArrayDataset, ArrayDataset]) -> None:
    train, test = digits
    assert (len(train), len(test)) == (1437, 360)
    assert train.input_shape == (1, 8, 8) and train.x.dtype == torch.float32 and train.num_classes == 10
    everything = torch.cat([train.y, test.y]).numpy()
    expected_test = 0.2 * np.bincount(everything)
    assert np.all(np.abs(np.bincount(test.y.numpy()) - expected_test) <= 1)
    assert abs(train.x.mean().item()) < 1e-4 and abs(train.x.std().item() - 1) < 1e-3
    again, other = load_digits(seed=0)[0], load_digits(seed=1)[0]
    assert torch.equal(again.x, train.x) and torch.equal(again.y, train.y)
    assert not torch.equal(other.y, train.y)


@pytest.mark.parametrize("num_samples, num_clients", [(103, 10), (10, 10), (3, 5)])
def test_iid_partition_sizes(num_samples: int, num_clients: int) -> None:
    parts = iid_partition(num_samples, num_clients, seed=1)
    sizes = [len(p) for p in parts]
    assert len(parts) == num_clients and max(sizes) - min(sizes) <= 1
    assert_exact_cover(parts, num_samples)
    if num_samples >= num_clients:
        assert min(sizes) >= 1
    assert all(np.array_equal(a, b) for a, b in zip(parts, iid_partition(num_samples, num_clients, seed=1)))


def test_dirichlet_partition_is_deterministic_and_leaves_no_client_empty() -> None:
    labels = np.random.default_rng(0).integers(0, 10, size=300)
    parts = dirichlet_partition(labels, num_clients=60, alpha=0.01, seed=5)
    assert len(parts) == 60 and min(len(p) for p in parts) >= 1
    assert_exact_cover(parts, len(labels))
    again = dirichlet_partition(labels, num_clients=60, alpha=0.01, seed=5)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))


def test_dirichlet_skew_grows_as_alpha_shrinks() -> None:
    labels = np.random.default_rng(0).integers(0, 10, size=2000)
    skews = [label_skew(labels, dirichlet_partition(labels, 20, alpha, seed=2)) for alpha in (100.0, 1.0, 0.05)]
    assert skews[0] < skews[1] < skews[2]


def test_map_file_partition_orders_clients_by_first_appearance(tmp_path: Path) -> None:
    path = write_text(tmp_path / "map.csv", "client_id,sample_path,extra\nb,4,x\na,0,y\n\nb, 2 ,z\n")
    parts = map_file_partition(path, num_samples=5)
    assert [p.tolist() for p in parts] == [[4, 2], [0]]


@pytest.mark.parametrize(
    "body, line",
    [
        ("client_id,sample_path\na,0\na,zero\n", 3),
        ("client_id,sample_path\na,-1\n", 2),
        ("client_id,sample_path\na,0\nb,5\n", 3),
        ("client_id,sample_path\na,1\nb,1\n", 3),
        ("client_id,sample_path\na\n", 2),
        ("client,sample_path\na,1\n", 1),
        ("client_id,sample_path\n", None),
    ],
)
def test_map_file_partition_rejects_bad_rows(tmp_path: Path, body: str, line: int | None) -> None:
    path = write_text(tmp_path / "map.csv", body)
    with pytest.raises(DataError) as error:
        map_file_partition(path, num_samples=5)
    assert_one_line_naming(error, path)
    assert (f"{path}:{line}:" in str(error.value)) == (line is not None)


def test_map_file_partition_rejects_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError) as error:
        map_file_partition(tmp_path / "absent.csv", num_samples=5)
    assert_one_line_naming(error, tmp_path / "absent.csv")


def test_femnist_round_trip(femnist_dir: Path) -> None:
    train, test, parts = load_femnist(femnist_dir)
    assert len(train) == NUM_CLIENTS * SAMPLES_PER_CLIENT and len(test) == NUM_CLIENTS * (SAMPLES_PER_CLIENT // 4)
    assert train.input_shape == (1, 28, 28) and 0.0 <= train.x.min() and train.x.max() <= 1.0
    assert [len(p) for p in parts] == [SAMPLES_PER_CLIENT] * NUM_CLIENTS
    assert_exact_cover(parts, len(train))
    rows = (femnist_dir / MAPPING_DIR / "train.csv").read_text().splitlines()[1:]
    assert train.y.tolist() == [int(row.split(",")[-1]) for row in rows]
    assert train.num_classes == max(train.y.max(), test.y.max()).item() + 1
    again = load_femnist(femnist_dir)[0]
    assert torch.equal(again.x, train.x)


def test_femnist_data_map_file_replaces_train_csv(femnist_dir: Path, tmp_path: Path) -> None:
    rows = (femnist_dir / MAPPING_DIR / "train.csv").read_text().splitlines()
    header, first_client, second_client = rows[0], rows[1:3], rows[-2:]
    subset = [header, second_client[0], *first_client, second_client[1]]
    map_file = write_text(tmp_path / "subset.csv", "\n".join(subset))
    train, _, parts = load_femnist(femnist_dir, str(map_file))
    assert len(train) == 4 and [p.tolist() for p in parts] == [[0, 3], [1, 2]]


def test_femnist_resizes_and_greys_other_images(femnist_dir: Path) -> None:
    Image.new("RGB", (40, 40), (255, 255, 255)).save(first_train_image(femnist_dir))
    train = load_femnist(femnist_dir)[0]
    assert train.input_shape == (1, 28, 28) and torch.allclose(train.x[0], torch.ones(1, 28, 28))


def break_folder(root: Path) -> Path:
    return root / "missing"


def break_train_csv(root: Path) -> Path:
    (root / MAPPING_DIR / "train.csv").unlink()
    return root / MAPPING_DIR / "train.csv"


def break_test_csv(root: Path) -> Path:
    (root / MAPPING_DIR / "test.csv").unlink()
    return root / MAPPING_DIR / "test.csv"


def break_column(root: Path) -> Path:
    path = root / MAPPING_DIR / "train.csv"
    path.write_text(path.read_text().replace("label_id", "label"))
    return path


def break_label(root: Path) -> Path:
    path = root / MAPPING_DIR / "test.csv"
    lines = path.read_text().splitlines()
    lines[1] = lines[1].rsplit(",", 1)[0] + ",seven"
    path.write_text("\n".join(lines))
    return path


def break_image_missing(root: Path) -> Path:
    first_train_image(root).unlink()
    return first_train_image(root)


def break_image_garbage(root: Path) -> Path:
    first_train_image(root).write_bytes(b"not a png")
    return first_train_image(root)


@pytest.mark.parametrize(
    "breaker",
    [break_folder, break_train_csv, break_test_csv, break_column, break_label, break_image_missing,
     break_image_garbage],
)
def test_femnist_problems_raise_one_line_data_error(femnist_dir: Path, breaker) -> None:
    named = breaker(femnist_dir)
    data_dir = named if breaker is break_folder else femnist_dir
    with pytest.raises(DataError) as error:
        load_femnist(data_dir)
    assert_one_line_naming(error, named)


def conf(**overrides: object) -> SimpleNamespace:
    settings = dict(data_set="digits", data_dir="", data_map_file="", partition="iid",
                    dirichlet_alpha=0.5, num_clients=10)
    return SimpleNamespace(**{**settings, **overrides})


@pytest.mark.parametrize("partition", ["iid", "dirichlet"])
def test_load_federated_digits(partition: str) -> None:
    data = load_federated_data(conf(partition=partition), 0)
    assert data.num_clients == 10 and data.client_sample_counts.sum() == len(data.train)
    assert data.client_sample_counts.dtype == np.int64 and data.client_sample_counts.min() >= 1


def test_load_federated_digits_by_map_file(tmp_path: Path) -> None:
    map_file = write_text(tmp_path / "map.csv", "client_id,sample_path\nx,3\ny,1\nx,0\n")
    data = load_federated_data(conf(data_map_file=str(map_file)), 0)
    assert data.client_sample_counts.tolist() == [2, 1]


def test_load_federated_femnist_uses_natural_partition(femnist_dir: Path) -> None:
    data = load_federated_data(conf(data_set="femnist", data_dir=str(femnist_dir), num_clients=99), 0)
    assert data.client_sample_counts.tolist() == [SAMPLES_PER_CLIENT] * NUM_CLIENTS


@pytest.mark.parametrize(
    "overrides",
    [dict(num_clients=5000), dict(num_clients=0), dict(partition="shards"), dict(data_set="mnist"),
     dict(partition="dirichlet", dirichlet_alpha=0.0)],
)
def test_load_federated_rejects_impossible_requests(overrides: dict[str, object]) -> None:
    with pytest.raises(DataError):
        load_federated_data(conf(**overrides), 0)


@pytest.mark.parametrize("name", CLASSIFIERS)
@pytest.mark.parametrize("input_shape", [(1, 8, 8), (1, 28, 28)])
def test_model_forward_shapes(name: str, input_shape: tuple[int, ...]) -> None:
    model = build_model(name, input_shape, num_classes=7)
    assert model(torch.zeros(5, *input_shape)).shape == (5, 7)


def test_flat_models_accept_flat_input_and_cnn_refuses_it() -> None:
    assert build_model("mlp", (64,), 3)(torch.zeros(2, 64)).shape == (2, 3)
    with pytest.raises(ValueError, match="C x H x W"):
        build_model("cnn", (64,), 3)


def test_unknown_model_lists_choices() -> None:
    with pytest.raises(ValueError, match=", ".join(MODEL_NAMES)):
        build_model("resnet", (1, 8, 8), 10)


def test_mlp_learns_digits(digits: tuple[ArrayDataset, ArrayDataset]) -> None:
    train, test = digits
    torch.manual_seed(0)
    model = build_model("mlp", train.input_shape, train.num_classes)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    batches = torch.randint(len(train), (300, 32), generator=torch.Generator().manual_seed(0))
    for batch in batches:
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(train.x[batch]), train.y[batch]).backward()
        optimizer.step()
    with torch.no_grad():
        accuracy = (model(test.x).argmax(dim=1) == test.y).float().mean().item()
    assert accuracy > 0.9


def test_contiguous_bounds_split_near_evenly():
    from fedscale.dataloaders.partition import contiguous_bounds
    assert contiguous_bounds(10, 3).tolist() == [0, 3, 7, 10]
    assert contiguous_bounds(2, 4).tolist() == [0, 0, 1, 2, 2]


def test_every_catalogued_model_has_a_builder():
    from fedscale.dataloaders.models import _BUILDERS
    assert tuple(_BUILDERS) == MODEL_NAMES


@pytest.mark.parametrize("seed", [0, 1, 233, 2**32 - 1])
@pytest.mark.parametrize("fraction", [0.2, 0.25, 0.5])
def test_stratified_split_draws_what_scikit_learns_does(seed, fraction):
    from sklearn.model_selection import train_test_split

    from fedscale.dataloaders.partition import stratified_split
    labels = np.random.default_rng(seed % 1000).integers(0, 7, size=301)  # uneven classes, tied remainders
    train, test = train_test_split(np.arange(len(labels)), test_size=fraction, stratify=labels, random_state=seed)
    ours_train, ours_test = stratified_split(labels, fraction, seed)
    np.testing.assert_array_equal(ours_train, train)
    np.testing.assert_array_equal(ours_test, test)


def test_digits_are_scikit_learns_without_importing_it():
    import subprocess
    import sys

    import sklearn.datasets
    from sklearn.model_selection import train_test_split
    bunch = sklearn.datasets.load_digits()
    train, test = load_digits(seed=233)
    train_idx, _ = train_test_split(np.arange(len(bunch.target)), test_size=0.2, stratify=bunch.target,
                                    random_state=233)
    images = (bunch.images / 16.0).astype(np.float32)[train_idx]
    standardised = (images - images.mean()) / images.std()
    np.testing.assert_array_equal(train.x.numpy()[:, 0], standardised)
    np.testing.assert_array_equal(train.y.numpy(), bunch.target[train_idx])
    assert len(test) == 360
    probe = ("import sys; from fedscale.dataloaders.digits import load_digits; load_digits(0); "
             "print('sklearn' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout.strip() == "False"
