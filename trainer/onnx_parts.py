"""Parts of an exported docsort ONNX graph: the backbone, the head, the CAM branch, the feature map.

TensorFlow-free (onnx only). The contract graph has two outputs, ``probs`` and ``cam``: ``probs``
reads the backbone's last feature map through global average pooling and the dense head; ``cam``
applies the head's weights at every position of that map, or a read-out at every position of an
earlier block's maps (:mod:`trainer.cam_readout`). So:

- feature map = the tensor that the pooling before ``probs`` reads (what clustering pools); in a graph
  without such pooling, the backbone tensor that the head and the CAM branch both read;
- backbone = the feature map and every node it depends on (what INT8 quantizes).
"""

from __future__ import annotations

from collections.abc import Iterable

import onnx

from schema.errors import DocsortError

POOL_OPS = {"GlobalAveragePool", "ReduceMean"}


class GraphError(DocsortError):
    """An ONNX graph does not have the parts of the docsort model contract."""


def name_nodes(model: onnx.ModelProto) -> onnx.ModelProto:
    """Give every unnamed node a unique name (quantization addresses nodes by name). Edits in place."""
    taken = {node.name for node in model.graph.node if node.name}
    for index, node in enumerate(model.graph.node):
        if not node.name:
            candidate = f"{node.op_type}_{index}"
            while candidate in taken:
                candidate += "_"
            node.name = candidate
            taken.add(candidate)
    return model


def _producers(graph: onnx.GraphProto) -> dict[str, int]:
    return {out: index for index, node in enumerate(graph.node) for out in node.output}


def ancestors(graph: onnx.GraphProto, tensors: Iterable[str]) -> set[int]:
    """Indices of the nodes that ``tensors`` depend on."""
    producers = _producers(graph)
    seen: set[int] = set()
    stack = [producers[t] for t in tensors if t in producers]
    while stack:
        index = stack.pop()
        if index in seen:
            continue
        seen.add(index)
        stack.extend(producers[t] for t in graph.node[index].input if t in producers)
    return seen


def output_names(model: onnx.ModelProto) -> list[str]:
    return [out.name for out in model.graph.output]


def split_parts(model: onnx.ModelProto, probs: str = "probs", cam: str = "cam") -> tuple[set[int], set[int]]:
    """(backbone nodes, head-and-CAM nodes) by index; raise :class:`GraphError` without both outputs."""
    outputs = output_names(model)
    for name in (probs, cam):
        if name not in outputs:
            raise GraphError(f"the graph has no {name!r} output (outputs: {outputs})")
    backbone = ancestors(model.graph, [feature_map(model, probs, cam)])
    return backbone, (ancestors(model.graph, [probs]) | ancestors(model.graph, [cam])) - backbone


def feature_map(model: onnx.ModelProto, probs: str = "probs", cam: str = "cam") -> str:
    """The backbone tensor that the ``probs`` head pools (or, without pooling, that the head and the
    CAM branch both read)."""
    graph = model.graph
    to_probs = ancestors(graph, [probs])
    pools = [i for i in to_probs if graph.node[i].op_type in POOL_OPS]
    if pools:
        return graph.node[max(pools, key=lambda i: _depth(graph, i))].input[0]
    if cam not in output_names(model):
        raise GraphError("the graph has no 'cam' output and no pooling before 'probs'")
    to_cam = ancestors(graph, [cam])
    backbone = to_probs & to_cam
    made = {out: i for i in backbone for out in graph.node[i].output}

    def read_by(nodes: set[int]) -> set[str]:
        return {t for i in nodes for t in graph.node[i].input if t in made}

    head_reads, cam_reads = read_by(to_probs - backbone), read_by(to_cam - backbone)
    candidates = (head_reads & cam_reads) or head_reads
    if not candidates:
        raise GraphError("cannot find the feature map shared by 'probs' and 'cam'")
    return max(sorted(candidates), key=lambda t: _depth(graph, made[t]))


def _depth(graph: onnx.GraphProto, index: int) -> int:
    return len(ancestors(graph, [graph.node[index].output[0]]))


def pooled_consumer(model: onnx.ModelProto, tensor: str) -> str | None:
    """The output of a global-average-pooling node reading ``tensor``, if the graph has one."""
    for node in model.graph.node:
        if tensor in node.input and node.op_type in POOL_OPS:
            return node.output[0]
    return None


def with_outputs(model: onnx.ModelProto, names: Iterable[str]) -> onnx.ModelProto:
    """A copy of ``model`` that also outputs the inner tensors ``names`` (type and shape left open)."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    present = set(output_names(copy))
    for name in names:
        if name not in present:
            copy.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    return copy
