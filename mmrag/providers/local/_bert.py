"""A BERT encoder forward pass in numpy, enough to run sentence-transformers models without torch.

Supports the ``BertModel`` architecture with absolute position embeddings (all-MiniLM-L6-v2 and other
BERT-family sentence-transformers checkpoints saved as ``model.safetensors``), inference only, float32.

The weights are memory-mapped from ``model.safetensors`` and used in place, as read-only views in the
checkpoint's (out, in) layout (see :func:`_linear`): loading copies nothing, so a cold ``mmrag ask`` pays ~1 ms
for the weights instead of ~0.1 s (reading, fusing and transposing 90 MB), processes share the pages, and the
vectors are the same bits as with transposed copies. Float16/bfloat16 checkpoints are converted to float32 once.
"""

from __future__ import annotations

import json
import math
import mmap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from mmrag.errors import ConfigError

__all__ = ["BertConfig", "BertEncoder", "erf", "gelu", "gelu_", "layer_norm", "read_safetensors"]

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


_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
           "I8": "i1", "U8": "u1", "BOOL": "?"}
"""safetensors dtype codes; BF16 is read as its raw 16 bits (numpy has no bfloat16) and widened by ``_float32``."""

_MAX_HEADER = 100_000_000  # the format's own limit on the JSON header


def read_safetensors(path: Path) -> dict[str, npt.NDArray[np.generic]]:
    """The tensors of a ``.safetensors`` file as read-only arrays memory-mapped from it (nothing is copied).

    Format (https://huggingface.co/docs/safetensors): an 8-byte little-endian header length, a JSON header
    ``{name: {"dtype", "shape", "data_offsets": [begin, end]}}`` (offsets relative to the end of the header),
    then the raw little-endian data. BF16 tensors come back as ``uint16`` (see ``_float32``).

    Raises:
        ConfigError: the file is missing, truncated or not in this format (the message says which tensor).
    """
    def bad(reason: str) -> ConfigError:
        return ConfigError(f"{path}: not a readable safetensors file ({reason}): reinstall or re-download the model")

    try:
        with path.open("rb") as f:
            size = f.seek(0, 2)
            if size < 8:
                raise bad(f"{size} bytes")
            data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as e:
        raise bad(str(e)) from e
    length = int.from_bytes(data[:8], "little")
    if length > min(size - 8, _MAX_HEADER):
        raise bad(f"header of {length} bytes in a file of {size}")
    try:
        header = json.loads(bytes(data[8 : 8 + length]))
    except (UnicodeDecodeError, ValueError) as e:
        raise bad(f"header is not JSON: {e}") from e
    if not isinstance(header, dict):
        raise bad("header is not a JSON object")
    base = 8 + length
    out: dict[str, npt.NDArray[np.generic]] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype = np.dtype(_DTYPES[info["dtype"]])
            shape = tuple(int(n) for n in info["shape"])
            begin, end = (int(n) for n in info["data_offsets"])
        except (KeyError, TypeError, ValueError) as e:
            raise bad(f"tensor {name!r}: unsupported or malformed entry {info!r}") from e
        count = math.prod(shape)
        if not 0 <= begin <= end <= size - base or end - begin != count * dtype.itemsize:
            raise bad(f"tensor {name!r}: data {begin}..{end} does not fit the file or its shape {shape}")
        out[name] = np.frombuffer(data, dtype=dtype, count=count, offset=base + begin).reshape(shape)
    return out


def _float32(array: npt.NDArray[np.generic]) -> F32:
    """``array`` as float32: the same memory when it already is, else a converted copy.

    ``uint16`` is taken as bfloat16 bits (what :func:`read_safetensors` gives for BF16): the top half of a float32.
    """
    if array.dtype == np.uint16:
        widened: F32 = (array.astype(np.uint32) << 16).view(np.float32)
        return widened
    out: F32 = np.asarray(array, dtype=np.float32)
    return out


@dataclass(frozen=True, slots=True)
class _Layer:
    # Projection weights are (in, out) views ``W.T`` of the checkpoint's (out, in) tensors, multiplied by
    # :func:`_linear` (no copy; batches and single queries measured as fast as on pre-transposed copies, same bits).
    q_w: F32
    q_b: F32
    k_w: F32
    k_b: F32
    v_w: F32
    v_b: F32
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


_THIN = 64
"""Row count up to which :func:`_linear` multiplies as ``(W @ x.T).T``."""


def _linear(x: F32, w: F32, b: F32) -> F32:
    """``x @ w + b`` for ``w = W.T``, a transposed view of the checkpoint's (out, in) matrix ``W``.

    With few rows (a query's tokens) OpenBLAS is faster with ``W`` itself as the left operand (measured 1.5-2x on
    a 20-token query's projections); with many rows (batches of documents) ``x @ w`` is as fast as on a
    contiguous copy.
    """
    if x.shape[0] <= _THIN:
        thin: F32 = np.ascontiguousarray((w.T @ x.T).T)
        thin += b
        return thin
    out: F32 = x @ w + b
    return out


class BertEncoder:
    """BERT's embeddings + transformer encoder (no pooler), run on the checkpoint's tensors in place.

    Args:
        config: the model's configuration.
        weights: tensors by their Hugging Face names (a leading ``bert.`` prefix is accepted); float32 tensors
            are used without copying (read-only arrays are fine), others are converted.
    """

    def __init__(self, config: BertConfig, weights: dict[str, npt.NDArray[np.generic]]) -> None:
        self.config = config
        w = {k.removeprefix("bert."): v for k, v in weights.items()}

        def get(name: str) -> F32:
            try:
                return _float32(w[name])
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
            self.layers.append(
                _Layer(
                    q_w=get(f"{att}self.query.weight").T,
                    q_b=get(f"{att}self.query.bias"),
                    k_w=get(f"{att}self.key.weight").T,
                    k_b=get(f"{att}self.key.bias"),
                    v_w=get(f"{att}self.value.weight").T,
                    v_b=get(f"{att}self.value.bias"),
                    out_w=get(f"{att}output.dense.weight").T,
                    out_b=get(f"{att}output.dense.bias"),
                    ln1_w=get(f"{att}output.LayerNorm.weight"),
                    ln1_b=get(f"{att}output.LayerNorm.bias"),
                    up_w=get(f"{p}intermediate.dense.weight").T,
                    up_b=get(f"{p}intermediate.dense.bias"),
                    down_w=get(f"{p}output.dense.weight").T,
                    down_b=get(f"{p}output.dense.bias"),
                    ln2_w=get(f"{p}output.LayerNorm.weight"),
                    ln2_b=get(f"{p}output.LayerNorm.bias"),
                )
            )

    @classmethod
    def from_folder(cls, folder: Path) -> BertEncoder:
        """Read ``config.json`` and memory-map ``model.safetensors`` from a Hugging Face model folder."""
        weights_path = folder / "model.safetensors"
        if not weights_path.is_file():
            raise ConfigError(f"{folder}: no model.safetensors (pytorch_model.bin checkpoints are not supported)")
        return cls(BertConfig.from_file(folder / "config.json"), read_safetensors(weights_path))

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

        def split_heads(t: F32) -> F32:  # (B*T, H) -> contiguous (B*heads, T, d)
            return np.ascontiguousarray(t.reshape(batch, seq, heads, head_dim).transpose(0, 2, 1, 3)).reshape(
                batch * heads, seq, head_dim)

        for layer in self.layers:
            # Contiguous (batch*heads, T, d) operands: numpy's stacked matmul on strided 4-d views can fall off
            # its BLAS path (measured: 8.5 s instead of ~0.1 s for the attention of 16 x 256 tokens).
            q = split_heads(_linear(x, layer.q_w, layer.q_b) * scale)
            k = _linear(x, layer.k_w, layer.k_b).reshape(batch, seq, heads, head_dim)
            k_t = np.ascontiguousarray(k.transpose(0, 2, 3, 1)).reshape(batch * heads, head_dim, seq)
            v = split_heads(_linear(x, layer.v_w, layer.v_b))
            scores: F32 = (q @ k_t).reshape(batch, heads, seq, seq) + key_bias
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            per_head: F32 = (scores.reshape(batch * heads, seq, seq) @ v).reshape(batch, heads, seq, head_dim)
            ctx: F32 = per_head.transpose(0, 2, 1, 3).reshape(batch * seq, hidden)
            x = layer_norm(_linear(ctx, layer.out_w, layer.out_b) + x, layer.ln1_w, layer.ln1_b, cfg.layer_norm_eps)
            up = gelu_(_linear(x, layer.up_w, layer.up_b))
            x = layer_norm(_linear(up, layer.down_w, layer.down_b) + x, layer.ln2_w, layer.ln2_b, cfg.layer_norm_eps)
        out: F32 = x.reshape(batch, seq, hidden)
        return out
