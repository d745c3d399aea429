"""docsort worker: Celery tasks, page decoding, ONNX inference, CAM, routing and recording.

Never imports TensorFlow: a worker host installs onnxruntime only.
"""
