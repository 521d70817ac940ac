"""From torch to a clean ONNX graph: tracing, clean-up, fp16, and the validation gate against torch."""
