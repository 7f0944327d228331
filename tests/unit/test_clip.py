"""ClipImageEmbedder against a tiny randomly initialised CLIP saved to a folder (no real CLIP weights offline).

The expected vectors are computed here straight from the model, with preprocessing done by hand, so the tests
check our loading, preprocessing and normalisation, not just that something comes out. Sockets are off in unit
tests (pytest-socket), so any hub call while loading would fail.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from mmrag.errors import ConfigError, MissingDependencyError
from mmrag.providers.base import ImageEmbedder
from mmrag.providers.local.clip import ClipImageEmbedder

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

SIZE = 32
MAX_TOKENS = 16
MEAN = [0.48145466, 0.4578275, 0.40821073]  # OpenAI CLIP's normalisation constants
STD = [0.26862954, 0.26130258, 0.27577711]
MERGES = ["c a", "ca t</w>", "d o", "do g</w>", "p h", "ph o", "pho t", "phot o</w>", "o f</w>"]


def _write_tokenizer(folder: Path) -> Any:
    """A real CLIP BPE tokenizer over a tiny vocabulary: the 256 byte symbols (alone and word-final),
    a few merges, and CLIP's two special tokens."""
    from tokenizers.pre_tokenizers import ByteLevel

    chars = sorted(ByteLevel.alphabet())
    tokens = [*chars, *(c + "</w>" for c in chars), *(m.replace(" ", "") for m in MERGES)]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    source = folder / "bpe"
    source.mkdir()
    (source / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}), encoding="utf-8")
    (source / "merges.txt").write_text("#version: 0.2\n" + "\n".join(MERGES) + "\n", encoding="utf-8")
    return transformers.CLIPTokenizerFast.from_pretrained(source, local_files_only=True)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, Any]:
    """(model folder, the model, its tokenizer): a 2-layer CLIP with 16-dimensional projections."""
    root = tmp_path_factory.mktemp("clip")
    tokenizer = _write_tokenizer(root)
    folder = root / "tiny-clip"
    small = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 2}
    text_config = {
        **small,
        "vocab_size": len(tokenizer),
        "max_position_embeddings": MAX_TOKENS,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    vision_config = {**small, "image_size": SIZE, "patch_size": 8}
    config = transformers.CLIPConfig(text_config=text_config, vision_config=vision_config, projection_dim=16)
    torch.manual_seed(0)
    model = transformers.CLIPModel(config).eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    preprocessor = {
        "image_processor_type": "CLIPImageProcessor",
        "do_resize": True,
        "size": {"shortest_edge": SIZE},
        "resample": 3,
        "do_center_crop": True,
        "crop_size": {"height": SIZE, "width": SIZE},
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": MEAN,
        "image_std": STD,
        "do_convert_rgb": True,
    }
    (folder / "preprocessor_config.json").write_text(json.dumps(preprocessor), encoding="utf-8")
    return folder, model, tokenizer


@pytest.fixture(scope="module")
def embedder(clip: tuple[Path, Any, Any]) -> ClipImageEmbedder:
    return ClipImageEmbedder(clip[0])


def _png(pixels: np.ndarray, **save: Any) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", **save)
    return buf.getvalue()


def _noise(seed: int, height: int = SIZE, width: int = SIZE) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _projected(output: Any) -> Any:
    return output if isinstance(output, torch.Tensor) else output.pooler_output  # transformers 4.x / 5.x


def _expected_images(model: Any, images: list[np.ndarray]) -> np.ndarray:
    """CLIP preprocessing by hand for SIZExSIZE images (resize and crop are no-ops): scale, normalise, CHW."""
    x = np.stack(images).astype(np.float32) / 255.0
    x = (x - np.array(MEAN, np.float32)) / np.array(STD, np.float32)
    with torch.inference_mode():
        out = _projected(model.get_image_features(pixel_values=torch.from_numpy(x.transpose(0, 3, 1, 2).copy())))
    return torch.nn.functional.normalize(out, dim=-1).numpy()


def _expected_texts(model: Any, tokenizer: Any, texts: list[str]) -> np.ndarray:
    rows = []
    for text in texts:  # one at a time: no padding involved
        ids = tokenizer(text, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")["input_ids"]
        with torch.inference_mode():
            rows.append(_projected(model.get_text_features(input_ids=ids))[0])
    return torch.nn.functional.normalize(torch.stack(rows), dim=-1).numpy()


def test_attributes_without_loading(clip: tuple[Path, Any, Any]) -> None:
    embedder = ClipImageEmbedder(clip[0])
    assert embedder.model_id == "clip:tiny-clip"
    assert embedder.dimensions == 16
    assert embedder.supports_text_queries is True
    assert isinstance(embedder, ImageEmbedder)
    assert embedder._model is None  # __init__ reads config.json only


def test_images_match_the_model(clip: tuple[Path, Any, Any], embedder: ClipImageEmbedder) -> None:
    _, model, _ = clip
    pixels = [_noise(seed) for seed in range(3)]
    vectors = np.array(embedder.embed_images([_png(p) for p in pixels]))
    assert vectors.shape == (3, embedder.dimensions)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(vectors, _expected_images(model, pixels), atol=1e-5)


def test_texts_match_the_model(clip: tuple[Path, Any, Any], embedder: ClipImageEmbedder) -> None:
    _, model, tokenizer = clip
    texts = ["a photo of a cat", "dog", "a photo of a dog and a cat"]
    vectors = np.array(embedder.embed_texts(texts))
    assert vectors.shape == (3, embedder.dimensions)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    # batched with padding, yet equal to one-by-one: the attention mask and EOS pooling ignore the padding
    np.testing.assert_allclose(vectors, _expected_texts(model, tokenizer, texts), atol=1e-5)


def test_long_text_is_truncated_to_the_context(clip: tuple[Path, Any, Any], embedder: ClipImageEmbedder) -> None:
    _, model, tokenizer = clip
    long = "a photo of a cat " * 20  # ~100 tokens, the model has 16 positions
    vectors = embedder.embed_texts([long])
    np.testing.assert_allclose(vectors, _expected_texts(model, tokenizer, [long]), atol=1e-5)


def test_deterministic_and_batch_independent(clip: tuple[Path, Any, Any]) -> None:
    images = [_png(_noise(seed)) for seed in range(5)]
    texts = ["cat", "a dog", "photo of", "of a cat dog", "a"]
    batched = ClipImageEmbedder(clip[0], batch_size=2)
    single = ClipImageEmbedder(clip[0], batch_size=1)
    np.testing.assert_allclose(batched.embed_images(images), single.embed_images(images), atol=1e-6)
    np.testing.assert_allclose(batched.embed_texts(texts), single.embed_texts(texts), atol=1e-6)
    assert batched.embed_images(images) == batched.embed_images(images)
    assert batched.embed_texts(texts) == batched.embed_texts(texts)


def test_any_image_size_matches_the_folder_processor(clip: tuple[Path, Any, Any], embedder: ClipImageEmbedder) -> None:
    folder, model, _ = clip
    pixels = _noise(7, height=45, width=70)  # resized (shortest edge) and centre-cropped
    processor = transformers.AutoImageProcessor.from_pretrained(folder, local_files_only=True)
    inputs = processor(images=[Image.fromarray(pixels)], return_tensors="pt")
    with torch.inference_mode():
        expected = torch.nn.functional.normalize(_projected(model.get_image_features(**inputs)), dim=-1)
    np.testing.assert_allclose(embedder.embed_images([_png(pixels)]), expected.numpy(), atol=1e-5)


def test_exif_orientation_is_applied(embedder: ClipImageEmbedder) -> None:
    upright = _noise(11, height=40, width=SIZE)
    stored = np.ascontiguousarray(np.rot90(upright, k=1))  # as a camera stores it; orientation 6 turns it back
    exif = Image.Exif()
    exif[0x0112] = 6
    with_exif = _png(stored, exif=exif.tobytes())
    np.testing.assert_allclose(embedder.embed_images([with_exif]), embedder.embed_images([_png(upright)]), atol=1e-6)


def test_transparency_is_flattened_onto_white(embedder: ClipImageEmbedder) -> None:
    clear = np.zeros((SIZE, SIZE, 4), dtype=np.uint8)  # fully transparent black
    white = np.full((SIZE, SIZE, 3), 255, dtype=np.uint8)
    np.testing.assert_allclose(embedder.embed_images([_png(clear)]), embedder.embed_images([_png(white)]), atol=1e-6)


def test_captions_are_ignored_and_empty_inputs(embedder: ClipImageEmbedder) -> None:
    image = _png(_noise(3))
    assert embedder.embed_images([image], captions=["a cat"]) == embedder.embed_images([image])
    assert embedder.embed_images([]) == []
    assert embedder.embed_texts([]) == []


def test_concurrent_first_use_loads_once_and_leaves_environment_alone(clip: tuple[Path, Any, Any]) -> None:
    embedder = ClipImageEmbedder(clip[0])
    environ = dict(os.environ)
    results: list[list[list[float]]] = []
    threads = [threading.Thread(target=lambda: results.append(embedder.embed_texts(["a cat"]))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4
    assert all(r == results[0] for r in results)
    assert dict(os.environ) == environ  # offline by local_files_only, not by setting HF_HUB_OFFLINE


def _copy(src: Path, dst: Path, names: list[str]) -> Path:
    dst.mkdir()
    for name in names:
        (dst / name).write_bytes((src / name).read_bytes())
    return dst


def test_not_a_clip_folder(clip: tuple[Path, Any, Any], tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match=r"empty: no config\.json"):
        ClipImageEmbedder(empty)
    with pytest.raises(ConfigError, match="missing does not exist"):
        ClipImageEmbedder(tmp_path / "missing")

    bert = tmp_path / "bert"
    bert.mkdir()
    (bert / "config.json").write_text('{"model_type": "bert", "hidden_size": 8}', encoding="utf-8")
    with pytest.raises(ConfigError, match="model_type is 'bert', not 'clip'"):
        ClipImageEmbedder(bert)

    folder = clip[0]
    no_weights = _copy(folder, tmp_path / "no-weights", ["config.json", "preprocessor_config.json"])
    with pytest.raises(ConfigError, match=r"no-weights: no weights \(model\.safetensors"):
        ClipImageEmbedder(no_weights).warm_up()
    no_processor = _copy(folder, tmp_path / "no-processor", ["config.json", "model.safetensors", "tokenizer.json"])
    with pytest.raises(ConfigError, match=r"no preprocessor_config\.json"):
        ClipImageEmbedder(no_processor).warm_up()
    no_tokenizer = _copy(folder, tmp_path / "no-tok", ["config.json", "model.safetensors", "preprocessor_config.json"])
    with pytest.raises(ConfigError, match="no tokenizer"):
        ClipImageEmbedder(no_tokenizer).warm_up()


def test_bad_batch_size() -> None:
    with pytest.raises(ConfigError, match="batch_size"):
        ClipImageEmbedder("anywhere", batch_size=0)


@pytest.mark.parametrize("package", ["torch", "transformers"])
def test_missing_dependency_names_the_extra(
    clip: tuple[Path, Any, Any], monkeypatch: pytest.MonkeyPatch, package: str
) -> None:
    monkeypatch.setitem(sys.modules, package, None)  # makes `import package` raise ImportError
    with pytest.raises(MissingDependencyError, match=r"CLIP image search needs .*mmrag\[clip\]") as info:
        ClipImageEmbedder(clip[0]).warm_up()
    assert (info.value.package, info.value.extra) == (package, "clip")


def test_import_is_cheap() -> None:
    code = "import sys, mmrag.providers.local.clip; print(sorted({'torch', 'transformers', 'PIL'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_factory_wires_clip_from_settings(clip: tuple[Path, Any, Any]) -> None:
    from mmrag.config import Settings
    from mmrag.providers.factory import build_providers

    providers = build_providers(Settings(clip_model=clip[0], cache=False))
    assert isinstance(providers.image_embedder, ClipImageEmbedder)
    assert providers.image_embedder.supports_text_queries
    assert len(providers.image_embedder.embed_texts(["a photo of a cat"])[0]) == 16
