"""Attention cache tab: KV-cache sizes of MHA, MQA, GQA and MLA, and the attention itself."""
