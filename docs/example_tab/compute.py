"""softmax(z / T): plain numbers in, plain numbers out; no gradio here."""

from dataclasses import dataclass

import numpy as np

from playground import validate

LOGITS = (2.0, 1.0, 0.5, -1.0)  # z: four tokens' scores


@dataclass(frozen=True)
class TemperatureParams:
    temperature: float = 1.0  # T


def check(p: TemperatureParams) -> TemperatureParams:
    return TemperatureParams(validate.check_float("temperature", p.temperature, 0.05, 10.0))


def softmax_with_temperature(p: TemperatureParams) -> list[float]:
    """p_i = exp(z_i / T) / sum_j exp(z_j / T); T -> 0 is argmax, T -> inf uniform."""
    z = np.asarray(LOGITS) / check(p).temperature  # (V,)
    e = np.exp(z - z.max())
    return (e / e.sum()).tolist()
