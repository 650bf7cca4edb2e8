"""Small pieces every tab's UI uses: error translation, explanations, model-event settings."""

from __future__ import annotations

import functools
import inspect
import logging

import gradio as gr

from playground import settings
from playground.models import DeviceUnavailable, ModelUnavailable, OutOfMemory

log = logging.getLogger("playground")

USER_ERRORS = (ValueError, ModelUnavailable, DeviceUnavailable, OutOfMemory)


def user_errors(fn):
    """Turn the compute layer's ``ValueError`` / ``ModelUnavailable`` into ``gr.Error``.

    Gradio shows only ``gr.Error`` text to the user (``show_error=False``); anything else
    is logged here with its traceback and reported as a short generic message.
    """

    def translate(err: Exception) -> gr.Error:
        if isinstance(err, USER_ERRORS):
            return gr.Error(str(err), print_exception=False)
        log.exception("unexpected error in %s", fn.__name__)
        return gr.Error(f"Something went wrong ({type(err).__name__}); the error was logged.",
                        print_exception=False)

    if inspect.isgeneratorfunction(fn):  # streaming callbacks: errors surface while iterating

        @functools.wraps(fn)
        def generator_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except gr.Error:
                raise
            except Exception as err:  # noqa: BLE001 - never a stack trace to the user
                raise translate(err) from err

        return generator_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as err:  # noqa: BLE001 - never a stack trace to the user
            raise translate(err) from err

    return wrapper


def model_event() -> dict:
    """Keyword arguments for an event that runs a model: one shared pool of slots."""
    return {"concurrency_id": settings.MODEL_CONCURRENCY_ID,
            "concurrency_limit": settings.MODEL_CONCURRENCY_LIMIT}


def explanation(markdown: str, title: str = "What am I looking at?", open: bool = False) -> gr.Accordion:
    """A collapsible explanation block (math in $...$ is rendered)."""
    with gr.Accordion(title, open=open) as accordion:
        gr.Markdown(markdown, latex_delimiters=[{"left": "$$", "right": "$$", "display": True},
                                                {"left": "$", "right": "$", "display": False}])
    return accordion
