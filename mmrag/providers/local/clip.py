"""CLIP image space: text→image and image→image search with a local CLIP model folder (the ``clip`` extra).

CLIP places images and texts in one vector space, so a text query finds pictures by what they show. The
model comes from a folder saved with transformers' ``save_pretrained`` (``config.json``, ``model.safetensors``
or ``pytorch_model.bin``, ``preprocessor_config.json``, tokenizer files), e.g. a local copy of
``openai/clip-vit-base-patch32``; it is only ever read from disk (``local_files_only``), never fetched from a hub.

torch and transformers are imported on first use, so importing this module stays cheap.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmrag.errors import ConfigError, MissingDependencyError

if TYPE_CHECKING:
    import torch
    from PIL import Image

__all__ = ["ClipImageEmbedder"]

logger = logging.getLogger(__name__)

_FEATURE = "CLIP image search"
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")  # each may also come sharded, with an .index.json
_HOW = "point MMRAG_CLIP_MODEL at a folder saved with CLIPModel.save_pretrained and CLIPProcessor.save_pretrained"


def _read_config(folder: Path) -> dict[str, Any]:
    """``config.json`` of a CLIP folder, checked to describe a CLIP model (``ConfigError`` naming what is wrong)."""
    if not folder.is_dir():
        raise ConfigError(f"CLIP model folder {folder} does not exist: {_HOW}")
    path = folder / "config.json"
    if not path.is_file():
        raise ConfigError(f"{folder}: no config.json, so not a CLIP model folder: {_HOW}")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: unreadable ({e}): {_HOW}") from e
    if not isinstance(config, dict) or config.get("model_type") != "clip":
        kind = config.get("model_type") if isinstance(config, dict) else None
        raise ConfigError(f"{path}: model_type is {kind!r}, not 'clip': {_HOW}")
    return config


def _check_files(folder: Path) -> None:
    """Name the missing part before transformers fails with a less direct message."""
    if not any((folder / n).is_file() or (folder / f"{n}.index.json").is_file() for n in _WEIGHT_FILES):
        raise ConfigError(f"{folder}: no weights ({' or '.join(_WEIGHT_FILES)}): {_HOW}")
    if not (folder / "preprocessor_config.json").is_file():
        raise ConfigError(f"{folder}: no preprocessor_config.json (image preprocessing): {_HOW}")
    has_tokenizer = (folder / "tokenizer.json").is_file() or (
        (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file()
    )
    if not has_tokenizer:
        raise ConfigError(f"{folder}: no tokenizer (tokenizer.json, or vocab.json and merges.txt): {_HOW}")


def _open_rgb(data: bytes) -> Image.Image:
    """Decode, apply the EXIF orientation, and flatten transparency onto white (as image viewers show it)."""
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(data)) as opened:
        img: Image.Image = ImageOps.exif_transpose(opened)
        if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
            rgba = img.convert("RGBA")
            flat = Image.new("RGB", rgba.size, (255, 255, 255))
            flat.paste(rgba, mask=rgba.getchannel("A"))
            return flat
        return img.convert("RGB")


def _features(output: Any) -> torch.Tensor:
    """The projected embeddings from ``get_image_features``/``get_text_features`` of any transformers version.

    transformers 4.x returns the projected tensor; 5.x a ``BaseModelOutputWithPooling`` whose ``pooler_output``
    holds the projection (or a tuple with it second, when the config says ``return_dict=False``).
    """
    import torch

    if isinstance(output, torch.Tensor):
        return output
    pooled = output[1] if isinstance(output, tuple) else getattr(output, "pooler_output", None)
    if not isinstance(pooled, torch.Tensor):
        raise TypeError(f"unexpected CLIP feature output: {type(output).__name__}")
    return pooled


@contextmanager
def _quiet_progress_bars() -> Iterator[None]:
    """transformers 5 draws a "Loading weights" progress bar on stderr; a library must not print, so switch
    transformers' bars off while loading and restore the caller's setting after."""
    from transformers.utils import logging as hf_logging

    enabled = getattr(hf_logging, "is_progress_bar_enabled", lambda: False)()
    if enabled:
        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]


class _Model:
    """What ``warm_up`` loads: model, image processor and tokenizer of one CLIP folder."""

    def __init__(self, folder: Path, device: str) -> None:
        try:
            import torch
        except ImportError as e:
            raise MissingDependencyError("torch", "clip", _FEATURE) from e
        try:
            from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel
        except ImportError as e:
            raise MissingDependencyError("transformers", "clip", _FEATURE) from e
        _check_files(folder)
        try:
            # local_files_only: the folder is the whole model; a hub lookup would be a surprise network call
            with _quiet_progress_bars():
                model: Any = CLIPModel.from_pretrained(folder, local_files_only=True)
            self.image_processor: Any = AutoImageProcessor.from_pretrained(  # type: ignore[no-untyped-call]
                folder, local_files_only=True
            )
            self.tokenizer: Any = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        except (OSError, ValueError) as e:
            raise ConfigError(f"{folder}: cannot load the CLIP model ({e}): {_HOW}") from e
        # float32 whatever the checkpoint's dtype: half precision is slow or unsupported for some CPU ops
        self.model: Any = model.to(device=device, dtype=torch.float32).eval()
        self.device = torch.device(device)
        config: Any = model.config
        self.max_length = int(config.text_config.max_position_embeddings)

    def embed_images(self, images: list[Image.Image]) -> list[list[float]]:
        import torch

        inputs = self.image_processor(images=images, return_tensors="pt")
        pixels = inputs["pixel_values"].to(self.device, torch.float32)
        with torch.inference_mode():
            vectors = _features(self.model.get_image_features(pixel_values=pixels))
        return _unit_rows(vectors)

    def embed_texts(self, texts: list[str]) -> list[list[float]]:
        import torch

        inputs = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        with torch.inference_mode():
            vectors = _features(
                self.model.get_text_features(
                    input_ids=inputs["input_ids"].to(self.device),
                    attention_mask=inputs["attention_mask"].to(self.device),
                )
            )
        return _unit_rows(vectors)


def _unit_rows(vectors: torch.Tensor) -> list[list[float]]:
    import torch

    unit = torch.nn.functional.normalize(vectors.float(), p=2.0, dim=-1)
    rows: list[list[float]] = unit.cpu().tolist()
    return rows


class ClipImageEmbedder:
    """Images and text queries in one CLIP space (text→image and image→image search), from a local folder.

    Needs the ``clip`` extra (torch and transformers). The constructor reads only ``config.json`` (without
    torch), so a folder that is not a CLIP model fails at once; weights load on first use (or :meth:`warm_up`),
    once, behind a lock. Safe to share between threads. Every vector is L2-normalised, so cosine similarity is
    a dot product.

    Args:
        model_path: a CLIP model folder (``config.json``, weights, ``preprocessor_config.json``, tokenizer files).
        device: a torch device (``"cpu"``, ``"cuda"``, ``"mps"``); the model runs in float32.
        batch_size: images or texts per forward pass.

    Attributes:
        model_id: ``"clip:<folder name>"``.
        dimensions: the config's ``projection_dim`` (512 for ViT-B/32, 768 for ViT-L/14).

    Raises:
        ConfigError: the folder does not exist or its ``config.json`` does not describe a CLIP model (at
            construction); weights, ``preprocessor_config.json`` or tokenizer files are missing (at first use).
        MissingDependencyError: torch or transformers is not installed (at first use).
    """

    supports_text_queries = True

    def __init__(self, model_path: str | Path, *, device: str = "cpu", batch_size: int = 16) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        self.model_path = Path(model_path).expanduser()
        self.device = device
        self.batch_size = batch_size
        self.model_id = f"clip:{self.model_path.name or self.model_path.resolve().name}"
        config = _read_config(self.model_path)  # a small JSON file: a wrong folder fails here, not at first search
        if not isinstance(config.get("projection_dim"), int):
            raise ConfigError(f"{self.model_path / 'config.json'}: no projection_dim: {_HOW}")
        self.dimensions: int = config["projection_dim"]
        self._model: _Model | None = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Load the model now (otherwise the first embed call does); idempotent and thread-safe."""
        self._load()

    def _load(self) -> _Model:
        model = self._model
        if model is None:
            with self._lock:
                if self._model is None:
                    logger.info("loading CLIP model from %s", self.model_path)
                    self._model = _Model(self.model_path, self.device)
                model = self._model
        return model

    def embed_images(self, images: Sequence[bytes], captions: Sequence[str | None] | None = None) -> list[list[float]]:
        """One unit-length vector per encoded image.

        Args:
            images: encoded image files (anything Pillow decodes); EXIF orientation is applied and
                transparency flattened onto white.
            captions: ignored: CLIP embeds images and texts separately (captions are searched in the text
                space); a joint image+caption vector is what Titan Multimodal Embeddings offers.

        Raises:
            PIL.UnidentifiedImageError: an item is not a decodable image.
        """
        if not images:
            return []
        model = self._load()
        out: list[list[float]] = []
        for start in range(0, len(images), self.batch_size):
            out.extend(model.embed_images([_open_rgb(data) for data in images[start : start + self.batch_size]]))
        return out

    def embed_texts(self, texts: Sequence[str]) -> list[list[float]]:
        """Text queries into the image space, one unit-length vector each; truncated to the model's
        context (77 tokens for OpenAI's CLIP)."""
        if not texts:
            return []
        model = self._load()
        out: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            out.extend(model.embed_texts(list(texts[start : start + self.batch_size])))
        return out
