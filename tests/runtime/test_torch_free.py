"""sdrt.runtime and sdrt.schedulers import and work with torch, diffusers and transformers unimportable."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests.runtime.text.clip_bpe_trainer import english_corpus, train_clip_bpe, write_clip_tokenizer

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

BLOCKER = textwrap.dedent(
    """
    import importlib.abc
    import sys

    BLOCKED = ("torch", "diffusers", "transformers")

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is blocked: the runtime must not import it")
            return None

    sys.meta_path.insert(0, Blocker())
    for name in list(sys.modules):
        if name.split(".")[0] in BLOCKED:
            del sys.modules[name]
    """
)

SCRIPT = textwrap.dedent(
    """
    import importlib
    import json
    import pkgutil
    import sys

    import numpy as np

    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("the blocker did not block torch")

    import sdrt.runtime
    import sdrt.schedulers

    modules = []
    for package in (sdrt.runtime, sdrt.schedulers):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            importlib.import_module(info.name)
            modules.append(info.name)

    from sdrt.runtime import CLIPTokenizer, TorchCompatibleGenerator
    from sdrt.runtime.engines.ort.engine import OrtEngine
    from sdrt.runtime.engines.providers import select_provider

    tokenizer_dir, onnx_path = sys.argv[1], sys.argv[2]
    ids = CLIPTokenizer.from_pretrained(tokenizer_dir)(
        ["a photo of a cat", "the license"], padding="max_length", truncation=True, return_tensors="np"
    ).input_ids
    latents = TorchCompatibleGenerator(1234).randn((1, 4, 8, 8))
    engine = OrtEngine(onnx_path, provider=select_provider("auto", candidates=("cpu",)))
    out = engine(x=latents.reshape(-1, 4)[:5])["y"]
    leaked = sorted(n for n in sys.modules if n.split(".")[0] in ("torch", "diffusers", "transformers"))
    print(json.dumps({
        "modules": modules,
        "ids": ids.tolist(),
        "latents": latents.ravel().tolist(),
        "out": out.tolist(),
        "leaked": leaked,
    }))
    """
)


@pytest.fixture
def linear_onnx(tmp_path):
    from onnx import TensorProto, helper, numpy_helper

    weight = np.arange(12, dtype=np.float32).reshape(4, 3) / 10
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        initializer=[numpy_helper.from_array(weight, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "linear.onnx"
    onnx.save(model, str(path))
    return path, weight


def test_runtime_and_schedulers_work_without_torch(tmp_path, linear_onnx):
    vocab, merges = train_clip_bpe(english_corpus()[:50000], num_merges=500)
    tokenizer_dir = write_clip_tokenizer(tmp_path / "tokenizer", vocab, merges)
    onnx_path, weight = linear_onnx
    code = BLOCKER + SCRIPT
    result = subprocess.run(
        [sys.executable, "-c", code, str(tokenizer_dir), str(onnx_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["leaked"] == []
    assert (
        "sdrt.runtime.text.tokenizer" in report["modules"]
        and "sdrt.runtime.engines.ort.engine" in report["modules"]
    )
    assert any(m.startswith("sdrt.schedulers.") for m in report["modules"])

    ids = np.array(report["ids"])
    assert ids.shape == (2, 77) and (ids[:, 0] == vocab["<|startoftext|>"]).all()
    latents = np.array(report["latents"], dtype=np.float32)
    torch = pytest.importorskip("torch")
    expected = torch.randn((1, 4, 8, 8), generator=torch.Generator("cpu").manual_seed(1234)).numpy().ravel()
    np.testing.assert_allclose(latents, expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(
        np.array(report["out"]), latents.reshape(-1, 4)[:5] @ weight, rtol=1e-5, atol=1e-5
    )
