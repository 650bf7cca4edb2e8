"""Wiring only: a slider, a bar chart, a shareable Binding and the `temperature` endpoint."""

import gradio as gr

from docs.example_tab import compute
from playground import plots
from playground.ui_helpers import Api, Binding, Opening, api_errors


def bars(p: compute.TemperatureParams):
    fig = plots.figure("softmax(z / T)", "token", "probability", height=300)
    fig.add_bar(x=["a", "b", "c", "d"], y=compute.softmax_with_temperature(p))
    return fig


@api_errors
def temperature_api(temperature: float) -> dict:
    """The probabilities at temperature T."""
    return {"p": compute.softmax_with_temperature(compute.TemperatureParams(temperature))}


def build(demo: gr.Blocks) -> Binding:
    t = gr.Slider(0.05, 10.0, value=1.0, label="temperature T", elem_id="temperature-t")
    plot = gr.Plot(label="probabilities", elem_id="temperature-plot")
    binding = Binding(compute.TemperatureParams, temperature=t, check=compute.check,
                      api=Api("temperature", lambda p: {"temperature": p.temperature}))
    on_change = binding.event(bars)
    t.release(on_change, binding.inputs, plot, api_visibility="private")
    gr.api(temperature_api, api_name="temperature")
    opening = Opening(lambda: bars(binding.defaults()), [plot])
    binding.on_open(opening, on_change, [plot])
    return binding
