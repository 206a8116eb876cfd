"""The training engine: devices and precision, threads, cancellation, the training loop, losses,
weights files and the ONNX Runtime path for the CPU."""
