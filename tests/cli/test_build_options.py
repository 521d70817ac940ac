"""build-engine's command line -> one ``BuildOptions``: each field from the option of its name, so a new
build option is one field plus its argparse line."""

from __future__ import annotations

import dataclasses

from sdrt.cli.build_engine import build_options, make_parser
from sdrt.export import BuildOptions

WORKED_OUT = {"precision", "progress", "trt_options"}  # from other options (build_options says how)
API_ONLY = {"export_device"}  # export_pipeline(export_device=...): no command-line option


def test_every_field_has_its_command_line_option() -> None:
    dests = {action.dest for action in make_parser()._actions}
    fields = {f.name for f in dataclasses.fields(BuildOptions)}
    assert fields - dests - WORKED_OUT - API_ONLY == set()


def test_the_defaults_are_export_pipelines() -> None:
    options = build_options(make_parser().parse_args(["model", "-o", "out"]))
    worked_out = {"progress": True, "trt_options": options.trt_options}
    assert options == dataclasses.replace(BuildOptions(), **worked_out)


def test_the_options_reach_their_fields() -> None:
    argv = ["model", "-o", "out", "--backend", "tensorrt", "--lora", "a.safetensors:0.5", "--lora", "b"]
    argv += ["--textual-inversion", "t.pt", "--controlnet", "canny", "--no-validate", "-q", "--refittable"]
    options = build_options(make_parser().parse_args(argv))
    assert options.loras == ["a.safetensors:0.5", "b"] and options.textual_inversions == ["t.pt"]
    assert options.controlnets == ["canny"] and not options.validate and not options.progress
    assert options.precision == "fp16" and options.trt_options and options.trt_options["refittable"]
