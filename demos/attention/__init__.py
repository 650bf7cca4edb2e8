"""Attention cache tab: KV-cache sizes of MHA, MQA, GQA and MLA, and the attention itself."""

from playground.tabs import Tab

TAB = Tab(
    id="attention",
    title="Attention cache",
    summary="MHA, MQA, GQA and MLA: who shares keys and values, and what the KV cache costs.",
    build="demos.attention.ui:build",
    lessons=("lesson.md",),
)
