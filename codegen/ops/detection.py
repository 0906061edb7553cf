"""TFLite_Detection_PostProcess (custom op of SSD detectors): float box
encodings, float class scores and constant float anchors in, four float32
outputs (boxes, classes, scores, count), as TFLite's custom kernel
(tensorflow/lite/kernels/detection_postprocess.cc); the kernel contract is
in firmware/kernels/include/tinyml/detection.h.

An int8 model gets the op the way SSD exports write it (a tf.function with
`experimental_implements` naming the op, converted with `allow_custom_ops`):
the converter leaves the op float and puts DEQUANTIZE in front of its
inputs, which is also the only form tflite_micro runs. Quantized inputs
(uint8, which TFLite's kernel also reads) are refused.

Planner: the scratch (decoded corners, sort buffers) is
tinyml_detection_postprocess_f32_scratch_size; no in-place or overlap
facts: the outputs are written while every input is still read.
"""
from __future__ import annotations

import numpy as np

from tinyml.codegen import cdecl
from tinyml.codegen.lowering import activations, lowering, require
from tinyml.op_options import DETECTION_POSTPROCESS
from tinyml.steps import Call, ScratchRef, Step, TRef


def scratch_bytes(num_boxes: int, num_classes: int, max_detections: int, regular: bool) -> int:
    """Bytes of the kernel's scratch (the layout in firmware/kernels/src/detection.c)."""
    words = 4 * num_boxes + 5 * num_boxes + (num_boxes + 3) // 4 + num_boxes
    if regular:
        words += 3 * (num_boxes + max_detections) + max_detections
    else:
        words += num_boxes * num_classes
    return 4 * words


@lowering(DETECTION_POSTPROCESS)
def lower_detection_postprocess(op, graph, ctx) -> Step:
    o = op.options
    require(len(op.inputs) == 3 and len(op.outputs) == 4, op, graph,
            f"{len(op.inputs)} inputs and {len(op.outputs)} outputs (3 and 4 expected)")
    box, cls, anc = (graph.t(i) for i in op.inputs)
    outs = [graph.t(i) for i in op.outputs]
    for t, what in ((box, "box encodings"), (cls, "class predictions"), (anc, "anchors")):
        require(t.dtype == "float32", op, graph,
                f"{t.dtype} {what} (the kernel reads float32: DEQUANTIZE in front, as the converter writes it)")
    require(anc.is_const, op, graph, "run-time anchors (a constant anchor tensor is expected)")
    require(len(box.shape) == 3 and box.shape[0] == 1 and box.shape[2] >= 4, op, graph,
            f"box encodings of shape {list(box.shape)} ([1, anchors, >= 4] expected)")
    n = int(box.shape[1])
    require(len(cls.shape) == 3 and cls.shape[0] == 1 and cls.shape[1] == n, op, graph,
            f"class predictions of shape {list(cls.shape)} for {n} anchors")
    require(tuple(anc.shape) == (n, 4), op, graph, f"anchors of shape {list(anc.shape)} ([{n}, 4] expected)")
    ncb = int(cls.shape[2])
    require(o.num_classes > 0 and o.num_classes <= ncb <= o.num_classes + 1, op, graph,
            f"num_classes {o.num_classes} with {ncb} score columns")
    require(o.max_detections > 0 and o.max_classes_per_detection > 0 and o.detections_per_class > 0, op, graph,
            "max_detections, max_classes_per_detection or detections_per_class below 1")
    require(0.0 < o.nms_iou_threshold <= 1.0, op, graph, f"nms_iou_threshold {o.nms_iou_threshold} (TFLite needs (0, 1])")
    require(all(s != 0.0 for s in (o.y_scale, o.x_scale, o.h_scale, o.w_scale)), op, graph, "a zero box scale")
    slots = o.max_detections * o.max_classes_per_detection
    want = [(1, slots, 4), (1, slots), (1, slots), (1,)]
    for k, (t, w) in enumerate(zip(outs, want)):
        require(t.dtype == "float32" and t.numel == int(np.prod(w)), op, graph,
                f"output {k} {t.dtype} {list(t.shape)} (float32 {list(w)} expected)")
    p = ctx.name(f"op{op.index}")
    decl = cdecl.struct("tinyml_detection_params", f"{p}_params", num_boxes=n, box_stride=int(box.shape[2]),
                        num_classes=o.num_classes, num_classes_with_background=ncb,
                        max_detections=o.max_detections, max_classes_per_detection=o.max_classes_per_detection,
                        detections_per_class=o.detections_per_class, use_regular_nms=int(o.use_regular_nms),
                        score_threshold=float(np.float32(o.nms_score_threshold)),
                        iou_threshold=float(np.float32(o.nms_iou_threshold)),
                        y_scale=float(np.float32(o.y_scale)), x_scale=float(np.float32(o.x_scale)),
                        h_scale=float(np.float32(o.h_scale)), w_scale=float(np.float32(o.w_scale)))
    ins, outs_idx = activations(graph, op)
    call = Call("tinyml_detection_postprocess_f32",
                [ScratchRef(f"tinyml_detection_postprocess_f32_scratch_size(&{p}_params)"), f"&{p}_params",
                 TRef(box.index), TRef(cls.index), TRef(anc.index)] + [TRef(i) for i in op.outputs])
    return Step(index=op.index, kind=op.kind, inputs=ins, outputs=outs_idx, calls=[call], decls=[decl],
                scratch_bytes=scratch_bytes(n, o.num_classes, o.max_detections, o.use_regular_nms),
                comment=f"{n} anchors, {o.num_classes} classes, {'regular' if o.use_regular_nms else 'fast'} NMS, "
                        f"{o.max_detections} detections")
