"""Greedy non-maximum suppression with torchvision's semantics: boxes (x1, y1, x2, y2), areas
without the +1, kept indices sorted by decreasing score."""

from __future__ import annotations

import numpy as np
import torch


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    b = boxes.detach().cpu().double().numpy()
    order = np.argsort(-scores.detach().cpu().numpy(), kind="stable")
    b = b[order]
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    suppressed = np.zeros(len(b), bool)
    keep = []
    for i in range(len(b)):
        if suppressed[i]:
            continue
        keep.append(i)
        w = np.clip(np.minimum(b[i, 2], b[i + 1 :, 2]) - np.maximum(b[i, 0], b[i + 1 :, 0]), 0, None)
        h = np.clip(np.minimum(b[i, 3], b[i + 1 :, 3]) - np.maximum(b[i, 1], b[i + 1 :, 1]), 0, None)
        inter = w * h
        iou = inter / (area[i] + area[i + 1 :] - inter)
        suppressed[i + 1 :] |= iou > iou_threshold
    return torch.as_tensor(order[keep], dtype=torch.int64, device=boxes.device)


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """NMS within each category of ``idxs``: boxes of different categories are shifted apart."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    offsets = idxs.to(boxes) * (boxes.max() + 1)
    return nms(boxes + offsets[:, None], scores, iou_threshold)
