"""``--backend openvino --precision bf16`` records the precision that ran: on a CPU without bf16 (AVX-512
BF16 or AMX) OpenVINO computes fp32, and the bundle says fp32. The CPU probe's answer is injected, so both
kinds of CPU are covered on either."""

from __future__ import annotations

import json

import pytest

from sdrt.cli.build_engine import main
from sdrt.runtime.engines.openvino.engine import effective_precision

pytest.importorskip("openvino")
pytest.importorskip("torch")


def test_the_precision_that_runs():
    assert [effective_precision(p, True) for p in ("fp32", "bf16", "auto")] == ["fp32", "bf16", "bf16"]
    assert [effective_precision(p, False) for p in ("fp32", "bf16", "auto")] == ["fp32", "fp32", "fp32"]


@pytest.mark.parametrize(("cpu_bf16", "ran"), [(False, "fp32"), (True, "bf16")])
def test_bf16_is_recorded_only_where_it_ran(model_folders, tmp_path, monkeypatch, caplog, cpu_bf16, ran):
    from sdrt.export.openvino import convert
    from sdrt.runtime.engines.openvino import engine

    for module in (convert, engine):  # the probe, wherever it is asked
        monkeypatch.setattr(module, "cpu_has_bf16", lambda core: cpu_bf16)
    out = tmp_path / "bundle"
    args = [str(model_folders("sd1")), "-o", str(out), "--backend", "openvino", "--precision", "bf16"]
    assert main([*args, "--components", "unet", "-q"]) == 0
    record = json.loads((out / "manifest.json").read_text())["components"]["unet"]["openvino"]
    assert record["precision"] == ran
    assert record["validation"]["provider"] == f"OpenVINO CPU {ran}"
    ir = (out / "openvino" / "unet.xml").stat().st_ino
    assert main([*args, "--components", "unet", "-q"]) == 0  # same options: the IR is taken over
    assert (out / "openvino" / "unet.xml").stat().st_ino == ir
    assert ("computes fp32; recorded as fp32" in caplog.text) == (not cpu_bf16)
