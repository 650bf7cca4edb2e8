"""The Hallucination tab."""

from playground.tabs import ModelSpec, Tab

TAB = Tab(
    id="hallucination",
    title="Hallucination",
    summary="When and why a language model makes things up: a tiny LM whose every fact, and how often it saw it, is known.",
    build="demos.hallucination.ui:build",
    lessons=("lesson.md",),
    models=(
        ModelSpec("textworld-base", "Text World base LM (embedded LlamaForCausalLM)", "demos.common.language_model:load_causal_lm",
                  embedded_dir="text_world/base", how_to_get="Train it with `python -m demos.hallucination.train`"),
        *[ModelSpec(f"textworld-gekhman-{share}", f"Text World base LM fine-tuned on QA, {share}% unknown (embedded)",
                    "demos.common.language_model:load_causal_lm", embedded_dir=f"text_world/gekhman-{share}",
                    how_to_get="Train it with `python -m demos.hallucination.train`")
          for share in (0, 25, 50, 75)],
    ),
)
