"""The four recall models: sizes, saliency against finite differences, causality, padding, and the
committed checkpoints (answers, stored opening view, held-out accuracy)."""

import json

import numpy as np
import pytest
import torch

from demos.rnn_transformer import compute, models
from playground import settings

KINDS = compute.MODEL_KINDS


def fresh(kind: str, dtype=torch.float32):
    torch.manual_seed(0)
    return models.build_model(models.CONFIGS[kind]).to(dtype).eval()


@pytest.mark.parametrize("kind", KINDS)
def test_each_model_has_50k_to_150k_parameters_and_its_own_torch_cell(kind):
    model = fresh(kind)
    assert 50_000 <= models.n_params(model) <= 150_000
    cell = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}.get(kind)
    if cell is not None:
        assert type(model.cell) is cell
    else:
        assert len(model.blocks) == 2 and model.config.max_positions >= 160


@pytest.mark.parametrize("kind", KINDS)
def test_saliency_equals_a_finite_difference_estimate(kind):
    """||d log p(answer)/d e_t|| from autograd against central differences of every coordinate."""
    model = fresh(kind, torch.float64)
    sequence = compute.parse_sequence("a 3 b 5 . ? a")
    explained = models.explain(model, sequence)
    ids, mask, _ = models.tensors([sequence])
    best = compute.VALUES.index(explained["answer"])
    e0 = model.embed(ids).detach()  # (1, T, d)

    def logp(e):
        with torch.no_grad():
            return float(model.forward_embedded(e, mask)["logits"].log_softmax(-1)[0, best])

    h = 1e-6
    estimate = []
    for t in range(e0.shape[1]):
        grad = []
        for j in range(e0.shape[2]):
            up, down = e0.clone(), e0.clone()
            up[0, t, j] += h
            down[0, t, j] -= h
            grad.append((logp(up) - logp(down)) / (2 * h))
        estimate.append(np.linalg.norm(grad))
    np.testing.assert_allclose(explained["saliency"], estimate, rtol=1e-5, atol=1e-9)


def test_the_transformers_output_at_t_ignores_later_tokens():
    model = fresh("transformer")
    a = compute.parse_sequence("a 3 b 5 c 7 . . . ? b")
    b = compute.parse_sequence("a 3 b 5 d 1 . ? a")  # same first 4 tokens, the rest differs
    with torch.no_grad():
        ha, _ = model.hidden(model.embed(models.tensors([a])[0]))
        hb, _ = model.hidden(model.embed(models.tensors([b])[0]))
    # The two sequences have different lengths, so their matmuls are blocked differently and the
    # first 4 rows may differ in the last bits on some CPUs (3.6e-7 seen on AVX-512); a leak from a
    # later token moves them as much as it moves row 4, which differs by order 1.
    same = (ha[0, :4] - hb[0, :4]).abs().max().item()
    differs = (ha[0, 4] - hb[0, 4]).abs().max().item()
    assert same < 1e-5 and differs > 0.1, (same, differs)


def test_attention_probabilities_are_causal_and_sum_to_one():
    result = models.explain(fresh("transformer"), compute.parse_sequence("a 3 b 5 . . ? b"), details=True)
    attention = result["attention"]  # (L, nh, T, T)
    np.testing.assert_allclose(attention.sum(-1), 1, atol=1e-6)
    assert np.triu(attention, k=1).max() == 0


@pytest.mark.parametrize("kind", KINDS)
def test_padding_in_a_batch_does_not_change_an_answer(kind):
    model = fresh(kind)
    rng = np.random.default_rng(0)
    sequences = [compute.sample_sequence(rng) for _ in range(6)]
    ids, mask, _ = models.tensors(sequences)
    with torch.no_grad():
        batched = model(ids, mask)
        alone = torch.cat([model(*models.tensors([s])[:2]) for s in sequences])
    torch.testing.assert_close(batched, alone, rtol=1e-4, atol=1e-5)


def test_a_checkpoint_round_trips(tmp_path):
    model = fresh("gru")
    models.save(model, tmp_path / "gru")
    loaded = models.load_recall(models.registry.Source("local", str(tmp_path / "gru")), "cpu", torch.float32)
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name


def test_training_lowers_the_loss_and_stops_when_asked():
    cfg = models.TrainConfig(steps=40, eval_every=10, eval_size=64, warmup=5)
    _, log = models.train("transformer", cfg)
    assert [r["step"] for r in log] == [10, 20, 30, 40] and log[-1]["loss"] < log[0]["loss"]
    calls = []
    _, log = models.train("rnn", cfg, should_stop=lambda: calls.append(1) or len(calls) > 15)
    assert [r["step"] for r in log] == [10]


def test_recurrence_cost_counts_sequential_steps():
    cost = models.recurrence_cost(lengths=(8, 16), batch=2, repeats=1)
    assert cost["models"]["rnn"]["sequential_steps"] == [8, 16]
    assert cost["models"]["transformer"]["sequential_steps"] == [2, 2]
    assert all(t > 0 for k in KINDS for t in cost["models"][k]["train_step_s"])


# ----------------------------------------------------------------------------- committed checkpoints
def test_answers_for_all_four_are_reproducible_and_complete():
    sequence = compute.parse_sequence("a 3 f 7 q 1 . . . . ? f")
    first, second = compute.answer_all(sequence), compute.answer_all(sequence)
    assert first == second and first["distance"] == 6  # q 1 and four filler tokens lie between
    assert set(first["models"]) == set(KINDS)
    for r in first["models"].values():
        assert r["answer"] in compute.VALUES and 0 < r["p"] <= 1
        assert len(r["saliency"]) == len(sequence.tokens) and all(s >= 0 for s in r["saliency"])


def test_the_transformer_checkpoint_recalls_far_back():
    rng = np.random.default_rng(2024)
    sequences = [compute.sample_sequence(rng, distance=128) for _ in range(100)]
    assert models.accuracy(models.get_model("transformer"), sequences) >= 0.9


def test_the_stored_opening_view_is_what_the_checkpoints_answer():
    """default_view.json (drawn when the tab opens) must not go stale after a retraining."""
    stored = json.loads((settings.ASSETS_DIR / "rnn_transformer" / "default_view.json").read_text())
    sequence = compute.built_sequence(compute.BuilderParams())
    assert stored["sequence"] == sequence.text()
    live = compute.answer_all(sequence, details=True)
    for kind in KINDS:
        s, l = stored["result"]["models"][kind], live["models"][kind]
        assert s["answer"] == l["answer"]
        np.testing.assert_allclose(s["p"], l["p"], rtol=1e-4)
        np.testing.assert_allclose(s["saliency"], l["saliency"], rtol=1e-3, atol=1e-8)
        key = "attention" if kind == "transformer" else "states"
        np.testing.assert_allclose(np.array(s[key]), l[key], atol=2e-4)
