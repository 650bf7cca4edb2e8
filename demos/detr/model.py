"""The torch side of the DETR tab: the embedded Shapes World DETR, the set loss, inference.

Imported lazily (never by ``ui.py`` at import time): it pulls in torch and transformers.

The embedded model is transformers' ``DetrForObjectDetection`` with a small ResNet backbone
built from config (no pretrained weights, no timm) and eager attention so the decoder's
cross-attention maps can be shown. The set loss (section 3.1 of the paper) uses the numpy
Hungarian matcher of ``matching.py``, the very code the tab draws and the tests check:

    L = sum_i [ -w_c(i) log p_sigma(i)(c_i) ] / sum_i w_c(i)              (w_c = eos_coef for "no object")
      + w_L1 * sum_matched |b_i - bhat_sigma(i)|_1 / M
      + w_GIoU * sum_matched (1 - GIoU(b_i, bhat_sigma(i))) / M

summed over the decoder layers (auxiliary losses) in training.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from demos.detr.matching import CostWeights, match_batch
from demos.common.shapes_world import SHAPES
from playground.models import single_thread

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ShapesDetrSpec:
    """Architecture of the embedded DETR (the numbers ``train.py`` uses)."""

    hidden_sizes: tuple[int, ...] = (32, 64, 128)
    depths: tuple[int, ...] = (2, 2, 2)
    embedding_size: int = 32
    out_stage: str = "stage3"  # stride 16: 8 x 8 tokens at 128 x 128
    d_model: int = 128
    encoder_layers: int = 2
    decoder_layers: int = 4
    heads: int = 4
    encoder_ffn_dim: int = 512
    decoder_ffn_dim: int = 512
    num_queries: int = 12
    eos_coef: float = 0.4  # weight of "no object" in the class loss (~ objects / empty queries)


def shapes_detr_config(spec: ShapesDetrSpec = ShapesDetrSpec()):
    """A ``DetrConfig`` with a small ResNet (basic blocks) built from config, eager attention."""
    from transformers import DetrConfig, ResNetConfig

    backbone = ResNetConfig(embedding_size=spec.embedding_size, hidden_sizes=list(spec.hidden_sizes),
                            depths=list(spec.depths), layer_type="basic", out_features=[spec.out_stage])
    id2label = dict(enumerate(SHAPES))
    config = DetrConfig(
        backbone_config=backbone, use_timm_backbone=False, use_pretrained_backbone=False,
        num_queries=spec.num_queries, d_model=spec.d_model, encoder_layers=spec.encoder_layers,
        decoder_layers=spec.decoder_layers, encoder_attention_heads=spec.heads,
        decoder_attention_heads=spec.heads, encoder_ffn_dim=spec.encoder_ffn_dim, decoder_ffn_dim=spec.decoder_ffn_dim,
        dropout=0.0, auxiliary_loss=True, id2label=id2label, label2id={v: k for k, v in id2label.items()},
        eos_coefficient=spec.eos_coef,
    )
    config._attn_implementation = "eager"
    return config


def unfreeze_backbone(model) -> None:
    """From random init: trainable stem and first stage, real BatchNorm instead of frozen BN.

    transformers' DETR freezes those parts and swaps BatchNorm for ``DetrFrozenBatchNorm2d``,
    both meant for an ImageNet-pretrained backbone.
    """
    from transformers.models.detr.modeling_detr import DetrFrozenBatchNorm2d

    def swap(module: torch.nn.Module) -> None:
        for name, child in module.named_children():
            if isinstance(child, DetrFrozenBatchNorm2d):
                bn = torch.nn.BatchNorm2d(child.weight.shape[0])
                with torch.no_grad():
                    bn.weight.copy_(child.weight), bn.bias.copy_(child.bias)
                setattr(module, name, bn)
            else:
                swap(child)

    swap(model.model.backbone)
    for parameter in model.parameters():
        parameter.requires_grad_(True)


def build_shapes_detr(spec: ShapesDetrSpec = ShapesDetrSpec(), seed: int = 0):
    """A fresh, trainable embedded DETR."""
    from transformers import DetrForObjectDetection

    torch.manual_seed(seed)
    model = DetrForObjectDetection(shapes_detr_config(spec))
    unfreeze_backbone(model)
    return model


def to_pixel_values(images: np.ndarray) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> normalised float (B, 3, H, W), as ``DetrImageProcessor`` does."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


@dataclass
class LayerOutputs:
    """Class logits and boxes of every decoder layer; the last layer is the prediction."""

    logits: torch.Tensor  # (L, B, N, K+1)
    boxes: torch.Tensor  # (L, B, N, 4) normalised cxcywh
    cross_attentions: Any = None  # tuple of L x (B, heads, N, h*w) when asked
    feature_size: tuple[int, int] = (0, 0)  # (h, w) of the backbone map the decoder attends to
    memory: Any = None  # (B, h*w, d) encoder output


def forward_layers(model, pixel_values: torch.Tensor, attentions: bool = False) -> LayerOutputs:
    """Run DETR and apply its heads to every decoder layer's output (needs ``auxiliary_loss``)."""
    mask = torch.ones(pixel_values.shape[0], *pixel_values.shape[2:], dtype=torch.long)
    out = model.model(pixel_values, pixel_mask=mask, output_attentions=attentions)
    hidden = out.intermediate_hidden_states  # (L, B, N, d) or None
    hidden = hidden if hidden is not None else out.last_hidden_state[None]
    logits = model.class_labels_classifier(hidden)
    boxes = model.bbox_predictor(hidden).sigmoid()
    size = _feature_size(model, pixel_values)
    return LayerOutputs(logits, boxes, out.cross_attentions if attentions else None, size,
                        out.encoder_last_hidden_state)


def _feature_size(model, pixel_values: torch.Tensor) -> tuple[int, int]:
    """(h, w) of the backbone feature map: ResNet's ``stage{s}`` has stride 2^(s+1)."""
    stage = int(model.config.backbone_config.out_features[-1].removeprefix("stage"))
    stride = 2 ** (stage + 1)
    h, w = pixel_values.shape[2:]
    return -(-h // stride), -(-w // stride)


# ---------------------------------------------------------------------------------------------
# The set loss


def xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """cxcywh -> xyxy for (..., 4) tensors."""
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)


def paired_giou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """GIoU of matched xyxy pairs a[i], b[i]: (M, 4), (M, 4) -> (M,)."""
    area_a = (a[:, 2] - a[:, 0]).clamp(min=0) * (a[:, 3] - a[:, 1]).clamp(min=0)
    area_b = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    inter = (torch.min(a[:, 2:], b[:, 2:]) - torch.max(a[:, :2], b[:, :2])).clamp(min=0).prod(-1)
    union = area_a + area_b - inter
    enclosing = (torch.max(a[:, 2:], b[:, 2:]) - torch.min(a[:, :2], b[:, :2])).clamp(min=0).prod(-1)
    return inter / union.clamp(min=1e-9) - (enclosing - union) / enclosing.clamp(min=1e-9)


@dataclass
class SetLoss:
    """The loss terms (already weighted) and the matches used."""

    cls: torch.Tensor
    l1: torch.Tensor
    giou: torch.Tensor
    matches: list = field(default_factory=list)

    @property
    def total(self) -> torch.Tensor:
        return self.cls + self.l1 + self.giou


def set_loss(logits: torch.Tensor, boxes: torch.Tensor, targets: list[tuple[np.ndarray, np.ndarray]],
             weights: CostWeights = CostWeights(), eos_coef: float = 0.1) -> SetLoss:
    """DETR's loss for one layer: logits (B, N, K+1), boxes (B, N, 4); targets [(labels, cxcywh)]."""
    with torch.no_grad():
        probs = logits.float().softmax(-1).cpu().numpy()
        matches = match_batch(probs, boxes.detach().float().cpu().numpy(), targets, weights)
    batch, n_queries, n_cls = logits.shape
    target_cls = torch.full((batch, n_queries), n_cls - 1, dtype=torch.long)
    b_idx, q_idx, tgt_boxes = [], [], []
    for b, ((queries, tgts), (labels, tboxes)) in enumerate(zip(matches, targets)):
        target_cls[b, queries] = torch.as_tensor(np.asarray(labels)[tgts], dtype=torch.long)
        b_idx += [b] * len(queries)
        q_idx += list(queries)
        tgt_boxes.append(np.asarray(tboxes, dtype=np.float32).reshape(-1, 4)[tgts])
    class_weight = torch.ones(n_cls)
    class_weight[-1] = eos_coef
    cls = weights.w_class * F.cross_entropy(logits.flatten(0, 1).float(), target_cls.flatten(), class_weight)
    n_obj = max(len(b_idx), 1)
    matched = boxes[b_idx, q_idx].float()  # (M, 4)
    target = torch.from_numpy(np.concatenate(tgt_boxes)) if tgt_boxes else matched.new_zeros(0, 4)
    l1 = weights.w_l1 * (matched - target).abs().sum() / n_obj
    giou = weights.w_giou * (1 - paired_giou(xyxy(matched), xyxy(target))).sum() / n_obj
    return SetLoss(cls, l1, giou, matches)


# ---------------------------------------------------------------------------------------------
# Loading (the registry's loader) and inference


@dataclass
class DetrBundle:
    """A loaded DETR and its image processor, shared read-only by every request."""

    model: Any
    processor: Any
    class_names: tuple[str, ...]  # K names, index = class id
    eos_coef: float

    @property
    def components(self) -> dict:
        """For ``playground.models``' size accounting."""
        return {"model": self.model}


def load_detr(source, device, dtype) -> DetrBundle:
    """``playground.models`` loader for any ``DetrForObjectDetection`` folder or hub id.

    Eager attention so ``cross_attentions`` are returned (sdpa gives ``None``).
    """
    from transformers import AutoImageProcessor, DetrForObjectDetection

    kwargs = source.pretrained_kwargs()
    model = DetrForObjectDetection.from_pretrained(source.location, attn_implementation="eager", **kwargs)
    model = model.to(device=device, dtype=dtype).eval()
    processor_kwargs = {k: v for k, v in kwargs.items() if k != "use_safetensors"}
    processor = AutoImageProcessor.from_pretrained(source.location, **processor_kwargs)
    id2label = model.config.id2label
    names = tuple(str(id2label.get(i, id2label.get(str(i), f"class {i}"))) for i in range(model.config.num_labels))
    return DetrBundle(model, processor, names, float(model.config.eos_coefficient))


def infer(bundle: DetrBundle, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One RGB uint8 image (H, W, 3) -> logits (N, K+1), boxes (N, 4) cxcywh in [0, 1] of the
    image, cross-attention of the last decoder layer averaged over heads (N, h, w)."""
    from PIL import Image

    model = bundle.model
    inputs = bundle.processor(images=Image.fromarray(image), return_tensors="pt")
    pixel_values = inputs["pixel_values"].to(device=model.device, dtype=model.dtype)  # (1, 3, H', W')
    with torch.inference_mode(), single_thread():
        out = forward_layers(model, pixel_values, attentions=True)
    h, w = out.feature_size
    attention = out.cross_attentions[-1][0].float().mean(0)  # (N, h*w)
    if attention.shape[-1] != h * w:
        raise RuntimeError(f"cross-attention has {attention.shape[-1]} keys, expected {h} x {w}")
    return (out.logits[-1, 0].float().cpu().numpy(), out.boxes[-1, 0].float().cpu().numpy(),
            attention.reshape(-1, h, w).cpu().numpy())
