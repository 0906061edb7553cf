"""YOLO-style detection on the ViT patch grid: target encoding, loss, decode,
NMS and VOC-style mAP@0.5.

Each patch token (grid cell of `patch_size` pixels) predicts 5 + C numbers:

    [0]      objectness logit            score = sigmoid(obj) * softmax(cls)[c]
    [1], [2] tx, ty logits               centre = (col + sigmoid(tx), row + sigmoid(ty)) * cell
    [3], [4] tw, th                      size   = exp(tw) * cell, exp(th) * cell
    [5:]     class logits

A cell is responsible for the object whose box centre falls inside it. With
`ViTConfig.det_split` the exported model has three output tensors, objectness
(G, G, 1), box (G, G, 4) and class logits (G, G, C), each with its own int8
scale (one shared scale for the fused tensor leaves the box offsets a handful
of levels); `export.run_int8` dequantizes and concatenates them into the
layout above, so decode() is the same for both. The C routines in
firmware/postprocess/detect_post.c (`tinyml_detect_decode` for the fused
tensor, `tinyml_detect_decode_split` for the three heads) implement the same
decode. The loss adds a 1 - GIoU term on positive cells to the YOLO terms.
"""
from __future__ import annotations

import numpy as np

from tinyml.tinyvit.config import ViTConfig

TW_CLIP = 4.0      # |tw|, |th| are clipped before exp() in decode (C does the same)
GIOU_WEIGHT = 2.0  # weight of the 1 - GIoU box term in the loss


# ---------------------------------------------------------------- targets
def encode_targets(boxes: list[np.ndarray], cfg: ViTConfig) -> np.ndarray:
    """Boxes (rows: class, x1, y1, x2, y2 in pixels) -> (N, G, G, 5 + C) targets."""
    g, cell, c = cfg.grid, float(cfg.patch_size), cfg.num_classes
    t = np.zeros((len(boxes), g, g, 5 + c), np.float32)
    for n, bs in enumerate(boxes):
        for cls, x1, y1, x2, y2 in np.asarray(bs, np.float32).reshape(-1, 5):
            w, h = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            col = int(np.clip(cx // cell, 0, g - 1))
            row = int(np.clip(cy // cell, 0, g - 1))
            t[n, row, col, 0] = 1.0
            t[n, row, col, 1] = np.clip(cx / cell - col, 0.0, 1.0)
            t[n, row, col, 2] = np.clip(cy / cell - row, 0.0, 1.0)
            t[n, row, col, 3] = np.log(w / cell)
            t[n, row, col, 4] = np.log(h / cell)
            t[n, row, col, 5:] = 0.0
            t[n, row, col, 5 + int(cls)] = 1.0
    return t


def augment_shift(x: np.ndarray, boxes, rng: np.random.Generator, max_shift: int):
    """Shift each canvas (and its boxes) by up to `max_shift` px; drop boxes
    whose centre leaves the canvas, clip the rest."""
    n, h, w, _ = x.shape
    out = np.zeros_like(x)
    new_boxes = []
    for i in range(n):
        dy, dx = (int(v) for v in rng.integers(-max_shift, max_shift + 1, 2))
        ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
        xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
        out[i, yd, xd] = x[i, ys, xs]
        b = np.asarray(boxes[i], np.float32).reshape(-1, 5).copy()
        b[:, [1, 3]] += dx
        b[:, [2, 4]] += dy
        cx, cy = (b[:, 1] + b[:, 3]) / 2, (b[:, 2] + b[:, 4]) / 2
        keep = (cx >= 0) & (cx < w) & (cy >= 0) & (cy < h)
        b = b[keep]
        b[:, [1, 3]] = np.clip(b[:, [1, 3]], 0, w)
        b[:, [2, 4]] = np.clip(b[:, [2, 4]], 0, h)
        new_boxes.append(b)
    return out, new_boxes


def _loss_fn(y_true, y_pred):
    from keras import ops
    obj_t = y_true[..., 0]
    obj_p = y_pred[..., 0]
    bce = ops.maximum(obj_p, 0) - obj_p * obj_t + ops.log1p(ops.exp(-ops.abs(obj_p)))
    # positives are rare (1-4 of 64 cells): weight them up
    obj_loss = ops.mean(bce * (1.0 + 4.0 * obj_t), axis=(1, 2))
    npos = ops.maximum(ops.sum(obj_t, axis=(1, 2)), 1.0)
    xy = ops.sum(ops.square(ops.sigmoid(y_pred[..., 1:3]) - y_true[..., 1:3]), -1)
    wh = ops.sum(ops.square(y_pred[..., 3:5] - y_true[..., 3:5]), -1)
    logp = ops.log_softmax(y_pred[..., 5:], axis=-1)
    ce = -ops.sum(y_true[..., 5:] * logp, -1)
    # 1 - GIoU of predicted and target box in cell units (same cell, so the
    # column/row offsets cancel); IoU@0.5 is what mAP scores
    pxy = ops.sigmoid(y_pred[..., 1:3])
    pwh = ops.exp(ops.clip(y_pred[..., 3:5], -TW_CLIP, TW_CLIP))
    txy, twh = y_true[..., 1:3], ops.exp(y_true[..., 3:5])
    p1, p2 = pxy - pwh / 2, pxy + pwh / 2
    t1, t2 = txy - twh / 2, txy + twh / 2
    iwh = ops.maximum(ops.minimum(p2, t2) - ops.maximum(p1, t1), 0.0)
    inter = iwh[..., 0] * iwh[..., 1]
    union = pwh[..., 0] * pwh[..., 1] + twh[..., 0] * twh[..., 1] - inter
    cwh = ops.maximum(p2, t2) - ops.minimum(p1, t1)
    hull = cwh[..., 0] * cwh[..., 1]
    giou = inter / (union + 1e-6) - (hull - union) / (hull + 1e-6)
    pos = ops.sum(obj_t * (5.0 * xy + 2.0 * wh + ce + GIOU_WEIGHT * (1.0 - giou)),
                  axis=(1, 2)) / npos
    return obj_loss * 4.0 + pos


def DetectionLoss(cfg: ViTConfig | None = None):
    import keras

    @keras.saving.register_keras_serializable(package="tinyvit")
    class _DetectionLoss(keras.losses.Loss):
        def __init__(self, name="tinyvit_detection_loss", **kw):
            super().__init__(name=name, **kw)

        def call(self, y_true, y_pred):
            return _loss_fn(y_true, y_pred)
    return _DetectionLoss()


# ---------------------------------------------------------------- decode + NMS
def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def decode(grid: np.ndarray, cfg: ViTConfig, score_threshold: float = 0.05,
           iou_threshold: float = 0.45, max_boxes: int = 20) -> np.ndarray:
    """One image's (G, G, 5 + C) float output -> rows (score, class, x1, y1, x2, y2)."""
    g, cell = cfg.grid, float(cfg.patch_size)
    grid = np.asarray(grid, np.float64).reshape(g, g, -1)
    obj = _sigmoid(grid[..., 0])
    logits = grid[..., 5:]
    e = np.exp(logits - logits.max(-1, keepdims=True))
    probs = e / e.sum(-1, keepdims=True)
    cls = probs.argmax(-1)
    score = obj * probs.max(-1)
    rows = []
    for r in range(g):
        for c in range(g):
            if score[r, c] < score_threshold:
                continue
            cx = (c + _sigmoid(grid[r, c, 1])) * cell
            cy = (r + _sigmoid(grid[r, c, 2])) * cell
            w = np.exp(np.clip(grid[r, c, 3], -TW_CLIP, TW_CLIP)) * cell
            h = np.exp(np.clip(grid[r, c, 4], -TW_CLIP, TW_CLIP)) * cell
            rows.append([score[r, c], cls[r, c], cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
    dets = np.array(rows, np.float64).reshape(-1, 6)
    return nms(dets, iou_threshold, max_boxes)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (x1, y1, x2, y2) boxes: (N, 4) x (M, 4) -> (N, M)."""
    a, b = np.asarray(a, np.float64)[:, None, :], np.asarray(b, np.float64)[None, :, :]
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def nms(dets: np.ndarray, iou_threshold: float = 0.45, max_boxes: int = 20) -> np.ndarray:
    """Greedy per-class NMS; rows (score, class, x1, y1, x2, y2), highest score first.
    Ties in score keep the earlier row (stable sort), as the C routine does."""
    if len(dets) == 0:
        return dets
    order = np.argsort(-dets[:, 0], kind="stable")
    dets = dets[order]
    keep: list[int] = []
    for i in range(len(dets)):
        ok = True
        for j in keep:
            if dets[j, 1] == dets[i, 1] and box_iou(dets[i:i + 1, 2:], dets[j:j + 1, 2:])[0, 0] \
                    > iou_threshold:
                ok = False
                break
        if ok:
            keep.append(i)
            if len(keep) == max_boxes:
                break
    return dets[keep]


# ---------------------------------------------------------------- mAP
def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """VOC (2010+) all-point interpolated AP: area under the precision envelope."""
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    for i in range(len(p) - 2, -1, -1):
        p[i] = max(p[i], p[i + 1])
    idx = np.flatnonzero(r[1:] != r[:-1])
    return float(np.sum((r[idx + 1] - r[idx]) * p[idx + 1]))


def mean_average_precision(detections: list[np.ndarray], ground_truth: list[np.ndarray],
                           num_classes: int, iou_threshold: float = 0.5) -> float:
    """mAP over classes present in the ground truth.

    detections[i]: rows (score, class, x1, y1, x2, y2); ground_truth[i]: rows
    (class, x1, y1, x2, y2). Each detection, in descending score order over the
    whole set, matches the unmatched ground-truth box of its class with the
    highest IoU >= threshold (true positive) or counts as a false positive.
    """
    aps = []
    for c in range(num_classes):
        gts = {i: np.asarray(g, np.float64).reshape(-1, 5) for i, g in enumerate(ground_truth)}
        gts = {i: g[g[:, 0] == c, 1:] for i, g in gts.items()}
        n_gt = sum(len(g) for g in gts.values())
        if n_gt == 0:
            continue
        used = {i: np.zeros(len(g), bool) for i, g in gts.items()}
        cand = [(d[0], i, d[2:]) for i, ds in enumerate(detections)
                for d in np.asarray(ds, np.float64).reshape(-1, 6) if int(d[1]) == c]
        cand.sort(key=lambda t: -t[0])
        tp = np.zeros(len(cand))
        for k, (_, i, box) in enumerate(cand):
            g = gts[i]
            if len(g) == 0:
                continue
            ious = box_iou(box[None], g)[0]
            ious[used[i]] = -1.0
            j = int(np.argmax(ious))
            if ious[j] >= iou_threshold:
                tp[k] = 1.0
                used[i][j] = True
        ctp = np.cumsum(tp)
        cfp = np.cumsum(1.0 - tp)
        recall = ctp / n_gt
        precision = ctp / np.maximum(ctp + cfp, np.finfo(np.float64).eps)
        aps.append(average_precision(recall, precision))
    return float(np.mean(aps)) if aps else 0.0


def evaluate_map(outputs: np.ndarray, boxes: list[np.ndarray], cfg: ViTConfig,
                 score_threshold: float = 0.05) -> float:
    dets = [decode(o, cfg, score_threshold) for o in outputs]
    return mean_average_precision(dets, boxes, cfg.num_classes)
