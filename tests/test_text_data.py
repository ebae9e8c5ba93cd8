"""FedScale's text data sets (reddit, alias blog, and stackoverflow) for next-word prediction: the
loader on a fixture in our layout, the language-model loss and score, and a short job."""
from __future__ import annotations

import math
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from fedscale.cloud import commons
from fedscale.cloud.config.job_conf import JobConf
from fedscale.cloud.config.keys import ConfigError
from fedscale.cloud.config_parser import load_job
from fedscale.cloud.execution.torch_client import OBJECTIVES, TorchClient, next_word_losses, next_word_scores
from fedscale.dataloaders.client_mapping import MAPPING_DIR
from fedscale.dataloaders.dataset import NEXT_WORD, PAD_ID, DataError
from fedscale.dataloaders.models import build_model
from fedscale.dataloaders.text import (BOS_ID, RESERVED_TOKENS, SEQUENCE_LENGTH, UNK_ID, VOCABULARY_FILE, load_text,
                                       read_vocabulary, text_sequences, write_text_fixture)
from fedscale.deploy.submit import run_to_end
from tests.jobs import ROOT, write_job

NUM_CLIENTS, POSTS, WORDS = 5, 12, 24


@pytest.fixture
def text_dir(tmp_path: Path) -> Path:
    return Path(write_text_fixture(tmp_path / "reddit", NUM_CLIENTS, POSTS, WORDS, seed=3))


def assert_one_line_naming(error: pytest.ExceptionInfo[DataError], path: Path) -> str:
    message = str(error.value)
    assert "\n" not in message and str(path) in message and "expected" in message, message
    return message


def test_the_fixture_loads_as_padded_next_word_sequences_split_by_client(text_dir: Path) -> None:
    train, test, partition = load_text(text_dir, "", "reddit")
    assert train.task == test.task == NEXT_WORD and train.num_classes == WORDS + len(RESERVED_TOKENS)
    assert train.input_shape == (SEQUENCE_LENGTH,) and test.x.shape[1:] == (SEQUENCE_LENGTH,)
    assert len(partition) == NUM_CLIENTS and sorted(np.concatenate(partition).tolist()) == list(range(len(train)))
    # targets are the inputs shifted by one; a post starts with <bos>; pads only trail, in both
    assert torch.equal(train.x[:, 1:], train.y[:, :-1])
    assert (train.x[:, 0] != PAD_ID).all() and (train.y[:, 0] != PAD_ID).all()
    padded = train.y == PAD_ID
    assert padded.any() and torch.equal(padded, padded.cummax(1).values)
    first_post = (text_dir / "train" / "user000.txt").read_text().splitlines()[0].split()
    ids = {word: i + len(RESERVED_TOKENS) for i, word in enumerate((text_dir / VOCABULARY_FILE).read_text().split())}
    expected = [BOS_ID] + [ids.get(word, UNK_ID) for word in first_post]
    assert train.x[partition[0][0]].tolist()[:len(expected)] == expected[:SEQUENCE_LENGTH]
    assert UNK_ID in expected


def test_a_long_post_spans_overlapping_windows(tmp_path: Path) -> None:
    (tmp_path / VOCABULARY_FILE).write_text("a\nb\n")
    vocabulary = read_vocabulary(tmp_path / VOCABULARY_FILE)
    sequences = text_sequences("a b a b a\n\nb\n", vocabulary, length=2)
    a, b = 3, 4
    assert sequences.tolist() == [[BOS_ID, a, b], [b, a, b], [b, a, PAD_ID], [BOS_ID, b, PAD_ID]]


def test_a_job_names_its_text_files_in_data_map_file(text_dir: Path) -> None:
    mapping = text_dir / MAPPING_DIR / "train.csv"
    fewer = text_dir / "two_clients.csv"
    fewer.write_text("\n".join(mapping.read_text().splitlines()[:3]) + "\n")
    assert len(load_text(text_dir, str(fewer), "reddit")[2]) == 2


@pytest.mark.parametrize("content", [b"w1 w2\n\xff\xfe\n", None])
def test_a_bad_or_missing_text_file_is_named_with_its_mapping_line(text_dir: Path, content: bytes | None) -> None:
    bad = text_dir / "train" / "user002.txt"
    if content is None:
        bad.unlink()
    else:
        bad.write_bytes(content)
    with pytest.raises(DataError) as error:
        load_text(text_dir, "", "reddit")
    assert assert_one_line_naming(error, bad).endswith(f"{text_dir / MAPPING_DIR / 'train.csv'}:4)")


@pytest.mark.parametrize("lines, line", [(["a", "b c"], 2), (["a", "", "b"], 2), (["a", "b", "a"], 3),
                                         (["<unk>"], 1)])
def test_a_malformed_vocabulary_names_its_line(text_dir: Path, lines: list[str], line: int) -> None:
    (text_dir / VOCABULARY_FILE).write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as error:
        load_text(text_dir, "", "reddit")
    assert f"{text_dir / VOCABULARY_FILE}:{line}: expected one token per line" in assert_one_line_naming(
        error, text_dir / VOCABULARY_FILE)


def test_the_next_word_loss_and_score_leave_pads_out() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 5, requires_grad=True)
    targets = torch.tensor([[1, 4, PAD_ID], [2, PAD_ID, PAD_ID]])
    log_p = torch.log_softmax(logits, -1)
    by_hand = -torch.stack([log_p[0, 0, 1], log_p[0, 1, 4], log_p[1, 0, 2]])
    per_sequence, loss = next_word_losses(logits, targets)
    torch.testing.assert_close(loss, by_hand.mean())
    torch.testing.assert_close(per_sequence, torch.stack([by_hand[:2].mean(), by_hand[2]]))
    loss.backward()
    assert logits.grad[0, 2].abs().sum() == logits.grad[1, 1:].abs().sum() == 0
    predicted = logits.argmax(-1)
    correct = int((predicted[0, 0] == 1) + (predicted[0, 1] == 4) + (predicted[1, 0] == 2))
    loss_sum, right, scored = next_word_scores(logits.detach(), targets)
    assert (right, scored) == (correct, 3) and loss_sum == pytest.approx(float(by_hand.detach().sum()), rel=1e-6)


def test_the_client_trains_and_tests_a_language_model_on_tokens(text_dir: Path) -> None:
    train, test, partition = load_text(text_dir, "", "reddit")
    torch.manual_seed(0)
    client = TorchClient(build_model("lstm", train.input_shape, train.num_classes), train, partition, seed=0)
    assert client.objective is OBJECTIVES[NEXT_WORD]
    update = client.train(client.weights.snapshot(), 0, 1, local_steps=2, batch_size=4, learning_rate=0.5)
    assert update.update.abs().sum() > 0 and np.isfinite(update.train_loss) and update.utility > 0
    outcome = client.test(client.weights.snapshot(), test, batch_size=8)
    assert outcome.num_samples == int((test.y != PAD_ID).sum()) and 0 <= outcome.correct <= outcome.num_samples


def test_the_transformers_are_causal() -> None:
    torch.manual_seed(0)
    model = build_model("transformer-small", (6,), 30).eval()
    tokens = torch.randint(3, 30, (2, 6))
    changed = tokens.clone()
    changed[:, 4:] = PAD_ID
    with torch.no_grad():
        torch.testing.assert_close(model(tokens)[:, :4], model(changed)[:, :4])


@pytest.mark.parametrize("data_set", ["reddit", "blog", "stackoverflow"])
def test_language_models_take_the_text_sets_and_classifiers_do_not(text_dir: Path, data_set: str) -> None:
    assert JobConf({"model": "lstm", "data_set": data_set, "data_dir": str(text_dir)}).data.data_set == data_set
    with pytest.raises(ConfigError, match=f"^job_conf.model: expected a language model for data_set '{data_set}', "
                                          "got the classifier 'mlp'$"):
        JobConf({"model": "mlp", "data_set": data_set, "data_dir": str(text_dir)})


def test_a_two_round_lstm_job_on_reddit_beats_chance(tmp_path: Path, text_dir: Path, monkeypatch) -> None:
    monkeypatch.setenv("FEDSCALE_STATE_DIR", str(tmp_path / "state"))
    job = write_job(tmp_path, executors=1, model="lstm", data_set="reddit", data_dir=str(text_dir), rounds=2,
                    num_participants=NUM_CLIENTS, local_steps=10, batch_size=8, learning_rate=0.1, eval_interval=2,
                    test_bsz=32)
    log = run_to_end(load_job(str(job)))
    tested = [e for e in log if e["tag"] == commons.TEST_RESULT]
    assert log[-1]["status"] == commons.STATUS_COMPLETED and tested
    vocabulary = WORDS + len(RESERVED_TOKENS)
    assert tested[-1]["accuracy"] > 3 / vocabulary and tested[-1]["loss"] < math.log(vocabulary), tested[-1]


def test_a_data_attack_on_a_text_set_is_refused(tmp_path):
    with pytest.raises(ConfigError) as refusal:
        JobConf({"data_set": "reddit", "data_dir": str(tmp_path), "model": "lstm", "attack": "label_flip",
                 "byzantine_fraction": 0.2})
    assert str(refusal.value).startswith("job_conf.attack: a data attack relabels classes")
    JobConf({"data_set": "reddit", "data_dir": str(tmp_path), "model": "lstm", "attack": "sign_flip",
             "byzantine_fraction": 0.2})


def test_fedscales_download_is_prepared_for_the_loader_by_one_command(tmp_path: Path, text_dir: Path) -> None:
    """FedScale's download is train/ and test/ with one file per client and a mapping that numbers
    ALBERT blocks; the command writes vocab.txt and file mappings, keeping FedScale's mappings aside."""
    ours = load_text(text_dir, "", "reddit")
    (text_dir / VOCABULARY_FILE).unlink()
    (text_dir / MAPPING_DIR / "train.csv").write_text("client_id,sample_path,label_name,label_id\n0,0,-1,-1\n")
    counts = Counter(word for path in (text_dir / "train").iterdir() for word in path.read_text().split())
    done = subprocess.run([sys.executable, "-m", "fedscale.dataloaders.text", str(text_dir), "--vocabulary-size", "3"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and f"{VOCABULARY_FILE} of 3 tokens" in done.stdout, done.stderr
    ranked = sorted(counts, key=lambda word: (-counts[word], word))
    assert (text_dir / VOCABULARY_FILE).read_text().split() == ranked[:3]
    assert "moved to client_data_mapping.tokenized/" in done.stdout
    assert (text_dir / "client_data_mapping.tokenized" / "train.csv").read_text().endswith("0,0,-1,-1\n")
    prepared = load_text(text_dir, "", "reddit")
    assert len(prepared[2]) == NUM_CLIENTS and len(prepared[0]) == len(ours[0])
    empty = tmp_path / "empty"
    (empty / "train").mkdir(parents=True)
    failed = subprocess.run([sys.executable, "-m", "fedscale.dataloaders.text", str(empty)], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert failed.returncode == 2 and failed.stderr.strip().startswith(f"error: {empty / 'train'}: expected")
    assert len(failed.stderr.strip().splitlines()) == 1
