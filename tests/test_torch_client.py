"""Local training on one reused model: determinism, utility, compression."""
import math

import numpy as np
import pytest
import torch

from fedscale.cloud.execution.compression import layer_dropout, topk_sparsify
from fedscale.cloud.execution.torch_client import ClientFailure, TorchClient, batch_positions, client_seed
from fedscale.dataloaders.dataset import ArrayDataset
from fedscale.dataloaders.models import build_model
from fedscale.robust.attacks.label_flip import flip_labels


def make_client(seed=0):
    g = torch.Generator().manual_seed(0)
    data = ArrayDataset(torch.randn(60, 1, 4, 4, generator=g), torch.randint(0, 3, (60,), generator=g), 3)
    torch.manual_seed(seed)
    model = build_model("mlp", (1, 4, 4), 3)
    client = TorchClient(model, data, [np.arange(0, 20), np.arange(20, 27), np.arange(27, 60)], seed=5)
    return client, data, client.weights.snapshot()


def test_topk_keeps_the_largest_magnitudes():
    x = torch.tensor([0.1, -3.0, 2.0, -0.5, 0.0])
    assert torch.equal(topk_sparsify(x, 0.4), torch.tensor([0.0, -3.0, 2.0, 0.0, 0.0]))
    assert torch.equal(topk_sparsify(x, 0.3), torch.tensor([0.0, -3.0, 2.0, 0.0, 0.0]))  # ceil(1.5) = 2
    assert topk_sparsify(x, 1.0) is x
    with pytest.raises(ValueError):
        topk_sparsify(x, 0.0)


def test_layer_dropout_keeps_or_zeroes_whole_tensors_without_rescaling():
    x = torch.arange(1.0, 11.0)
    sizes = (2, 3, 1, 4)
    sent, kept = layer_dropout(x, sizes, 0.5, torch.Generator().manual_seed(3))
    again, _ = layer_dropout(x, sizes, 0.5, torch.Generator().manual_seed(3))
    assert torch.equal(sent, again)
    pieces = [(part, whole) for part, whole in zip(sent.split(sizes), x.split(sizes))]
    assert all(torch.equal(part, whole) or not part.any() for part, whole in pieces)
    assert kept == sum(len(whole) for part, whole in pieces if part.any()) / 10
    assert torch.equal(layer_dropout(x, sizes, 1.0, torch.Generator())[0], x)
    draws = [layer_dropout(x, (1,) * 10, 0.3, torch.Generator().manual_seed(s))[1] for s in range(400)]
    assert np.mean(draws) == pytest.approx(0.3, abs=0.02)    # each tensor kept with probability 1 - P
    with pytest.raises(ValueError, match="sizes"):
        layer_dropout(x, (2, 3), 0.5, torch.Generator())
    with pytest.raises(ValueError, match="keep_fraction"):
        layer_dropout(x, sizes, 0.0, torch.Generator())


def test_layer_random_upload_is_reproducible_per_round_and_client():
    client, _, start = make_client()
    full = client.train(start, 2, 3, 4, 8, 0.1)
    sizes = client.weights.sizes
    runs = {(r, c): client.train(start, c, r, 4, 8, 0.1, 0.5, dropout_mode="layer_random")
            for r in range(1, 9) for c in (0, 2)}
    again = client.train(start, 2, 3, 4, 8, 0.1, 0.5, dropout_mode="layer_random")
    assert torch.equal(runs[3, 2].update, again.update) and runs[3, 2].keep_fraction == again.keep_fraction
    for part, whole in zip(runs[3, 2].update.split(sizes), full.update.split(sizes)):
        assert torch.equal(part, whole) or not part.any()
    masks = {tuple(bool(p.any()) for p in out.update.split(sizes)) for out in runs.values()}
    assert len(masks) > 1
    assert {out.keep_fraction for out in runs.values()} - {0.0, 1.0}
    assert client.train(start, 2, 3, 4, 8, 0.1, 0.5).keep_fraction == 0.5     # topk reports what it was asked
    with pytest.raises(ValueError, match="dropout_mode"):
        client.train(start, 2, 3, 4, 8, 0.1, 0.5, dropout_mode="random")


def test_batches_cover_each_epoch_without_replacement():
    positions = batch_positions(7, local_steps=3, batch_size=5, generator=torch.Generator().manual_seed(1))
    assert positions.shape == (3, 5)
    assert sorted(positions.flatten()[:7].tolist()) == list(range(7))


def test_update_does_not_depend_on_training_order():
    client, _, start = make_client()
    a = [client.train(start, c, 3, 4, 8, 0.1).update for c in (0, 1, 2)]
    b = [client.train(start, c, 3, 4, 8, 0.1).update for c in (2, 1, 0)][::-1]
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    assert not torch.equal(a[0], client.train(start, 0, 4, 4, 8, 0.1).update)


def test_utility_is_oorts_statistical_utility():
    client, data, start = make_client()
    out = client.train(start, 1, 1, local_steps=3, batch_size=5, learning_rate=0.0)
    assert torch.count_nonzero(out.update) == 0
    with torch.no_grad():
        losses = torch.nn.functional.cross_entropy(client.model(data.x[20:27]), data.y[20:27], reduction="none")
    generator = torch.Generator().manual_seed(client_seed(5, 1, 1))
    trained = batch_positions(7, 3, 5, generator).flatten()
    expected = 7 * math.sqrt(float(losses[trained].square().mean()))
    assert out.utility == pytest.approx(expected, rel=1e-5)
    assert out.local_steps == 3 and out.num_samples == 7


def test_keep_fraction_sparsifies_but_norm_is_of_the_dense_update():
    client, _, start = make_client()
    dense = client.train(start, 2, 1, 5, 8, 0.1)
    sparse = client.train(start, 2, 1, 5, 8, 0.1, keep_fraction=0.1)
    assert sparse.update_norm == pytest.approx(dense.update_norm)
    assert torch.count_nonzero(sparse.update) == math.ceil(0.1 * dense.update.numel())
    assert sparse.keep_fraction == 0.1


def test_a_byzantine_client_trains_on_flipped_labels():
    client, data, start = make_client()
    client.data_attack = flip_labels
    honest = client.train(start, 2, 1, 30, 8, 0.2)
    flipped = client.train(start, 2, 1, 30, 8, 0.2, byzantine=True)
    assert not torch.equal(honest.update, flipped.update)
    x, y = data.x[27:60], data.y[27:60]

    def loss(update, labels):
        client.weights.load_(start + update)
        with torch.no_grad():
            return float(torch.nn.functional.cross_entropy(client.model(x), labels))

    assert loss(flipped.update, 2 - y) < loss(torch.zeros_like(start), 2 - y)
    assert loss(flipped.update, 2 - y) < loss(honest.update, 2 - y)
    assert loss(honest.update, y) < loss(flipped.update, y)
    assert torch.equal(client.train(start, 2, 1, 30, 8, 0.2).update, honest.update)
    assert torch.equal(data.y[27:60], y)


def test_a_byzantine_client_without_a_data_attack_is_refused():
    client, _, start = make_client()
    with pytest.raises(ClientFailure, match="no data attack"):
        client.train(start, 0, 1, 1, 8, 0.1, byzantine=True)


def test_a_client_without_samples_or_whose_training_diverges_fails():
    client, _, start = make_client()
    client.client_indices[1] = client.client_indices[1][:0]
    with pytest.raises(ClientFailure, match="client 1 holds no training samples"):
        client.train(start, 1, 1, 1, 8, 0.1)
    with pytest.raises(ClientFailure, match="diverged"):
        client.train(start, 0, 1, 5, 8, 1e30)
    with pytest.raises(ClientFailure, match="diverged"):
        client.train(torch.full_like(start, float("nan")), 0, 1, 1, 8, 0.1)


def fedprox_by_hand(client, data, start, client_id, round_index, steps, batch_size, lr, mu):
    """FedProx's local SGD written out: the gradient of F_k(w) + (mu/2)||w - w^t||^2 per step."""
    model = build_model("mlp", (1, 4, 4), 3)
    torch.nn.utils.vector_to_parameters(start.clone(), model.parameters())
    anchor = [p.detach().clone() for p in model.parameters()]
    indices = client.client_indices[client_id]
    generator = torch.Generator().manual_seed(client_seed(5, round_index, client_id))
    for positions in batch_positions(len(indices), steps, batch_size, generator):
        model.zero_grad()
        batch = indices[positions]
        torch.nn.functional.cross_entropy(model(data.x[batch]), data.y[batch]).backward()
        with torch.no_grad():
            for p, w0 in zip(model.parameters(), anchor):
                p -= lr * (p.grad + mu * (p - w0))
    return torch.nn.utils.parameters_to_vector(model.parameters()) - start


def test_fedprox_steps_follow_the_proximal_gradient():
    client, data, start = make_client()
    out = client.train(start, 2, 1, 6, 8, 0.1, proximal_mu=0.5)
    expected = fedprox_by_hand(client, data, start, 2, 1, 6, 8, 0.1, 0.5)
    torch.testing.assert_close(out.update, expected, rtol=1e-5, atol=1e-6)


def test_fedprox_with_mu_0_is_fedavg_and_a_large_mu_shrinks_the_update():
    client, _, start = make_client()
    plain = client.train(start, 2, 1, 10, 8, 0.1)
    assert torch.equal(client.train(start, 2, 1, 10, 8, 0.1, proximal_mu=0.0).update, plain.update)
    norms = [client.train(start, 2, 1, 10, 8, 0.1, proximal_mu=mu).update_norm for mu in (0.0, 1.0, 5.0)]
    assert norms[0] > norms[1] > norms[2] and norms[2] < 0.5 * norms[0]


def test_initial_loss_is_the_first_batch_loss_at_the_global_model():
    client, data, start = make_client()
    out = client.train(start, 2, 3, 4, 8, 0.1)
    generator = torch.Generator().manual_seed(client_seed(5, 3, 2))
    first = client.client_indices[2][batch_positions(33, 4, 8, generator)[0]]
    client.weights.load_(start)
    with torch.no_grad():
        expected = float(torch.nn.functional.cross_entropy(client.model(data.x[first]), data.y[first]))
    assert out.initial_loss == pytest.approx(expected, rel=1e-6) and out.initial_loss != out.train_loss


def test_local_sgd_equals_torch_optim_sgd_step_for_step():
    """The flat-vector SGD step is torch.optim.SGD's, bit for bit, on the same batches."""
    client, data, start = make_client()
    out = client.train(start, client_id=0, round_index=3, local_steps=7, batch_size=4, learning_rate=0.1)
    torch.manual_seed(0)
    model = build_model("mlp", (1, 4, 4), 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    generator = torch.Generator().manual_seed(client_seed(5, 3, 0))
    own = torch.arange(0, 20)
    for batch in own[batch_positions(20, 7, 4, generator)]:
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(data.x[batch]), data.y[batch]).backward()
        optimizer.step()
    trained = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert torch.equal(out.update, trained - start)
