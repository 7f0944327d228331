"""A BERT encoder forward pass in numpy, enough to run sentence-transformers models without torch.

Supports the ``BertModel`` architecture with absolute position embeddings (all-MiniLM-L6-v2 and other
BERT-family sentence-transformers checkpoints saved as ``model.safetensors``), inference only, float32.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from mmrag.errors import ConfigError

__all__ = ["BertConfig", "BertEncoder", "erf", "gelu", "gelu_", "layer_norm"]

F32 = npt.NDArray[np.float32]

# Abramowitz & Stegun 7.1.26: |error| <= 1.5e-7 on the whole real line, below float32 resolution of GELU's output.
_P = np.float32(0.3275911)
_A = tuple(np.float32(a) for a in (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429))
_SQRT1_2 = np.float32(1.0 / math.sqrt(2.0))


def erf(x: F32) -> F32:
    """The error function, vectorised (numpy has none); absolute error below 1.5e-7."""
    ax = np.abs(x)
    t = np.float32(1.0) / (np.float32(1.0) + _P * ax)
    poly = t * (_A[0] + t * (_A[1] + t * (_A[2] + t * (_A[3] + t * _A[4]))))
    y = np.float32(1.0) - poly * np.exp(-ax * ax)
    out: F32 = np.copysign(y, x).astype(np.float32, copy=False)
    return out


def gelu(x: F32) -> F32:
    """Exact (erf) GELU, as BERT's ``hidden_act="gelu"``: ``x * Φ(x)``. Returns a new array."""
    return gelu_(np.array(x, dtype=np.float32, copy=True))


_CHUNK = 32768  # elements per pass: three scratch buffers of this size stay in L2 cache


def gelu_(x: F32) -> F32:
    """In-place exact GELU of a contiguous float32 array (the erf of :func:`erf`, computed chunk by chunk).

    Worked in cache-sized chunks with preallocated buffers: on a whole (tokens x 1536) activation, the
    dozen temporaries of a plain numpy expression cost more than the matrix products around it.
    """
    flat = x.reshape(-1)
    size = min(flat.size, _CHUNK)
    a_buf, t_buf, q_buf = (np.empty(size, dtype=np.float32) for _ in range(3))
    for start in range(0, flat.size, _CHUNK):
        v = flat[start : start + _CHUNK]
        n = v.size
        a, t, q = a_buf[:n], t_buf[:n], q_buf[:n]
        np.multiply(v, _SQRT1_2, out=a)
        np.abs(a, out=a)  # a = |x| / sqrt(2)
        np.multiply(a, _P, out=t)
        t += np.float32(1.0)
        np.reciprocal(t, out=t)
        np.multiply(t, _A[4], out=q)
        for coef in (_A[3], _A[2], _A[1], _A[0]):
            q += coef
            q *= t
        np.square(a, out=a)
        np.negative(a, out=a)
        np.exp(a, out=a)
        q *= a  # q = 1 - erf(a)
        np.subtract(np.float32(1.0), q, out=q)
        np.copysign(q, v, out=q)  # erf(x / sqrt(2))
        q += np.float32(1.0)
        q *= np.float32(0.5)
        v *= q
    return x


def layer_norm(x: F32, weight: F32, bias: F32, eps: float) -> F32:
    """LayerNorm over the last axis."""
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(axis=-1, keepdims=True)
    out: F32 = (centred / np.sqrt(var + np.float32(eps)) * weight + bias).astype(np.float32, copy=False)
    return out


@dataclass(frozen=True, slots=True)
class BertConfig:
    """The fields of a Hugging Face ``config.json`` the forward pass needs."""

    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int
    layer_norm_eps: float
    pad_token_id: int

    @classmethod
    def from_file(cls, path: Path) -> BertConfig:
        """Read ``config.json``; refuse architectures this forward pass does not implement."""
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("model_type", "bert") != "bert":
            raise ConfigError(f"{path}: model_type {raw.get('model_type')!r} is not supported (only BERT models)")
        if raw.get("position_embedding_type", "absolute") != "absolute":
            raise ConfigError(f"{path}: only absolute position embeddings are supported")
        if raw.get("hidden_act", "gelu") != "gelu":
            raise ConfigError(f"{path}: hidden_act {raw.get('hidden_act')!r} is not supported (only 'gelu')")
        return cls(
            hidden_size=int(raw["hidden_size"]),
            num_hidden_layers=int(raw["num_hidden_layers"]),
            num_attention_heads=int(raw["num_attention_heads"]),
            intermediate_size=int(raw["intermediate_size"]),
            max_position_embeddings=int(raw.get("max_position_embeddings", 512)),
            layer_norm_eps=float(raw.get("layer_norm_eps", 1e-12)),
            pad_token_id=int(raw.get("pad_token_id", 0)),
        )


@dataclass(frozen=True, slots=True)
class _Layer:
    qkv_w: F32  # (H, 3H): query, key and value projections fused into one matmul
    qkv_b: F32
    out_w: F32
    out_b: F32
    ln1_w: F32
    ln1_b: F32
    up_w: F32
    up_b: F32
    down_w: F32
    down_b: F32
    ln2_w: F32
    ln2_b: F32


class BertEncoder:
    """BERT's embeddings + transformer encoder (no pooler), weights pre-transposed for ``x @ W``.

    Args:
        config: the model's configuration.
        weights: tensors by their Hugging Face names (a leading ``bert.`` prefix is accepted).
    """

    def __init__(self, config: BertConfig, weights: dict[str, npt.NDArray[np.generic]]) -> None:
        self.config = config
        w = {k.removeprefix("bert."): v for k, v in weights.items()}

        def get(name: str) -> F32:
            try:
                return np.ascontiguousarray(w[name], dtype=np.float32)
            except KeyError:
                raise ConfigError(f"model weights have no tensor {name!r}: not a BERT checkpoint") from None

        self.word = get("embeddings.word_embeddings.weight")
        self.position = get("embeddings.position_embeddings.weight")
        self.token_type = get("embeddings.token_type_embeddings.weight")
        self.emb_ln = (get("embeddings.LayerNorm.weight"), get("embeddings.LayerNorm.bias"))
        self.layers: list[_Layer] = []
        for i in range(config.num_hidden_layers):
            p = f"encoder.layer.{i}."
            att = p + "attention."
            qkv_w = np.concatenate([get(f"{att}self.{n}.weight") for n in ("query", "key", "value")], axis=0)
            qkv_b = np.concatenate([get(f"{att}self.{n}.bias") for n in ("query", "key", "value")])
            self.layers.append(
                _Layer(
                    qkv_w=np.ascontiguousarray(qkv_w.T),
                    qkv_b=qkv_b,
                    out_w=np.ascontiguousarray(get(f"{att}output.dense.weight").T),
                    out_b=get(f"{att}output.dense.bias"),
                    ln1_w=get(f"{att}output.LayerNorm.weight"),
                    ln1_b=get(f"{att}output.LayerNorm.bias"),
                    up_w=np.ascontiguousarray(get(f"{p}intermediate.dense.weight").T),
                    up_b=get(f"{p}intermediate.dense.bias"),
                    down_w=np.ascontiguousarray(get(f"{p}output.dense.weight").T),
                    down_b=get(f"{p}output.dense.bias"),
                    ln2_w=get(f"{p}output.LayerNorm.weight"),
                    ln2_b=get(f"{p}output.LayerNorm.bias"),
                )
            )

    @classmethod
    def from_folder(cls, folder: Path) -> BertEncoder:
        """Load ``config.json`` and ``model.safetensors`` from a Hugging Face model folder."""
        from safetensors.numpy import load_file

        weights_path = folder / "model.safetensors"
        if not weights_path.is_file():
            raise ConfigError(f"{folder}: no model.safetensors (pytorch_model.bin checkpoints are not supported)")
        return cls(BertConfig.from_file(folder / "config.json"), load_file(str(weights_path)))

    def __call__(self, input_ids: npt.NDArray[np.int64], attention_mask: npt.NDArray[np.int64]) -> F32:
        """Last hidden states ``(batch, seq, hidden)`` for right-padded token ids (token type 0 everywhere)."""
        cfg = self.config
        batch, seq = input_ids.shape
        if seq > cfg.max_position_embeddings:
            raise ValueError(f"sequence of {seq} tokens exceeds max_position_embeddings={cfg.max_position_embeddings}")
        hidden = cfg.hidden_size
        heads = cfg.num_attention_heads
        head_dim = hidden // heads
        x = self.word[input_ids] + self.position[:seq][None, :, :] + self.token_type[0]
        x = layer_norm(x, *self.emb_ln, cfg.layer_norm_eps).reshape(batch * seq, hidden)
        # Padded keys get the most negative float32: their softmax weight underflows to exactly 0, so
        # padding cannot change the outputs of real tokens (what HF's extended attention mask does).
        key_bias = np.where(attention_mask[:, None, None, :] > 0, 0.0, np.finfo(np.float32).min).astype(np.float32)
        scale = np.float32(1.0 / math.sqrt(head_dim))
        for layer in self.layers:
            qkv = x @ layer.qkv_w + layer.qkv_b
            qkv = qkv.reshape(batch, seq, 3, heads, head_dim).transpose(2, 0, 3, 1, 4)  # (3, B, heads, T, d)
            # Contiguous (batch*heads, T, d) operands: numpy's stacked matmul on strided 4-d views can fall off
            # its BLAS path (measured: 8.5 s instead of ~0.1 s for the attention of 16 x 256 tokens).
            q = (qkv[0] * scale).reshape(batch * heads, seq, head_dim)
            k_t = np.ascontiguousarray(qkv[1].transpose(0, 1, 3, 2)).reshape(batch * heads, head_dim, seq)
            v = np.ascontiguousarray(qkv[2]).reshape(batch * heads, seq, head_dim)
            scores = (q @ k_t).reshape(batch, heads, seq, seq) + key_bias
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            ctx = (scores.reshape(batch * heads, seq, seq) @ v).reshape(batch, heads, seq, head_dim)
            ctx = ctx.transpose(0, 2, 1, 3).reshape(batch * seq, hidden)
            x = layer_norm(ctx @ layer.out_w + layer.out_b + x, layer.ln1_w, layer.ln1_b, cfg.layer_norm_eps)
            up = gelu_(x @ layer.up_w + layer.up_b)
            x = layer_norm(up @ layer.down_w + layer.down_b + x, layer.ln2_w, layer.ln2_b, cfg.layer_norm_eps)
        out: F32 = x.reshape(batch, seq, hidden)
        return out
