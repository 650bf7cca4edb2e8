"""The Instruction tuning tab."""

from playground.tabs import ModelSpec, Tab

TAB = Tab(
    id="instruction_tuning",
    title="Instruction tuning",
    summary="Self-Instruct and Stanford Alpaca at toy size: generate instructions, filter them, and see what tuning buys.",
    build="demos.instruction_tuning.ui:build",
    lessons=("lesson.md",),
    models=(
        ModelSpec("textworld-instruct-base", "Text World base LM, vocabulary extended for instructions, untuned (embedded)",
                  "demos.common.language_model:load_causal_lm", embedded_dir="instruction_tuning/base",
                  how_to_get="Train it with `python -m demos.instruction_tuning.train`"),
        *[ModelSpec(f"textworld-instruct-{name}", f"Text World LM instruction-tuned on {what} (embedded)",
                    "demos.common.language_model:load_causal_lm", embedded_dir=f"instruction_tuning/{name}",
                    how_to_get="Train it with `python -m demos.instruction_tuning.train`")
          for name, what in (("n500", "500 Self-Instruct examples"), ("n2000", "2,000 Self-Instruct examples"),
                             ("n8000", "8,000 Self-Instruct examples"),
                             ("n8000-unfiltered", "8,000 unfiltered Self-Instruct examples"),
                             ("n8000-noisy", "8,000 Self-Instruct examples with the teacher's mistakes"))],
    ),
)
