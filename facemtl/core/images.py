"""Reading images for facemtl: one place that turns files into 8-bit BGR arrays or says why not."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

from facemtl.core.inputs import describe_folder

#: Pixel budget before a clear refusal (about 16 000 × 16 000); bigger files are not photos.
MAX_PIXELS = 16_000 * 16_000


class ImageReadError(ValueError):
    """An input image could not be turned into pixels; the message names the file and the cause."""


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as an 8-bit BGR ``(H, W, 3)`` array.

    Handles grayscale, RGBA, palette and 16-bit files, and applies the EXIF orientation, so what
    facemtl sees is what a photo viewer shows. Raises :class:`ImageReadError` with the path and
    the reason for a missing, empty, truncated or undecodable file.
    """
    p = Path(path)
    if not p.exists():
        raise ImageReadError(f"{p}: no such file")
    if p.is_dir():
        raise ImageReadError(describe_folder(p))
    if p.stat().st_size == 0:
        raise ImageReadError(f"{p}: file is empty (0 bytes)")
    try:
        data = p.read_bytes()
        size = _jpeg_size(data)
        if size is not None and size[0] * size[1] <= MAX_PIXELS and _complete_jpeg(data):
            # OpenCV's decoder: the same libjpeg pixels (tested equal) at a third of the time
            # through PIL, and it applies the EXIF orientation too
            bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            if bgr is not None:
                return bgr
        with Image.open(io.BytesIO(data)) as im:
            if im.width * im.height > MAX_PIXELS:
                raise ImageReadError(f"{p}: {im.width}×{im.height} is larger than facemtl reads")
            im.load()  # raises on truncated data
            im = ImageOps.exif_transpose(im)
            return pil_to_bgr(im)
    except ImageReadError:
        raise
    except Image.DecompressionBombError as e:
        raise ImageReadError(f"{p}: image too large ({e})") from None
    except (OSError, ValueError, SyntaxError) as e:
        raise ImageReadError(f"{p}: cannot decode image ({e})") from None


#: JPEG start-of-frame markers (baseline, progressive, …), whose segment holds the image size.
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a JPEG with 1 or 3 colour components, read from its frame header; None for
    anything else (CMYK, another format, a header it cannot walk), which goes through PIL."""
    if data[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if marker in _SOF:
            height, width = int.from_bytes(data[i + 5 : i + 7], "big"), int.from_bytes(data[i + 7 : i + 9], "big")
            return (width, height) if data[i + 9] in (1, 3) and width and height else None
        i += 2 + length
    return None


def _complete_jpeg(data: bytes) -> bool:
    """Whether a JPEG file ends with its end-of-image marker: OpenCV decodes a cut file without an
    error (grey where the data stops), so a file without it goes through PIL, which refuses it."""
    return data.rstrip(b"\0")[-2:] == b"\xff\xd9"


def pil_to_bgr(im: Image.Image) -> np.ndarray:
    """Any PIL image mode → 8-bit BGR; 16-bit and float modes are rescaled, alpha is dropped."""
    if im.width == 0 or im.height == 0:
        raise ImageReadError(f"image has zero size ({im.width}×{im.height})")
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        hi = 65535.0 if im.mode.startswith("I;16") or a.max() > 255 else 255.0
        a = np.clip(a * (255.0 / hi), 0, 255).astype(np.uint8)
        return cv2.cvtColor(a, cv2.COLOR_GRAY2BGR)
    if im.mode != "RGB":
        im = im.convert("RGBA").convert("RGB") if "A" in im.getbands() or im.mode == "P" else im.convert("RGB")
    return cv2.cvtColor(np.asarray(im), cv2.COLOR_RGB2BGR)


def to_bgr(image: np.ndarray | Image.Image, *, color: str = "bgr") -> np.ndarray:
    """An in-memory image → 8-bit BGR. ``color`` states the channel order of a 3/4-channel array."""
    if isinstance(image, Image.Image):
        return pil_to_bgr(ImageOps.exif_transpose(image))
    a = np.asarray(image)
    if a.size == 0 or a.ndim < 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ImageReadError(f"image array has zero size (shape {a.shape})")
    if a.dtype == np.uint16:
        a = (a / 257.0).round().astype(np.uint8)
    elif a.dtype in (np.float32, np.float64):
        a = np.clip(a * (255.0 if a.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    elif a.dtype != np.uint8:
        raise ImageReadError(f"unsupported image dtype {a.dtype}")
    if a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 1):
        return cv2.cvtColor(a.reshape(a.shape[0], a.shape[1]), cv2.COLOR_GRAY2BGR)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise ImageReadError(f"expected an H×W, H×W×3 or H×W×4 array, got shape {a.shape}")
    if color not in ("bgr", "rgb"):
        raise ValueError(f"color must be 'bgr' or 'rgb', got {color!r}")
    a = a[:, :, :3]
    return np.ascontiguousarray(a[:, :, ::-1] if color == "rgb" else a)


def to_channels(image_bgr: np.ndarray, channels: int) -> np.ndarray:
    """8-bit BGR → the model's input colour layout: ``(H, W)`` gray or ``(H, W, 3)`` BGR."""
    if channels == 1:
        return cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY) if image_bgr.ndim == 3 else image_bgr
    if channels == 3:
        return image_bgr
    raise ValueError(f"channels must be 1 or 3, got {channels}")


def to_array(crops: np.ndarray, mean: float, std: float) -> np.ndarray:
    """uint8 crops ``(N, H, W)`` or ``(N, H, W, C)`` → normalised float32 ``(N, C, H, W)``."""
    x = (crops.astype(np.float32) / np.float32(255.0) - np.float32(mean)) / np.float32(std)
    return np.ascontiguousarray(x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2))
