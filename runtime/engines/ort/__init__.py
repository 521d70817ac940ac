"""ONNX Runtime engines: CPU with NumPy, CUDA with CuPy buffers and CUDA graphs."""
