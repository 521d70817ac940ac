"""The shipped model on OpenVINO: bf16 inference reads the same as fp32 on the six CI cases (issue 15)."""

import pytest

from training.evaluate_shapes import evaluation_cases, generate_sdrt, load_sdrt_pipeline, score_images

from .test_shapes_model import MODEL_DIR, _subset

pytest.importorskip("openvino")


@pytest.fixture(scope="module")
def ov_bundles(tmp_path_factory):
    from sdrt.cli.build_engine import main as build_engine

    root = tmp_path_factory.mktemp("sd_shapes_openvino")
    for precision in ("fp32", "bf16"):
        args = [
            str(MODEL_DIR),
            "-o",
            str(root / precision),
            "--backend",
            "openvino",
            "--precision",
            precision,
        ]
        assert build_engine([*args, "-q"]) in (0, None)
    return root


def _verdicts(bundle, cases):
    pipe = load_sdrt_pipeline(bundle, provider="openvino")
    scores = score_images(generate_sdrt(pipe, cases), [(c.shape, c.colour) for c in cases])
    return [(r["read_colour"], r["read_shape"]) for r in scores["results"]], scores


# suite time: OpenVINO bf16 parity runs in tests/export/openvino in the default run
@pytest.mark.slow
def test_bf16_reads_like_fp32_on_the_six_ci_cases(ov_bundles):
    cases = _subset()
    fp32, fp32_scores = _verdicts(ov_bundles / "fp32", cases)
    bf16, _ = _verdicts(ov_bundles / "bf16", cases)
    assert bf16 == fp32
    assert fp32_scores["colour"] >= 5 / 6 and fp32_scores["shape"] >= 5 / 6, fp32_scores["results"]


@pytest.mark.slow
def test_full_sweep_on_bf16_within_3_points_of_fp32(ov_bundles):
    cases = evaluation_cases(5)
    _, fp32 = _verdicts(ov_bundles / "fp32", cases)
    _, bf16 = _verdicts(ov_bundles / "bf16", cases)
    for key in ("colour", "shape"):
        assert abs(bf16[key] - fp32[key]) <= 0.03, (key, fp32[key], bf16[key])
