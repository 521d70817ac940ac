"""TensorRT plans from the bundle's ONNX graphs: profiles, builds (in a child process when large), caches."""
