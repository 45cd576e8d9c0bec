"""Measuring models: the evaluator on annotated faces, landmark and attribute metrics, attribute
calibration, plots."""
