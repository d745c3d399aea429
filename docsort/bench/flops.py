"""Arithmetic of a model: FLOPs per image counted from its ONNX graph (no TensorFlow, no run).

Counted: the multiply-adds of ``Conv``, ``MatMul`` and ``Gemm`` nodes, two FLOPs each, from the shapes
ONNX shape inference gives with the batch set to 1. Not counted: bias additions, batch normalisation
(folded into the convolutions by every runtime here), activations, pooling and softmax, which together
are well under 1% of a convolutional network's arithmetic.
"""

from __future__ import annotations

import math
from pathlib import Path

from schema.errors import DocsortError


class FlopCountError(DocsortError):
    """The graph's shapes cannot be inferred, so its arithmetic cannot be counted."""


def _shapes(model: object) -> dict[str, list[int]]:
    import onnx

    assert isinstance(model, onnx.ModelProto)
    known: dict[str, list[int]] = {}
    for info in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in info.type.tensor_type.shape.dim]
        known[info.name] = dims
    for init in model.graph.initializer:
        known[init.name] = list(init.dims)
    return known


def _batch_one(model: object) -> object:
    import onnx

    assert isinstance(model, onnx.ModelProto)
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for info in copy.graph.input:
        dims = info.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_value = 1
    return onnx.shape_inference.infer_shapes(copy)


def _batch_dim_one(shape: list[int] | None) -> list[int] | None:
    """A leading dimension left unknown (a reshape to -1 of the batch) is the batch: 1 here."""
    if shape and shape[0] < 0:
        return [1, *shape[1:]]
    return shape


def _inner_dim(op: str, inputs: list[list[int] | None], trans_b: bool) -> int | None:
    """K of an (M x K) @ (K x N) product: from the left operand, or else from the right one."""
    a, b = inputs[0], inputs[1] if len(inputs) > 1 else None
    if a and a[-1] > 0:
        return a[-1]
    if b and len(b) >= 2:
        k = b[-1] if (op == "Gemm" and trans_b) else b[-2]
        return k if k > 0 else None
    return None


def _node_flops(op: str, inputs: list[list[int] | None], output: list[int] | None, trans_b: bool) -> int:
    output = _batch_dim_one(output)
    if output is None or any(d < 0 for d in output):
        raise FlopCountError(f"{op}: output shape unknown ({output})")
    if op == "Conv":
        weight = inputs[1]
        if weight is None:
            raise FlopCountError("Conv: weight shape unknown")
        per_output = math.prod(weight[1:])  # (in channels / group) x kernel
        return 2 * math.prod(output) * per_output
    if op in ("MatMul", "Gemm"):
        k = _inner_dim(op, inputs, trans_b)
        if k is None:
            raise FlopCountError(f"{op}: inner dimension unknown ({inputs})")
        return 2 * math.prod(output) * k
    return 0


def count_flops(onnx_path: Path) -> int:
    """FLOPs of one image through the graph in ``onnx_path``."""
    import onnx

    model = _batch_one(onnx.load(str(onnx_path)))
    shapes = _shapes(model)
    total = 0
    for node in model.graph.node:  # type: ignore[attr-defined]
        if node.op_type not in ("Conv", "MatMul", "Gemm"):
            continue
        ins = [_batch_dim_one(shapes.get(name)) for name in node.input]
        trans_b = any(a.name == "transB" and a.i for a in node.attribute)
        total += _node_flops(node.op_type, ins, shapes.get(node.output[0]), trans_b)
    if total == 0:
        raise FlopCountError(f"{onnx_path}: no Conv, MatMul or Gemm node with known shapes")
    return total
