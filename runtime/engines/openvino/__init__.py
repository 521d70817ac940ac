"""OpenVINO engines on the CPU (the bundle's IR, fp32 or bf16 inference precision), NumPy in and out."""
