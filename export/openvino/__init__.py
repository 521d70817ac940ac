"""OpenVINO IR from the bundle's fp32 ONNX graphs (``--backend openvino``), validated on OpenVINO's CPU."""
