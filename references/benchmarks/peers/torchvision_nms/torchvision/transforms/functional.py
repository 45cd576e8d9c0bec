"""``to_tensor`` for a float HWC array, as facenet-pytorch's ``extract_face`` calls it."""

import numpy as np
import torch


def to_tensor(pic: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(np.asarray(pic).transpose(2, 0, 1)))
