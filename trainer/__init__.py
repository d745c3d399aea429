"""docsort trainer: data, backbones, training, evaluation, calibration, ONNX export. Needs TensorFlow."""
