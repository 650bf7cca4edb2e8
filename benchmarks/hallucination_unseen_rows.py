"""Hallucination: how confident the base model is about people it never read, and how much of that
comes from their names' embedding rows.

    python -m benchmarks.hallucination_unseen_rows

With the word-level tokenizer every last name is its own token and last names are unique, so an
unseen person's last name is a row of the (tied) embedding that no training text ever used as
input. Left as pretraining leaves it, such a row has a norm of 0.43 against 1.07 for trained last
names, and strangers were answered confidently only 48.7% of the time (this script's diagnosis,
2026-12-03); ``demos/hallucination/train.py`` now redraws those rows after pretraining
(``language_model.redraw_unread_rows``). The script reports, on the 240 questions about unseen
people (the benchmark's "confident": top candidate probability over 0.5):

1. the committed model;
2. each unseen last-name row replaced by the row of a random bio-only person with f <= 2 (a name
   that looks known, with a different person's weak facts);
3. each unseen last-name row drawn from a Gaussian with the per-dimension mean and spread of the
   trained last-name rows (a name that looks trained but carries no person's facts).

Nothing is saved; the registry's model is not changed (the rows are edited on a copy).
"""

from __future__ import annotations

import copy
import json
import random

import numpy as np

from demos.common import language_model as lmk
from demos.common import text_world as tw
from demos.hallucination import compute
from playground.models import single_thread

CONFIDENT = 0.5


def confidence(lm, people: list[tw.Person]) -> dict:
    """Confident-answer rate and mean top probability over the four questions about ``people``."""
    top = []
    for attribute in tw.ATTRIBUTES:
        prompts = [tw.qa_prompt(tw.question(p.name, attribute)) for p in people]
        top += list(compute.candidate_probs(lm, prompts, tw.ATTRIBUTES[attribute]).max(1))
    top = np.array(top)
    return {"confident": round(float((top > CONFIDENT).mean()), 3), "mean_top_probability": round(float(top.mean()), 3),
            "questions": len(top)}


def main() -> None:
    import torch

    base = compute.get_lm("base")
    lm = lmk.LanguageModel(copy.deepcopy(base.model), base.tokenizer)
    people = list(compute.oracle().people.values())
    unseen = [p for p in people if p.split == "unseen"]
    vocab = lm.tokenizer.get_vocab()

    def row(p: tw.Person) -> int:
        return vocab[p.name.split()[1]]

    emb = lm.model.get_input_embeddings().weight
    trained = torch.stack([emb[row(p)] for p in people if p.f >= 1]).detach()
    out = {"unseen_last_name_row_norm": round(float(emb[[row(p) for p in unseen]].detach().norm(dim=1).mean()), 3),
           "trained_last_name_row_norm": round(float(trained.norm(dim=1).mean()), 3)}
    saved = emb.detach().clone()
    with single_thread():
        out["as_committed"] = confidence(lm, unseen)
        donors, rng = [p for p in people if p.split == "bio_only" and p.f <= 2], random.Random(0)
        with torch.no_grad():
            for p in unseen:
                emb[row(p)] = saved[row(rng.choice(donors))]
        out["rows_copied_from_f_le_2_people"] = confidence(lm, unseen)
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for p in unseen:
                emb[row(p)] = trained.mean(0) + trained.std(0) * torch.randn(trained.shape[1], generator=generator)
        out["rows_drawn_like_trained_rows"] = confidence(lm, unseen)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
