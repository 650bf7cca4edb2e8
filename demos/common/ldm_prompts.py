"""Prompts for a text-to-image model: the check every tab that takes one applies.

The embedded Shapes World LDM (``shapes_ldm.py``) knows only Shapes World's closed vocabulary
(``shapes_world.VOCABULARY``), so its prompts are normalised to lower-case words and any other
word is refused with the list it knows; a real model (Stable Diffusion 1.5) takes free text.
No torch: the tabs' compute modules import this on the UI's side.
"""

from __future__ import annotations

from demos.common import shapes_world
from playground.validate import shown

MAX_PROMPT_CHARS = 500


def prompt_words(text: str) -> list[str]:
    """Lower-case words of a prompt, punctuation around them removed."""
    return [w for w in (word.strip(".,;:!?\"'()") for word in text.lower().split()) if w]


def check_prompt(name: str, text, closed_vocabulary: bool) -> str:
    """The prompt, normalised; with ``closed_vocabulary`` (the embedded model) every word must be
    in Shapes World's vocabulary.

    An empty prompt is allowed: it means the unconditional model eps_theta(z_t, {}).
    """
    if not isinstance(text, str):
        raise ValueError(f"{name} must be text, got {shown(text)}")
    if len(text) > MAX_PROMPT_CHARS:
        raise ValueError(f"{name} is too long ({len(text)} characters, at most {MAX_PROMPT_CHARS})")
    if not closed_vocabulary:
        return text.strip()
    words = prompt_words(text)
    unknown = [w for w in dict.fromkeys(words) if w not in shapes_world.VOCABULARY]
    if unknown:
        raise ValueError(f"{name}: the embedded model does not know {', '.join(repr(w) for w in unknown)}. "
                         f"It knows only these words: {', '.join(shapes_world.VOCABULARY)} "
                         f"(e.g. 'a red circle'). Load Stable Diffusion 1.5 for free text.")
    return " ".join(words)
