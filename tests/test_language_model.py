"""The small-LM toolkit: generate against Hugging Face's, sequence log-probabilities against a plain
forward pass, masked fine-tuning labels, and the loader through the registry."""

import pytest
import torch

from demos.common import language_model as lmk
from demos.common import text_world as tw
from playground import models


@pytest.fixture(scope="module")
def lm():
    return models.get("textworld-base")


def test_the_base_model_loads_through_the_registry_as_a_transformers_causal_lm(lm):
    from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

    assert isinstance(lm.model, LlamaForCausalLM) and isinstance(lm.tokenizer, PreTrainedTokenizerFast)
    assert sum(p.numel() for p in lm.model.parameters()) < 5_000_000


def test_greedy_generate_equals_hugging_faces(lm):
    prompts = [tw.qa_prompt(tw.question(name, a)) for name, a in
               [(p.name, "city") for p in list(tw.load_world(models.settings.ASSETS_DIR / "text_world" / "people.jsonl"))[:3]]]
    ours = lmk.generate(lm, prompts, max_new_tokens=6, stop=())
    for prompt, text in zip(prompts, ours):
        ids = torch.tensor([lmk.encode(lm.tokenizer, prompt)[0]])
        with torch.no_grad():
            reference = lm.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=6, do_sample=False,
                                          eos_token_id=lm.tokenizer.eos_token_id, pad_token_id=lm.tokenizer.pad_token_id)
        new = [t for t in reference[0, ids.shape[1]:].tolist()
               if t not in (lm.tokenizer.eos_token_id, lm.tokenizer.pad_token_id)]
        assert text == lmk.detokenize(lm.tokenizer.decode(new))


def test_a_batch_gives_each_prompt_what_it_gives_alone(lm):
    prompts = ["Q: Where was Zorbat Quenlip born? A:", "Zorbat Quenlip was born in Pell. Q: Where was Zorbat Quenlip born? A:"]
    assert lmk.generate(lm, prompts) == [lmk.generate(lm, [p])[0] for p in prompts]


def test_sampling_with_a_seed_is_reproducible_and_the_seed_matters(lm):
    prompt = "Q: What pet does Zorbat Quenlip have? A:"

    def draw(seed):
        return lmk.generate(lm, [prompt] * 12, 4, 1.5, torch.Generator().manual_seed(seed))

    assert draw(1) == draw(1) and draw(1) != draw(2)


def test_sequence_logprob_is_the_sum_of_token_logprobs_of_a_plain_forward(lm):
    prompt, response = "Q: Where was Zorbat Quenlip born? A:", " Pell ."
    ids, n_prompt = lmk.encode(lm.tokenizer, prompt, response)
    with torch.no_grad():
        logp = lm.model(torch.tensor([ids])).logits[0].log_softmax(-1)
    expected = sum(float(logp[t - 1, ids[t]]) for t in range(n_prompt, len(ids)))
    batched = lmk.sequence_logprob(lm, prompt, [response, " Veltra", " a much longer response ."])
    assert batched[0] == pytest.approx(expected, abs=1e-4)


def test_fine_tuning_counts_the_loss_on_response_tokens_only(lm):
    (example,) = lmk.examples(lm.tokenizer, [("Q: Where was Ab Cd born? A:", " Pell.")], response_only=True)
    ids, mask, labels = lmk.batch_tensors([example], lm.tokenizer.pad_token_id)
    n_prompt = lmk.encode(lm.tokenizer, "Q: Where was Ab Cd born? A:")[1]
    assert (labels[0, :n_prompt] == -100).all()
    assert lm.tokenizer.decode(labels[0, n_prompt:].tolist()) == "Pell . [EOS]"
    (whole,) = lmk.examples(lm.tokenizer, [("Ab Cd was born in Pell.", "")], response_only=False)
    assert (lmk.batch_tensors([whole], lm.tokenizer.pad_token_id)[2][0, 1:] != -100).all()


def test_a_few_steps_of_training_lower_the_loss_on_what_is_trained():
    texts = ["Ab Cd was born in Pell.", "Ef Gh was born in Orrin."]
    tok = lmk.build_tokenizer(texts)
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(lmk.llama_config(tok, hidden=32, layers=1, heads=2, intermediate=64))
    data = lmk.examples(tok, [(t, "") for t in texts], response_only=False)
    log = lmk.train(model, data, lmk.TrainConfig(steps=30, batch=2, lr=1e-2, warmup=2, log_every=10), tok.pad_token_id)
    assert log[-1]["loss"] < log[0]["loss"] / 2


def test_unread_tokens_are_the_vocabulary_words_no_example_contains():
    tok = lmk.build_tokenizer(["Ab Cd was born in Pell.", "Ef Gh was born in Orrin."])
    data = lmk.examples(tok, [("Ab Cd was born in Pell.", "")], response_only=False)
    assert tok.convert_ids_to_tokens(lmk.unread_tokens(tok, data)) == sorted(["Ef", "Gh", "Orrin"], key=tok.convert_tokens_to_ids)


def test_redrawn_rows_take_the_trained_rows_mean_and_spread_and_leave_the_rest():
    tok = lmk.build_tokenizer(["a b c d e f g h"])
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(lmk.llama_config(tok, hidden=64, layers=1, heads=2, intermediate=64))
    w = model.get_input_embeddings().weight
    with torch.no_grad():
        w.copy_(3.0 + 0.5 * torch.randn(w.shape))  # "trained" rows: mean 3, spread 0.5
        w[2] *= 0.01  # a shrunken row, as weight decay leaves a never-read one
    before = w.detach().clone()
    lmk.redraw_unread_rows(model, [2], seed=0)
    assert model.get_output_embeddings().weight is w  # tied: one matrix
    keep = [i for i in range(w.shape[0]) if i != 2]
    assert torch.equal(w[keep], before[keep])
    row = w[2].detach()
    assert abs(float(row.mean()) - 3.0) < 0.3 and 0.3 < float(row.std()) < 0.7
    first = w[2].detach().clone()
    lmk.redraw_unread_rows(model, [2], seed=0)  # the fit ignores the redrawn row: the same draw again
    assert torch.equal(w[2], first)


def test_the_base_models_strangers_names_look_like_trained_names(lm):
    """Their last names are in no pretraining text; train.py redraws those rows, so a stranger's name
    has a trained row's norm (before, 0.43 against 1.07), and the log lists every one of them among the
    redrawn words."""
    import json

    from playground import settings

    world = tw.load_world(settings.ASSETS_DIR / "text_world" / "people.jsonl")
    log = json.loads((settings.ASSETS_DIR / "text_world" / "train_log.json").read_text())
    strangers = {p.name.split()[1] for p in world if p.f == 0}
    assert strangers <= set(log["redrawn_rows"]["words"])
    emb, vocab = lm.model.get_input_embeddings().weight.detach(), lm.tokenizer.get_vocab()
    norm = lambda names: float(emb[[vocab[n] for n in names]].norm(dim=1).mean())  # noqa: E731
    trained = {p.name.split()[1] for p in world if p.f >= 1}
    assert 0.8 < norm(strangers) / norm(trained) < 1.25
