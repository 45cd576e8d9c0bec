"""Faces in videos: frame reading and writing, the tracker and its smoothing, the live preview server."""
