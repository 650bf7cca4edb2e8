"""What the RNN vs Transformer lesson asks, computed with the committed models (no gradio, no training).

Each function takes the tab's ``compute.BuilderParams`` for a step's view
(``demos/rnn_transformer/lesson.md``): the builder's sequence is answered by the four embedded
models exactly as the tab answers it (``models.explain``)."""

from demos.rnn_transformer import compute

TITLES = {"rnn": "tanh RNN", "lstm": "LSTM", "gru": "GRU", "transformer": "Transformer"}


def _answers(p, details: bool = False) -> tuple:
    """The builder's sequence and every model's answer (as the tab's answers table shows it)."""
    from demos.rnn_transformer import models

    sequence = compute.built_sequence(p)
    return sequence, {kind: models.explain(models.get_model(kind), sequence, details)
                      for kind in compute.MODEL_KINDS}


def who_is_right(p) -> str:
    """Which models answer the builder's sequence right, as the option reads."""
    sequence, result = _answers(p)
    right = [kind for kind in compute.MODEL_KINDS if result[kind]["answer"] == sequence.target]
    named = {(): "none of them", ("transformer",): "only the Transformer",
             ("lstm", "gru", "transformer"): "the LSTM, the GRU and the Transformer",
             ("rnn", "lstm", "gru", "transformer"): "all four"}
    return named.get(tuple(right), " and ".join(TITLES[k] for k in right))


def rnn_saliency_drop(p) -> str:
    """How many times smaller the tanh RNN's saliency at the queried value is at the view's distance
    than at the shortest distance this layout allows (same pairs, less filler): under 10x,
    10x to 10,000x, or over 10,000x (a saliency that underflows to 0 counts as over)."""
    from dataclasses import replace

    from demos.rnn_transformer import models

    rnn = models.get_model("rnn")
    far = compute.built_sequence(p)
    near = compute.built_sequence(replace(p, distance=2 * (p.n_pairs - p.query)))
    s_far = models.explain(rnn, far)["saliency"][far.value_position]
    s_near = models.explain(rnn, near)["saliency"][near.value_position]
    ratio = float("inf") if s_far == 0 else s_near / s_far
    return "under 10x" if ratio < 10 else "10x to 10,000x" if ratio <= 1e4 else "over 10,000x"


def lstm_confidence(p) -> str:
    """The LSTM's probability of its own answer: above 0.9, 0.6 to 0.9, or below 0.6."""
    _, result = _answers(p)
    prob = result["lstm"]["p"]
    return "above 0.9" if prob > 0.9 else "below 0.6" if prob < 0.6 else "between 0.6 and 0.9"


def attention_on_value(p) -> str:
    """The largest attention weight any head of the Transformer's last layer puts on the queried
    value, reading from the queried key (the tab's attention plot): under 0.1 is 'almost none',
    over 0.5 is 'most of it', between is 'a little'."""
    sequence, result = _answers(p, details=True)
    attention = result["transformer"]["attention"]  # (layers, heads, T, T)
    weight = float(attention[-1, :, -1, sequence.value_position].max())
    return "almost none (under 0.1)" if weight < 0.1 else "most of it (over 0.5)" if weight > 0.5 else "a little (0.1 to 0.5)"


def sequential_steps(p) -> str:
    """Steps that must run one after another to read the builder's sequence: LSTM and Transformer."""
    from demos.rnn_transformer import models

    length = len(compute.built_sequence(p).tokens)
    lstm = models.sequential_steps(models.CONFIGS["lstm"], length)
    transformer = models.sequential_steps(models.CONFIGS["transformer"], length)
    return f"LSTM {lstm}, Transformer {transformer}"


def lstm_fails_transformer_right(p) -> bool:
    """The LSTM answers the builder's sequence wrong while the Transformer answers it right."""
    sequence, result = _answers(p)
    return result["lstm"]["answer"] != sequence.target and result["transformer"]["answer"] == sequence.target
