"""ONNX Runtime-optimized graphs: CPU (ORT's optimizer) and CUDA (fused attention, NHWC, fp16) with
the CUDA graph's gate."""
