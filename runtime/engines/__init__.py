"""Engines: named arrays in, named arrays out (``base.Engine``), on ONNX Runtime (``ort``) or TensorRT
(``tensorrt``); ``providers`` says which are installed, ``open`` which one runs a bundle's component."""
