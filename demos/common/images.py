"""Images in: the project's checks on an uploaded image or array, shared by every tab that takes one.

An upload becomes RGB uint8 (H, W, 3) or a ``ValueError`` that says what is wrong with it: missing
or unreadable files, corrupt or truncated data, decompression bombs (refused from the header,
before any pixel is decoded), empty or extremely elongated images. Grayscale, palette, 16-bit and
transparent images are converted (alpha composited on white).
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from playground.validate import shown

MAX_PIXELS = 40_000_000  # refuse images that decode to more than 40 megapixels
MAX_ASPECT = 20.0  # longest side / shortest side


def load_image(path: Any) -> np.ndarray:
    """An image file -> RGB uint8 (H, W, 3), or ``ValueError`` saying what is wrong with it.

    The size is read from the header before any pixel is decoded, so a decompression bomb
    (a small file that decodes to a huge image) is refused without being decoded.
    Grayscale, palette and 16-bit images are converted; transparency is composited on white.
    """
    if path is None or (isinstance(path, str) and not path.strip()):
        raise ValueError("No image: upload an image file or make a new random scene.")
    path = getattr(path, "path", None) or (path.get("path") if isinstance(path, dict) else path)
    if not isinstance(path, (str, os.PathLike)) or not os.path.isfile(path):
        raise ValueError(f"image file not found: {shown(path)}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                check_image_size(*im.size)
                im.load()
                return to_rgb(ImageOps.exif_transpose(im, in_place=True) or im)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ValueError(f"the image decodes to far more than {MAX_PIXELS / 1e6:.0f} megapixels, the limit "
                         "(a decompression bomb?)") from None
    except UnidentifiedImageError:
        raise ValueError("not a readable image: upload a PNG, JPEG or WebP file") from None
    except (OSError, SyntaxError, EOFError) as err:
        raise ValueError(f"the image file is corrupt or truncated ({err})") from None


def check_image_size(width: int, height: int) -> None:
    """Refuse empty, huge (> 40 MP) or extremely elongated images."""
    if width < 1 or height < 1:
        raise ValueError(f"the image is empty ({width} x {height} pixels)")
    if width * height > MAX_PIXELS:
        raise ValueError(f"the image decodes to {width} x {height} = {width * height / 1e6:.0f} megapixels; "
                         f"the limit is {MAX_PIXELS / 1e6:.0f} MP (possible decompression bomb)")
    if max(width, height) / min(width, height) > MAX_ASPECT:
        raise ValueError(f"the image is {width} x {height} pixels; sides more than {MAX_ASPECT:.0f}:1 "
                         "apart cannot be resized for the model")


def to_rgb(im: Image.Image) -> np.ndarray:
    """Any PIL mode -> RGB uint8 (H, W, 3); alpha composited on white, 16-bit scaled to 8-bit."""
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        a = np.asarray(im, dtype=np.float64)
        span = max(float(a.max() - a.min()), 1e-9)
        im = Image.fromarray(np.uint8(np.rint(255 * (a - a.min()) / span)), mode="L")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im if im.mode == "RGBA" else im.convert("RGBA")
        paper = Image.new("RGB", rgba.size, (255, 255, 255))
        paper.paste(rgba, mask=rgba.getchannel("A"))  # a * colour + (1 - a) * white
        im = paper
    return np.asarray(im if im.mode == "RGB" else im.convert("RGB"), dtype=np.uint8)


def image_array(image: Any) -> np.ndarray:
    """A file path or an array (H, W, C) -> RGB uint8 (H, W, 3)."""
    if isinstance(image, np.ndarray):
        check_image_size(image.shape[1], image.shape[0]) if image.ndim >= 2 else None
        if image.ndim not in (2, 3) or image.dtype != np.uint8:
            raise ValueError(f"an image array must be uint8 (H, W[, C]), got {image.dtype} {image.shape}")
        return to_rgb(Image.fromarray(image))
    return load_image(image)
