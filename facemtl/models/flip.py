"""Flip test: average a network's predictions on a crop and on its mirror image.

A standard test-time step in landmark and pose estimation (e.g. HRNet's ``flip_test``). The model
learned with random flips, so both views are in-distribution and their errors are partly
independent; averaging them costs one more forward pass per face (run in the same batch).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from facemtl.tasks import TaskSet
from facemtl.types import NetOutputs


def flip_averaged(net: Callable[[torch.Tensor], NetOutputs], x: torch.Tensor, tasks: TaskSet) -> NetOutputs:
    """``net``'s output format for crops ``x`` ``(B, C, S, S)``, averaged over ``x`` and its mirror.

    Mirrored landmarks come back to the original frame (x negated in unit crop coordinates, whose
    edges are ±1, and left/right slots swapped); class probabilities are permuted for flip-aware
    tasks (head pose: left ↔ right) and averaged; ``attributes`` holds the log of the mean
    probabilities, valid logits for softmax/argmax. MMoE gates are those of the unflipped view.
    """
    b = x.shape[0]
    out = net(torch.cat([x, x.flip(-1)]))
    lm = out["landmarks"]
    mirrored = lm[b:, tasks.landmarks.flip_permutation()] * lm.new_tensor([-1.0, 1.0])
    result: NetOutputs = {"landmarks": (lm[:b] + mirrored) / 2, "attributes": {}}
    for task in tasks.attributes:
        p = torch.softmax(out["attributes"][task.name].float(), 1)
        p_mirrored = p[b:] if task.flip_permutation is None else p[b:, list(task.flip_permutation)]
        result["attributes"][task.name] = torch.log((p[:b] + p_mirrored) / 2)
    if "gates" in out:
        result["gates"] = {k: g[:b] for k, g in out["gates"].items()}
    return result
