"""A stand-in for the two torchvision pieces facenet-pytorch's MTCNN imports (``ops.boxes.batched_nms``
and ``transforms.functional.to_tensor``), in pure torch/numpy.

torchvision's only release for torch 2.13 is a CUDA build that cannot import here. references/benchmarks/peers.py
puts this folder first on ``sys.path`` only for the MTCNN peer; facemtl itself never needs it.
"""
