"""The RLHF vs DPO tab."""

from playground.tabs import ModelSpec, Tab

TAB = Tab(
    id="preferences",
    title="RLHF vs DPO",
    summary="Learning from preferences two ways, reward model + RL or DPO, on the same pairs with a known true reward.",
    build="demos.preferences.ui:build",
    lessons=("lesson.md",),
    models=(
        ModelSpec("textworld-pref-sft", "Text World SFT policy for RLHF vs DPO: concise, verbose and wrong demonstrations "
                  "(embedded)", "demos.common.language_model:load_causal_lm", embedded_dir="preferences/lm/sft",
                  how_to_get="Train it with `python -m demos.preferences.train`"),
        ModelSpec("textworld-pref-reward", "Text World reward model: the SFT policy with a scalar head, Bradley-Terry "
                  "(embedded)", "demos.preferences.lm:load_reward_model", embedded_dir="preferences/lm/reward",
                  how_to_get="Train it with `python -m demos.preferences.train`"),
        *[ModelSpec(f"textworld-pref-{method}-beta{beta:g}", f"Text World {title} policy, beta {beta:g} (embedded)",
                    "demos.common.language_model:load_causal_lm", embedded_dir=f"preferences/lm/{method}-beta{beta:g}",
                    how_to_get="Train it with `python -m demos.preferences.train`")
          for method, title in (("rlhf", "RLHF (PPO)"), ("dpo", "DPO")) for beta in (0.03, 0.1, 0.3, 1.0)],
    ),
)
