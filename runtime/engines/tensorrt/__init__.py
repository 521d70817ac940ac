"""TensorRT engines (``tensorrt`` >= 10 or TensorRT-RTX): plan records, loading, input checks, CuPy runs."""
