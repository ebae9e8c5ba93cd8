"""FedScale's cifar10, openImg and google_speech data sets, read from small fixtures in FedScale's layouts."""
from __future__ import annotations

import os
import pickle
import wave
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fedscale.cloud import commons
from fedscale.cloud.config.keys import ConfigError
from fedscale.cloud.config_parser import load_job
from fedscale.cloud.preflight import preflight
from fedscale.dataloaders import cifar10
from fedscale.dataloaders.cifar10 import BINARY_FOLDER, PICKLE_FOLDER, load_cifar10, write_cifar10_fixture
from fedscale.dataloaders.client_mapping import MAPPING_DIR, load_mapped, mapped_client_sizes
from fedscale.dataloaders.dataset import DataError, LazySamples
from fedscale.dataloaders.google_speech import (CLASSES, GOOGLE_SPEECH, SAMPLE_RATE, log_mel, mel_filters, read_wav,
                                                write_google_speech_fixture, write_wav)
from fedscale.dataloaders.images import RGB_MEAN, RGB_STD
from fedscale.dataloaders.open_images import OPEN_IMAGES, write_open_images_fixture
from fedscale.deploy.submit import run_to_end
from tests.jobs import write_job

IMAGES_PER_BATCH = 12
NUM_CLIENTS, SAMPLES_PER_CLIENT = 3, 8


def assert_one_line_naming(error: pytest.ExceptionInfo[DataError], path: Path) -> str:
    message = str(error.value)
    assert "\n" not in message and str(path) in message and "expected" in message, message
    return message


def mapping_rows(root: Path, split: str) -> list[list[str]]:
    return [line.split(",") for line in (root / MAPPING_DIR / f"{split}.csv").read_text().splitlines()[1:]]


def first_sample(root: Path) -> Path:
    return root / "train" / mapping_rows(root, "train")[0][1]


# ---------------------------------------------------------------- cifar10

@pytest.fixture
def cifar_dir(tmp_path: Path) -> Path:
    return Path(write_cifar10_fixture(tmp_path / "data", IMAGES_PER_BATCH, seed=4))


def binary_records(root: Path, name: str) -> np.ndarray:
    return np.fromfile(root / BINARY_FOLDER / f"{name}.bin", dtype=np.uint8).reshape(-1, 3073)


def test_cifar10_pickles_load_normalised_images_and_their_labels(cifar_dir: Path) -> None:
    train, test = load_cifar10(cifar_dir)
    assert (len(train), len(test)) == (5 * IMAGES_PER_BATCH, IMAGES_PER_BATCH)
    assert train.input_shape == (3, 32, 32) and train.num_classes == 10 and isinstance(train.x, LazySamples)
    records = np.concatenate([binary_records(cifar_dir, f"data_batch_{n}") for n in range(1, 6)])
    assert train.y.tolist() == records[:, 0].tolist()
    pixels = torch.from_numpy(records[7, 1:].reshape(3, 32, 32)).float() / 255
    expected = (pixels - torch.tensor(RGB_MEAN).view(3, 1, 1)) / torch.tensor(RGB_STD).view(3, 1, 1)
    assert torch.allclose(train.x[torch.tensor([7])][0], expected, atol=1e-6)
    assert train.x[2:5].shape == (3, 3, 32, 32)
    assert test.y.tolist() == binary_records(cifar_dir, "test_batch")[:, 0].tolist()


def test_cifar10_binary_batches_read_the_same_data_as_the_pickles(cifar_dir: Path) -> None:
    from_pickles = load_cifar10(cifar_dir)
    (cifar_dir / PICKLE_FOLDER).rename(cifar_dir / "elsewhere")
    from_binary = load_cifar10(cifar_dir)
    for pickled, binary in zip(from_pickles, from_binary):
        assert torch.equal(pickled.x[:], binary.x[:]) and torch.equal(pickled.y, binary.y)


class RunsACommand:
    """Pickles as a call to os.system, the classic malicious pickle."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


@pytest.mark.parametrize("protocol", [0, 2, 4])
@pytest.mark.parametrize("where", ["top", "labels"])
def test_a_malicious_cifar10_pickle_is_refused_and_never_run(cifar_dir: Path, tmp_path: Path, protocol: int,
                                                              where: str) -> None:
    marker = tmp_path / "ran"
    attack = RunsACommand(f"touch {marker}")
    payload = attack if where == "top" else {"labels": [attack], "data": np.zeros((1, 3072), np.uint8)}
    batch = cifar_dir / PICKLE_FOLDER / "data_batch_3"
    batch.write_bytes(pickle.dumps(payload, protocol=protocol))
    with pytest.raises(DataError) as error:
        load_cifar10(cifar_dir)
    message = assert_one_line_naming(error, batch)
    assert "system" in message and not marker.exists()


@pytest.mark.parametrize("payload, expected", [
    (b"\x80\x02}r\xf0\xff\xff\x7f.", "memo indices below"),
    (b"\x80\x02cnumpy\ndtype\n\x81.", "got NEWOBJ"),
    (b"\x80\x02cbuiltins\neval\nX\x03\x00\x00\x001+1q\x00\x85R.", "refused the global builtins.eval"),
    (b"\x80\x02}(U\x04datacnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85U\x01b\x87R"
     b"U\x06labels]u.", "'data' a uint8"),
    (b"\x80\x02]q\x00.", "holding a dict, got list"),
], ids=["memo index 2**31", "NEWOBJ", "eval", "empty array", "list"])
def test_pickles_outside_a_cifar10_batch_are_refused(cifar_dir: Path, payload: bytes, expected: str) -> None:
    batch = cifar_dir / PICKLE_FOLDER / "test_batch"
    batch.write_bytes(payload)
    with pytest.raises(DataError) as error:
        load_cifar10(cifar_dir)
    assert expected in assert_one_line_naming(error, batch)


def remove(path: Path) -> Path:
    path.unlink()
    return path


def truncate(path: Path) -> Path:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def cut_binary_record(root: Path) -> Path:
    path = root / BINARY_FOLDER / "data_batch_2.bin"
    path.write_bytes(path.read_bytes()[:-5])
    return path


def bad_binary_label(root: Path) -> Path:
    path = root / BINARY_FOLDER / "test_batch.bin"
    records = bytearray(path.read_bytes())
    records[3 * 3073] = 200
    path.write_bytes(bytes(records))
    return path


@pytest.mark.parametrize("breaker, binary", [
    (lambda root: truncate(root / PICKLE_FOLDER / "data_batch_1"), False),
    (lambda root: remove(root / PICKLE_FOLDER / "data_batch_5"), False),
    (cut_binary_record, True),
    (bad_binary_label, True),
    (lambda root: remove(root / BINARY_FOLDER / "test_batch.bin"), True),
], ids=["truncated pickle", "missing pickle", "cut record", "label 200", "missing binary"])
def test_cifar10_file_problems_are_one_line_errors_naming_the_file(cifar_dir: Path, breaker, binary: bool) -> None:
    if binary:
        (cifar_dir / PICKLE_FOLDER).rename(cifar_dir / "elsewhere")
    named = breaker(cifar_dir)
    with pytest.raises(DataError) as error:
        load_cifar10(cifar_dir)
    assert_one_line_naming(error, named)


def test_cifar10_needs_one_of_its_folders_and_files_within_the_size_limit(cifar_dir: Path, monkeypatch) -> None:
    with pytest.raises(DataError) as error:
        load_cifar10(cifar_dir / PICKLE_FOLDER)
    assert "cifar-10-batches-py/ or cifar-10-batches-bin/" in assert_one_line_naming(error, cifar_dir / PICKLE_FOLDER)
    monkeypatch.setattr(cifar10, "_MAX_BATCH_BYTES", 1000)
    with pytest.raises(DataError) as error:
        load_cifar10(cifar_dir)
    assert "at most" in assert_one_line_naming(error, cifar_dir / PICKLE_FOLDER / "data_batch_1")


# ---------------------------------------------------------------- openImg and google_speech

@pytest.fixture
def open_images_dir(tmp_path: Path) -> Path:
    return Path(write_open_images_fixture(tmp_path / "open_images", NUM_CLIENTS, SAMPLES_PER_CLIENT, seed=2))


@pytest.fixture
def speech_dir(tmp_path: Path) -> Path:
    return Path(write_google_speech_fixture(tmp_path / "speech_commands", NUM_CLIENTS, SAMPLES_PER_CLIENT, seed=2))


def check_client_mapping(root: Path, layout, labels_of) -> tuple:
    train, test, parts = load_mapped(root, "", layout)
    train_rows, test_rows = mapping_rows(root, "train"), mapping_rows(root, "test")
    assert (len(train), len(test)) == (len(train_rows), len(test_rows)) == (NUM_CLIENTS * SAMPLES_PER_CLIENT,
                                                                           NUM_CLIENTS * (SAMPLES_PER_CLIENT // 4))
    assert train.y.tolist() == [labels_of(row) for row in train_rows]
    assert test.y.tolist() == [labels_of(row) for row in test_rows]
    owners = [row[0] for row in train_rows]
    assert [sorted({owners[i] for i in part}) for part in parts] == [[owner] for owner in dict.fromkeys(owners)]
    sizes = mapped_client_sizes(root, "", layout).tolist()
    assert [len(part) for part in parts] == sizes == [SAMPLES_PER_CLIENT] * NUM_CLIENTS
    assert isinstance(train.x, LazySamples) and train.x[:].shape == (len(train), *train.input_shape)
    return train, test


def test_open_images_load_from_fedscales_layout(open_images_dir: Path) -> None:
    train, test = check_client_mapping(open_images_dir, OPEN_IMAGES, lambda row: int(row[3]))
    assert train.input_shape == (3, 256, 256)
    assert train.num_classes == max(train.y.max(), test.y.max()).item() + 1
    with Image.open(first_sample(open_images_dir)) as image:
        assert image.size != (256, 256)
        pixels = np.array(image.convert("RGB").resize((256, 256), Image.Resampling.BILINEAR))
    expected = (torch.from_numpy(pixels).permute(2, 0, 1) / 255 - torch.tensor(RGB_MEAN).view(3, 1, 1)) \
        / torch.tensor(RGB_STD).view(3, 1, 1)
    assert torch.allclose(train.x[0:1][0], expected, atol=1e-5)


def test_speech_commands_load_from_fedscales_layout(speech_dir: Path) -> None:
    train, _ = check_client_mapping(speech_dir, GOOGLE_SPEECH, lambda row: CLASSES.index(row[2]))
    assert train.input_shape == (1, 32, 32) and train.num_classes == 35
    features = train.x[:]
    assert features.min() >= -1 and torch.allclose(features.amax(dim=(1, 2, 3)), torch.ones(len(train)))


def test_wav_clips_are_padded_or_cut_to_one_second(tmp_path: Path) -> None:
    ramp = np.linspace(-0.5, 0.5, SAMPLE_RATE + 4000)
    write_wav(tmp_path / "long.wav", ramp)
    write_wav(tmp_path / "short.wav", ramp[:9000])
    assert np.allclose(read_wav(tmp_path / "long.wav"), ramp[:SAMPLE_RATE], atol=1 / 32768)
    short = read_wav(tmp_path / "short.wav")
    assert short.shape == (SAMPLE_RATE,) and np.allclose(short[:9000], ramp[:9000], atol=1 / 32768)
    assert not short[9000:].any()


def test_mel_filters_are_unit_area_triangles_and_a_tone_lights_its_own_band() -> None:
    filters = mel_filters()
    assert filters.shape == (32, 1025)
    assert np.allclose(filters[4:].sum(axis=1) * (SAMPLE_RATE / 2048), 1.0, atol=0.05)
    peaks = filters.argmax(axis=1) * SAMPLE_RATE / 2048
    assert np.all(np.diff(peaks) > 0)
    for pitch in (300.0, 1200.0, 4000.0):
        tone = torch.from_numpy(np.sin(2 * np.pi * pitch * np.arange(SAMPLE_RATE) / SAMPLE_RATE).astype(np.float32))
        loudest = log_mel(tone[None])[0, 0].mean(dim=1).argmax().item()
        assert abs(peaks[loudest] - pitch) <= np.diff(peaks).max()


def write_stereo(path: Path) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(b"\x00\x00" * 2 * 100)


def write_8khz(path: Path) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00\x00" * 100)


@pytest.mark.parametrize("damage, expected", [
    (remove, "does not exist"),
    (lambda path: path.write_bytes(b"RIFF junk"), "wave module can read"),
    (truncate, "truncated"),
    (write_stereo, "2 channel(s)"),
    (write_8khz, "got 8000 Hz"),
])
def test_bad_wav_files_fail_the_batch_that_reads_them_naming_file_and_mapping_line(speech_dir: Path, damage,
                                                                                   expected: str) -> None:
    train = load_mapped(speech_dir, "", GOOGLE_SPEECH)[0]
    damage(first_sample(speech_dir))
    with pytest.raises(DataError) as error:
        train.x[torch.tensor([1, 0])]
    message = assert_one_line_naming(error, first_sample(speech_dir))
    assert expected in message and f"{speech_dir / MAPPING_DIR / 'train.csv'}:2" in message


@pytest.mark.parametrize("damage", [remove, truncate, lambda path: path.write_bytes(b"not a jpeg")],
                         ids=["missing", "truncated", "garbage"])
def test_bad_images_fail_the_batch_that_reads_them_naming_the_file(open_images_dir: Path, damage) -> None:
    train = load_mapped(open_images_dir, "", OPEN_IMAGES)[0]
    damage(first_sample(open_images_dir))
    with pytest.raises(DataError) as error:
        train.x[0:2]
    assert_one_line_naming(error, first_sample(open_images_dir))


def test_mapping_problems_are_one_line_errors(speech_dir: Path) -> None:
    mapping = speech_dir / MAPPING_DIR / "test.csv"
    lines = mapping.read_text().splitlines()
    lines[2] = lines[2].replace(",up,", ",upp,").replace(lines[2].split(",")[2], "upp")
    mapping.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as error:
        mapped_client_sizes(speech_dir, "", GOOGLE_SPEECH)
    assert "a label_name among the 35 Speech Commands classes, got 'upp'" in assert_one_line_naming(error, mapping)
    mapping.unlink()
    with pytest.raises(DataError) as error:
        load_mapped(speech_dir, "", GOOGLE_SPEECH)
    assert_one_line_naming(error, mapping)


# ---------------------------------------------------------------- jobs

def job_on(tmp_path: Path, monkeypatch, **conf) -> list[dict]:
    monkeypatch.setenv("FEDSCALE_STATE_DIR", str(tmp_path / "state"))
    job = write_job(tmp_path, executors=1, model="cnn", rounds=2, num_participants=3, local_steps=3, batch_size=4,
                    eval_interval=2, test_bsz=16, **conf)
    return run_to_end(load_job(str(job)))


JOB_FIXTURES = {
    "cifar10": lambda root: write_cifar10_fixture(root, 10, seed=1),
    "openImg": lambda root: write_open_images_fixture(root, 4, 4, seed=1),
    "google_speech": lambda root: write_google_speech_fixture(root, 4, 4, seed=1),
}


@pytest.mark.parametrize("data_set", JOB_FIXTURES)
def test_a_short_job_runs_on_each_fixture(tmp_path: Path, monkeypatch, data_set: str) -> None:
    data_dir = JOB_FIXTURES[data_set](tmp_path / data_set)
    log = job_on(tmp_path, monkeypatch, data_set=data_set, data_dir=data_dir, num_clients=5)
    clients = next(e for e in log if e["tag"] == commons.ROUND_BEGIN)["num_clients"]
    assert clients == (5 if data_set == "cifar10" else 4)
    tested = [e for e in log if e["tag"] == commons.TEST_RESULT]
    assert log[-1]["status"] == commons.STATUS_COMPLETED and tested and tested[-1]["num_samples"] > 0


@pytest.mark.parametrize("data_set", ["cifar10", "openImg", "google_speech"])
def test_the_preflight_names_data_dir_and_the_missing_file(tmp_path: Path, data_set: str) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match=f"job_conf.data_dir: required when data_set is '{data_set}'"):
        load_job(str(write_job(tmp_path, data_set=data_set)))
    with pytest.raises(ConfigError) as error:
        preflight(load_job(str(write_job(tmp_path, data_set=data_set, data_dir=str(empty)))))
    message = str(error.value)
    assert "\n" not in message and "job_conf.data_dir" in message and str(empty) in message, message


def test_the_preflight_names_a_missing_cifar10_batch_and_an_impossible_split(tmp_path: Path) -> None:
    root = Path(write_cifar10_fixture(tmp_path / "data", 4, seed=0, folders=(BINARY_FOLDER,)))
    (root / BINARY_FOLDER / "data_batch_4.bin").unlink()
    with pytest.raises(ConfigError) as error:
        preflight(load_job(str(write_job(tmp_path, data_set="cifar10", data_dir=str(root)))))
    assert f"job_conf.data_dir: {root / BINARY_FOLDER / 'data_batch_4.bin'}: expected" in str(error.value)
    write_cifar10_fixture(root, 4, seed=0, folders=(BINARY_FOLDER,))
    with pytest.raises(ConfigError) as error:
        preflight(load_job(str(write_job(tmp_path, data_set="cifar10", data_dir=str(root), num_clients=21))))
    assert "job_conf.num_clients: " in str(error.value) and "the 20 training samples" in str(error.value)
