"""The RNN vs Transformer tab."""

from playground.tabs import ModelSpec, Tab

TAB = Tab(
    id="rnn_transformer",
    title="RNN vs Transformer",
    summary="Recurrence against attention on the same recall task: what each remembers, and what it costs.",
    build="demos.rnn_transformer.ui:build",
    lessons=("lesson.md",),
    models=(
        *[ModelSpec(f"recall-{kind}", f"Associative recall {title} (embedded)", "demos.rnn_transformer.models:load_recall",
                    embedded_dir=f"rnn_transformer/{kind}",
                    how_to_get="Train it with `python -m demos.rnn_transformer.train`")
          for kind, title in (("rnn", "tanh RNN"), ("lstm", "LSTM"), ("gru", "GRU"), ("transformer", "Transformer"))],
    ),
)
