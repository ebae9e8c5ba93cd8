"""The model zoo: FedScale's model names, built by us with the published architectures."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fedscale.cloud import commons
from fedscale.cloud.config.keys import ConfigError
from fedscale.cloud.config_parser import JobConf, load_job
from fedscale.cloud.execution.torch_client import ClientFailure, TorchClient
from fedscale.cloud.model_vector import ModelVector
from fedscale.dataloaders.catalog import CLASSIFIERS, LANGUAGE_MODELS, MODEL_NAMES
from fedscale.dataloaders.dataset import ArrayDataset
from fedscale.dataloaders.models import build_model
from fedscale.dataloaders.models.batch_norm import smallest_training_batch
from fedscale.dataloaders.models.lstm_lm import LSTMLanguageModel
from fedscale.deploy.submit import run_to_end
from tests.jobs import write_job

IMAGE_NETWORKS = tuple(name for name in CLASSIFIERS if name not in ("logistic", "mlp", "cnn"))
# torchvision's published parameter counts (the ``num_params`` of each model's ImageNet weights)
# at 3 x 224 x 224 and 1000 classes.
TORCHVISION_PARAMETERS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "mobilenet_v2": 3_504_872,
    "shufflenet_v2_x0_5": 1_366_792,
    "shufflenet_v2_x1_0": 2_278_604,
    "shufflenet_v2_x1_5": 3_503_624,
    "shufflenet_v2_x2_0": 7_393_996,
}
# Hugging Face's AlbertModel for albert-base-v2 (vocabulary 30,000): embeddings, the shared layer
# and the sentence pooler (a 768 x 768 dense layer with bias), which our masked-LM model leaves out.
ALBERT_BASE_MODEL = 11_683_584
ALBERT_POOLER = 768 * 768 + 768


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def feature_map(model: nn.Sequential, images: torch.Tensor) -> torch.Tensor:
    """The image network's last feature map (its layers before pooling, flattening and the linear layer)."""
    return model[:-3](images)


def fit(model: nn.Module, inputs: torch.Tensor, loss_of, steps: int = 2, lr: float = 0.002) -> tuple[float, float]:
    """The training-mode loss on ``inputs`` at the first of ``steps`` SGD steps on them, and after the last."""
    optimiser = torch.optim.SGD(model.parameters(), lr=lr)
    model.train()
    losses = []
    for _ in range(steps):
        optimiser.zero_grad()
        loss = loss_of(model(inputs))
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    with torch.no_grad():
        return losses[0], float(loss_of(model(inputs)))


def test_every_model_is_catalogued_once():
    assert sorted(MODEL_NAMES) == sorted(set(CLASSIFIERS) | set(LANGUAGE_MODELS))
    assert set(TORCHVISION_PARAMETERS) == set(IMAGE_NETWORKS)


@pytest.mark.parametrize("name", IMAGE_NETWORKS)
def test_imagenet_parameter_counts_are_torchvisions(name):
    assert count(build_model(name, (3, 224, 224), 1000)) == TORCHVISION_PARAMETERS[name]


def test_albert_base_has_the_published_encoder():
    torch.manual_seed(0)
    model = build_model("albert-base-v2", (128,), 30_000)
    head = count(model.head) + model.output_bias.numel()
    assert count(model) - head + ALBERT_POOLER == ALBERT_BASE_MODEL
    assert count(model) == 11_221_680  # AlbertForMaskedLM: the encoder above and its tied masked-LM head
    tokens = torch.randint(30_000, (2, 16))
    assert model(tokens).shape == (2, 16, 30_000)


@pytest.mark.parametrize("name", IMAGE_NETWORKS)
@pytest.mark.parametrize(("input_shape", "num_classes"), [((1, 28, 28), 62), ((3, 32, 32), 10)])
def test_small_images_keep_the_stem_at_full_resolution(name, input_shape, num_classes):
    torch.manual_seed(0)
    model = build_model(name, input_shape, num_classes)
    first = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    assert first.in_channels == input_shape[0]
    images = torch.randn(2, *input_shape)
    assert model(images).shape == (2, num_classes)
    assert feature_map(model, images).shape[-2:] == (4, 4)  # 8-fold: 28 -> 14 -> 7 -> 4; 32 -> 4


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "shufflenet_v2_x0_5"])
def test_images_of_64_pixels_take_the_imagenet_stem(name):
    model = build_model(name, (3, 64, 64), 5)
    assert feature_map(model, torch.randn(2, 3, 64, 64)).shape[-2:] == (2, 2)  # 32-fold


@pytest.mark.parametrize("name", IMAGE_NETWORKS)
def test_digits_train_and_smaller_images_are_refused(name):
    model = build_model(name, (1, 8, 8), 10)
    assert feature_map(model, torch.randn(2, 1, 8, 8)).shape[-2:] == (1, 1)
    assert smallest_training_batch(model, (1, 8, 8)) == 2
    with pytest.raises(ValueError, match=rf"^{name} needs images of at least 8 x 8 pixels, got 7 x 8$"):
        build_model(name, (1, 7, 8), 10)
    with pytest.raises(ValueError, match=rf"^{name} needs C x H x W images, got samples of shape \(64,\)$"):
        build_model(name, (64,), 10)


@pytest.mark.parametrize("name", IMAGE_NETWORKS)
def test_a_few_steps_reduce_the_loss_on_a_tiny_batch(name):
    torch.manual_seed(0)
    model = build_model(name, (3, 16, 16), 10)
    images, labels = torch.randn(2, 3, 16, 16), torch.tensor([3, 7])
    before, after = fit(model, images, lambda logits: F.cross_entropy(logits, labels))
    assert after < before


def test_the_lstm_predicts_every_next_token_and_learns():
    torch.manual_seed(0)
    model = build_model("lstm", (12,), 50)
    assert isinstance(model, LSTMLanguageModel) and model.output.weight is model.embedding.weight
    tokens = torch.randint(50, (4, 13))
    inputs, targets = tokens[:, :-1], tokens[:, 1:]
    assert model(inputs).shape == (4, 12, 50)
    before, after = fit(model, inputs, lambda logits: F.cross_entropy(logits.transpose(1, 2), targets), steps=5)
    assert after < before
    untied = LSTMLanguageModel(50, tied=False)
    assert untied.projection is None and untied.output.weight is not untied.embedding.weight


def test_the_small_transformer_predicts_masked_tokens_and_learns():
    torch.manual_seed(0)
    model = build_model("transformer-small", (16,), 100)
    tokens = torch.randint(100, (4, 16))
    assert model(tokens).shape == (4, 16, 100)
    training = model(tokens)
    model.eval()
    with torch.no_grad():  # torch's fused inference path must compute the same layer
        torch.testing.assert_close(model(tokens), training.detach(), rtol=1e-5, atol=1e-5)
    before, after = fit(model, tokens, lambda logits: F.cross_entropy(logits.transpose(1, 2), tokens))
    assert after < before


@pytest.mark.parametrize("name", LANGUAGE_MODELS)
def test_language_models_refuse_images(name):
    with pytest.raises(ValueError, match=rf"^{name} is a language model over token ids: it needs sequences"):
        build_model(name, (1, 8, 8), 10)


def test_albert_refuses_sequences_longer_than_its_positions():
    with pytest.raises(ValueError, match=r"T at most 512, got samples of shape \(513,\)"):
        build_model("albert-base-v2", (513,), 100)


def test_batch_norm_state_travels_in_the_model_vector():
    model = build_model("resnet18", (1, 8, 8), 10)
    vector = ModelVector(model)
    buffers = sum(b.numel() for b in model.buffers() if b.is_floating_point())
    assert vector.size == count(model) + buffers and buffers > 0


def test_only_models_with_batch_norm_on_a_single_pixel_need_two_samples():
    assert smallest_training_batch(build_model("resnet18", (1, 28, 28), 10), (1, 28, 28)) == 1
    assert smallest_training_batch(build_model("cnn", (1, 8, 8), 10), (1, 8, 8)) == 1


def test_a_one_sample_client_fails_its_round_not_the_job():
    torch.manual_seed(0)
    model = build_model("resnet18", (1, 8, 8), 3)
    train = ArrayDataset(torch.randn(5, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1]), 3)
    client = TorchClient(model, train, [np.array([0]), np.arange(1, 5)], seed=0)
    global_vector = client.weights.snapshot()
    with pytest.raises(ClientFailure, match="client 0 trains on batches of 1 sample; the model's BatchNorm needs 2"):
        client.train(global_vector, 0, 1, local_steps=1, batch_size=4, learning_rate=0.01)
    update = client.train(global_vector, 1, 1, local_steps=2, batch_size=4, learning_rate=0.01)
    assert update.update.shape == global_vector.shape and update.update.abs().sum() > 0


@pytest.mark.parametrize("data_set", ["digits", "femnist"])
def test_image_networks_are_accepted_with_image_data_sets(tmp_path, data_set):
    extra = {"data_dir": str(tmp_path)} if data_set == "femnist" else {}
    assert JobConf({"model": "resnet18", "data_set": data_set, **extra}).training.model == "resnet18"


def test_a_language_model_on_an_image_data_set_is_refused():
    with pytest.raises(ConfigError, match="^job_conf.model: expected a classifier for data_set 'digits', got the "
                                          "language model 'albert-base-v2'$"):
        JobConf({"model": "albert-base-v2"})


def test_a_resnet18_job_on_digits_runs_a_round(tmp_path, monkeypatch):
    monkeypatch.setenv("FEDSCALE_STATE_DIR", str(tmp_path / "state"))
    job = write_job(tmp_path, executors=1, model="resnet18", num_clients=8, num_participants=2, rounds=1,
                    local_steps=1, batch_size=8, eval_interval=1, save_checkpoint=False)
    log = run_to_end(load_job(str(job)))
    tags = [event["tag"] for event in log]
    assert tags.count(commons.ROUND_END) == 1 and commons.TEST_RESULT in tags
    assert log[-1]["status"] == commons.STATUS_COMPLETED
