"""OpenVINO's bad inputs: no package (refused before any export work), a bundle without IR asked for
``provider="openvino"``, a damaged IR."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("torch")

# what Python does for a package that is not installed: `import openvino` raises ImportError and
# importlib.util.find_spec("openvino") answers None
BLOCK_OPENVINO = "import sys\nsys.modules['openvino'] = None\n"


def _without_openvino(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BLOCK_OPENVINO + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_backend_openvino_without_the_package_fails_before_exporting(model_folders, tmp_path):
    out = tmp_path / "engines" / "tiny"
    done = _without_openvino(
        f"""
        from sdrt.cli.build_engine import main
        raise SystemExit(main([{str(model_folders("uncond"))!r}, "-o", {str(out)!r}, "--backend", "openvino"]))
        """
    )
    assert done.returncode == 2, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("build-engine: error: ")]
    assert len(errors) == 1 and "pip install 'sdrt[openvino]'" in errors[0], done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert not out.parent.exists() or not any(out.parent.iterdir()), "export work began before the check"


@pytest.fixture(scope="module")
def ov_uncond(model_folders, tmp_path_factory):
    pytest.importorskip("openvino")
    from sdrt.cli.build_engine import main as build_engine

    out = tmp_path_factory.mktemp("openvino_errors") / "uncond"
    args = [str(model_folders("uncond")), "-o", str(out), "--backend", "openvino", "--max-batch", "1", "-q"]
    assert build_engine([*args, "--no-validate"]) in (0, None)
    return out


def test_provider_openvino_without_the_package_names_the_extra(ov_uncond):
    bundle = ov_uncond
    done = _without_openvino(
        f"""
        from sdrt.runtime import DDPMPipeline
        from sdrt.runtime.errors import ProviderNotAvailableError
        try:
            DDPMPipeline.from_pretrained({str(bundle)!r}, provider="openvino")
        except ProviderNotAvailableError as error:
            print(error)
        print("auto:", DDPMPipeline.from_pretrained({str(bundle)!r}).provider)
        """
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert "pip install 'sdrt[openvino]'" in lines[0], lines
    assert lines[-1] == "auto: cpu"


def test_bundle_without_ir_names_the_build_command(tiny):
    pytest.importorskip("openvino")
    from sdrt.runtime import DDPMPipeline
    from sdrt.runtime.errors import BundleError

    bundle = tiny.bundle("uncond")
    with pytest.raises(BundleError) as caught:
        DDPMPipeline.from_pretrained(bundle, provider="openvino")
    message = str(caught.value)
    assert "no OpenVINO IR" in message and f"-o {bundle} --backend openvino" in message


def test_damaged_ir_is_an_engine_error_naming_the_rebuild(ov_uncond, tmp_path):
    import shutil

    from sdrt.runtime import DDPMPipeline
    from sdrt.runtime.errors import EngineError

    out = tmp_path / "uncond"
    shutil.copytree(ov_uncond, out)
    xml = out / "openvino" / "unet.xml"
    xml.write_text(xml.read_text()[: len(xml.read_text()) // 2])
    with pytest.raises(EngineError) as caught:
        DDPMPipeline.from_pretrained(out, provider="openvino")
    assert "--backend openvino --force" in str(caught.value)
