"""Issue 8's device check, in one call on the lent GPU machine: build, check against diffusers, time.

    bash benchmarks/h100.sh                      # on the device (installs the carried wheels first)
    python -m benchmarks.h100 --out DIR          # the same, wheels already importable
    python -m benchmarks.h100 --cpu-dry-run --out DIR   # here: the same code path on a tiny model, CPU

Stages, each adding its figures to DIR/h100.json as soon as it ends (a timeout keeps what was done):
  env       versions, GPU, ONNX Runtime providers
  model     the SD1.5-sized random-weight pipeline folder (benchmarks/make_sd15_random.py)
  build     build-engine --backend ort --device cuda, fp16, static 512x512 batch 1 (text_encoder, unet,
            vae_decoder): fused operator and Cast/Transpose counts, the validation gates' status
  parity    sdrt (provider cuda) against diffusers fp16 on the GPU: same weights, initial latents,
            scheduler (the folder's PNDM) and prompt, 50 steps: image PSNR (gate >= 30 dB)
  sync      the sdrt denoising loop under cupyx.allow_synchronize(False): no host synchronisation
  pytest    pytest -m cupy tests/schedulers tests/runtime/test_ort_cuda.py tests/runtime/test_ort_engine.py
  timing    UNet ms/call (batch 2 = one image with guidance), UNet with ORT's CUDA graph, VAE decoder ms,
            text encoder ms, whole 50-step 512x512 image: sdrt, diffusers eager, diffusers torch.compile
            (UNet compiled, inductor default), all in this process on this GPU
Then one table. With --cpu-dry-run the model is tests/models.py's tiny SD1 at 64x64, the bundle is
still built with --device cuda (that build needs no GPU), sdrt runs on provider "cpu" (its plain ONNX
graphs), diffusers in fp32 on the CPU, torch.compile with the "eager" backend, 3 steps: every line of
the device path except the CUDA-only calls runs, so the one device call does not fail on a typo.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("h100")

PROMPT = "a photo of a cat"
PARITY_MIN_DB = 30.0
COMPONENTS = ["text_encoder", "unet", "vae_decoder"]


class Report:
    """The figures so far, written to ``DIR/h100.json`` after every stage."""

    def __init__(self, out: Path, dry_run: bool) -> None:
        self.path = out / "h100.json"
        self.data: dict[str, Any] = {"dry_run": dry_run, "stages": {}}
        out.mkdir(parents=True, exist_ok=True)

    def stage(self, name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        started = time.perf_counter()
        log.info("stage %s ...", name)
        try:
            result = fn()
            result["status"] = result.get("status", "ok")
        except Exception as err:  # one failed stage must not lose the others' figures
            result = {
                "status": "error",
                "error": f"{type(err).__name__}: {err}",
                "trace": traceback.format_exc(),
            }
            log.error("stage %s failed: %s", name, result["error"])
        result["seconds"] = round(time.perf_counter() - started, 1)
        self.data["stages"][name] = result
        self.path.write_text(json.dumps(self.data, indent=2, default=str))
        log.info("stage %s: %s in %.1f s", name, result["status"], result["seconds"])
        return result


class Setup:
    """What the stages share: the paths, the device, and the loaded pipelines."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.dry = args.cpu_dry_run
        self.work = Path(args.work)
        self.model_dir = self.work / ("tiny-sd1" if self.dry else "sd15-random")
        self.bundle = self.work / ("engine-tiny" if self.dry else "engine-sd15")
        self.size = 64 if self.dry else 512
        self.steps = args.steps or (3 if self.dry else 50)
        self.provider = "cpu" if self.dry else "cuda"
        self.torch_device = "cpu" if self.dry else "cuda"
        self.iters = args.iters or (3 if self.dry else 30)
        self.compile = not args.skip_compile
        self.sdrt: Any = None
        self.diffusers: Any = None
        import torch

        self.torch_dtype = torch.float32 if self.dry else torch.float16

    @property
    def xp(self) -> Any:
        if self.dry:
            return np
        import cupy

        return cupy

    def sync_sdrt(self) -> None:
        if not self.dry:
            import cupy

            cupy.cuda.Device().synchronize()

    def sync_torch(self) -> None:
        if not self.dry:
            import torch

            torch.cuda.synchronize()

    def latents(self) -> np.ndarray:
        lat = self.size // 8
        return np.random.default_rng(0).standard_normal((1, 4, lat, lat)).astype(np.float32)


def per_call_ms(fn: Callable[[], Any], sync: Callable[[], None], *, warmup: int, iters: int) -> float:
    """Milliseconds per call over ``iters`` back-to-back calls (synchronised once before and after)."""
    for _ in range(warmup):
        fn()
    sync()
    started = time.perf_counter()
    for _ in range(iters):
        fn()
    sync()
    return (time.perf_counter() - started) * 1000 / iters


def median_ms(fn: Callable[[], Any], sync: Callable[[], None], *, repeats: int) -> float:
    """Median wall time of ``repeats`` synchronised calls, after one warm-up call."""
    fn()
    sync()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def psnr01(actual: np.ndarray, expected: np.ndarray) -> float:
    """PSNR of images in [0, 1] (peak 1)."""
    mse = float(np.mean((actual.astype(np.float64) - expected.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


# ---- stages ------------------------------------------------------------------------------------------
def stage_env(s: Setup) -> dict[str, Any]:
    import onnxruntime as ort
    import torch

    if hasattr(ort, "preload_dlls") and not s.dry:
        ort.preload_dlls()  # finds torch's CUDA libraries (device/README.md)
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
        "providers": ort.get_available_providers(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    try:
        import cupy

        info["cupy"] = cupy.__version__
    except ImportError:
        info["cupy"] = None
    try:
        import diffusers

        info["diffusers"] = diffusers.__version__
    except ImportError:
        info["diffusers"] = None
    if not s.dry and "CUDAExecutionProvider" not in info["providers"]:
        info["status"] = "error"
        info["error"] = (
            "onnxruntime has no CUDAExecutionProvider: the carried onnxruntime-gpu is not first on the path"
        )
    return info


def stage_model(s: Setup) -> dict[str, Any]:
    if (s.model_dir / "model_index.json").is_file():
        return {"path": str(s.model_dir), "reused": True}
    if s.dry:
        from tests.models import MAKERS

        MAKERS["sd1"](s.model_dir)
    else:
        from benchmarks.make_sd15_random import make_sd15_random

        make_sd15_random(s.model_dir, seed=0)
    return {"path": str(s.model_dir), "reused": False}


def stage_build(s: Setup) -> dict[str, Any]:
    from sdrt.export.cli import main as build_engine

    argv = [str(s.model_dir), "-o", str(s.bundle), "--backend", "ort", "--device", "cuda"]
    argv += [
        "--precision",
        "fp16",
        "--static",
        "--height",
        str(s.size),
        "--width",
        str(s.size),
        "--batch",
        "1",
    ]
    argv += ["--components", *COMPONENTS, "-q"]
    code = build_engine(argv)
    if code != 0:
        return {"status": "error", "error": f"build-engine exited with {code}"}
    manifest = json.loads((s.bundle / "manifest.json").read_text())
    result: dict[str, Any] = {}
    for name in COMPONENTS:
        record = manifest["components"][name]
        ort_record = record["ort"]
        validation = ort_record.get("validation") or {}
        result[name] = {
            "fused": ort_record.get("fused"),
            "casts": ort_record.get("casts"),
            "transposes": ort_record.get("transposes"),
            "nodes": ort_record.get("nodes"),
            "export_counts": ort_record.get("export_counts"),
            "gate": validation.get("status"),
            "gate_value": validation.get("value"),
            "cpu_checks": {k: v.get("value") for k, v in (validation.get("cpu_checks") or {}).items()},
            "onnx_validation": (record.get("validation") or {}).get("value"),
            "seconds": record.get("export_seconds"),
        }
    result["unet_session_graph"] = session_graph_counts(
        s, s.bundle / manifest["components"]["unet"]["ort"]["file"]
    )
    if not s.dry and any(result[n]["gate"] != "passed" for n in COMPONENTS):
        result["status"] = "error"
        result["error"] = "a fused graph's validation gate did not pass on the CUDA provider"
    return result


def session_graph_counts(s: Setup, path: Path) -> dict[str, Any]:
    """Cast/Transpose/node counts of the graph ONNX Runtime's CUDA session runs (after its own optimizer)."""
    if s.dry:
        return {"status": "skipped: needs the CUDA provider"}
    from collections import Counter

    import onnx
    import onnxruntime as ort

    options = ort.SessionOptions()
    optimized = s.work / "unet.session.onnx"
    options.optimized_model_filepath = str(optimized)
    options.add_session_config_entry(
        "session.optimized_model_external_initializers_file_name", "unet.session.data"
    )
    options.add_session_config_entry(
        "session.optimized_model_external_initializers_min_size_in_bytes", "1024"
    )
    ort.InferenceSession(str(path), options, providers=["CUDAExecutionProvider"])
    ops = Counter(n.op_type for n in onnx.load(str(optimized), load_external_data=False).graph.node)
    for leftover in s.work.glob("unet.session.*"):
        leftover.unlink()
    return {"casts": ops["Cast"], "transposes": ops["Transpose"], "nodes": sum(ops.values())}


def load_sdrt(s: Setup) -> Any:
    if s.sdrt is None:
        from sdrt.runtime import DiffusionPipeline

        s.sdrt = DiffusionPipeline.from_pretrained(s.bundle, provider=s.provider)
        s.sdrt.set_progress_bar_config(disable=True)
    return s.sdrt


def load_diffusers(s: Setup) -> Any:
    if s.diffusers is None:
        from diffusers import StableDiffusionPipeline

        from sdrt.runtime.bench_diffusers import pipeline_from_pretrained

        pipe = pipeline_from_pretrained(
            StableDiffusionPipeline,
            s.model_dir,
            s.torch_dtype,
            safety_checker=None,
            requires_safety_checker=False,
        )
        s.diffusers = pipe.to(s.torch_device)
        s.diffusers.set_progress_bar_config(disable=True)
    return s.diffusers


def sdrt_image(s: Setup, steps: int) -> np.ndarray:
    pipe = load_sdrt(s)
    return np.asarray(pipe(PROMPT, num_inference_steps=steps, latents=s.latents(), output_type="np").images)


def diffusers_image(s: Setup, steps: int) -> np.ndarray:
    import torch

    pipe = load_diffusers(s)
    latents = torch.from_numpy(s.latents()).to(s.torch_device, s.torch_dtype)
    with torch.inference_mode():
        images = pipe(PROMPT, num_inference_steps=steps, latents=latents, output_type="np").images
    return np.asarray(images, dtype=np.float32)


def stage_parity(s: Setup) -> dict[str, Any]:
    ours = sdrt_image(s, s.steps)
    theirs = diffusers_image(s, s.steps)
    finite = bool(np.isfinite(ours).all() and np.isfinite(theirs).all())
    value = psnr01(ours, theirs) if finite else float("nan")
    result = {
        "psnr_db": round(value, 2),
        "threshold_db": PARITY_MIN_DB,
        "steps": s.steps,
        "finite": finite,
        "image_mean": [float(np.nanmean(ours)), float(np.nanmean(theirs))],
    }
    if not value >= PARITY_MIN_DB:
        result["status"] = "error"
        result["error"] = f"sdrt vs diffusers PSNR {value:.2f} dB < {PARITY_MIN_DB} dB"
    return result


def stage_sync(s: Setup) -> dict[str, Any]:
    if s.dry:
        return {"status": "skipped", "reason": "needs CuPy and a GPU"}
    import cupy
    import cupyx

    pipe = load_sdrt(s)
    embeds, negative = pipe.encode_prompt(PROMPT, 1, True)
    latents = cupy.asarray(s.latents())
    cupy.cuda.Device().synchronize()
    try:
        with cupyx.allow_synchronize(False):
            pipe(
                prompt_embeds=embeds,
                negative_prompt_embeds=negative,
                num_inference_steps=s.steps,
                latents=latents,
                output_type="latent",
            )
    except Exception as err:
        frames = traceback.extract_tb(err.__traceback__)
        where = [f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in frames[-4:]]
        return {"status": "error", "error": f"{type(err).__name__}: {err}", "where": where}
    return {"host_syncs_in_loop": 0}


def stage_pytest(s: Setup) -> dict[str, Any]:
    targets = ["tests/schedulers", "tests/runtime/test_ort_cuda.py", "tests/runtime/test_ort_engine.py"]
    command = [sys.executable, "-m", "pytest", "-m", "cupy", "-q", "-p", "no:cacheprovider", *targets]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=300 if not s.dry else 600)
    except subprocess.TimeoutExpired:
        return {"status": "error", "error": "pytest timed out"}
    tail = (done.stdout + done.stderr).strip().splitlines()[-3:]
    if "No module named pytest" in done.stderr:
        return {"status": "skipped", "reason": "pytest is not installed (carry its wheels with .device/w)"}
    status = "ok" if done.returncode in (0, 5) else "error"  # 5: nothing collected
    return {"status": status, "returncode": done.returncode, "summary": tail}


def _sdrt_feeds(s: Setup) -> dict[str, Any]:
    xp = s.xp
    pipe = load_sdrt(s)
    lat = s.size // 8
    rng = np.random.default_rng(1)
    unet = {
        "sample": xp.asarray(rng.standard_normal((2, 4, lat, lat)).astype(np.float32)),
        "timestep": xp.asarray(np.full((2,), 999.0, np.float32)),
        "encoder_hidden_states": xp.asarray(
            rng.standard_normal((2, 77, pipe.unet.engine.inputs["encoder_hidden_states"].shape[2])).astype(
                np.float32
            )
        ),
    }
    vae = {"latent": xp.asarray(rng.standard_normal((1, 4, lat, lat)).astype(np.float32))}
    ids = {"input_ids": xp.asarray(np.arange(77, dtype=np.int32).reshape(1, 77) % 400)}
    return {"unet": unet, "vae": vae, "text": ids}


def stage_timing(s: Setup) -> dict[str, Any]:
    import torch

    rows: dict[str, dict[str, Any]] = {"sdrt": {}, "sdrt (UNet CUDA graph)": {}, "diffusers eager": {}}
    pipe = load_sdrt(s)
    feeds = _sdrt_feeds(s)
    warm = 2 if s.dry else 5
    sdrt = rows["sdrt"]
    sdrt["unet_ms"] = per_call_ms(
        lambda: pipe.unet.engine.run(feeds["unet"]), s.sync_sdrt, warmup=warm, iters=s.iters
    )
    sdrt["vae_ms"] = per_call_ms(
        lambda: pipe.vae.decoder.engine.run(feeds["vae"]),
        s.sync_sdrt,
        warmup=warm,
        iters=max(3, s.iters // 3),
    )
    sdrt["text_ms"] = per_call_ms(
        lambda: pipe.text_encoder.engine.run(feeds["text"]), s.sync_sdrt, warmup=warm, iters=s.iters
    )
    repeats = 2 if s.dry else 3
    sdrt["image_ms"] = median_ms(lambda: sdrt_image(s, s.steps), s.sync_sdrt, repeats=repeats)

    graph_row = rows["sdrt (UNet CUDA graph)"]
    if s.dry:
        graph_row["status"] = "skipped: needs the CUDA provider"
    else:
        from sdrt.runtime.ort_engine import OrtEngine

        record = pipe.bundle.components["unet"]["ort"]
        plain = pipe.unet.engine
        try:
            graph = OrtEngine(
                pipe.bundle.path / record["file"], provider="cuda", name="unet", cuda_graph=True
            )
            graph_row["unet_ms"] = per_call_ms(
                lambda: graph.run(feeds["unet"]), s.sync_sdrt, warmup=warm, iters=s.iters
            )
            pipe.unet.engine = graph
            graph_row["image_ms"] = median_ms(lambda: sdrt_image(s, s.steps), s.sync_sdrt, repeats=repeats)
        except Exception as err:
            graph_row["status"] = f"error: {type(err).__name__}: {err}"
        finally:
            pipe.unet.engine = plain

    dpipe = load_diffusers(s)
    dev, dtype = s.torch_device, s.torch_dtype
    unet_in = {k: torch.from_numpy(np.asarray(_host(v))).to(dev) for k, v in feeds["unet"].items()}
    sample, hidden = unet_in["sample"].to(dtype), unet_in["encoder_hidden_states"].to(dtype)
    # the call exactly as StableDiffusionPipeline makes it (a compiled UNet is not recompiled for it)
    timestep = torch.tensor(999, device=dev)
    unet_kwargs = {"timestep_cond": None, "cross_attention_kwargs": None, "added_cond_kwargs": None}
    unet_kwargs["return_dict"] = False
    latent = torch.from_numpy(np.asarray(_host(feeds["vae"]["latent"]))).to(dev, dtype)
    ids = torch.from_numpy(np.asarray(_host(feeds["text"]["input_ids"])).astype(np.int64)).to(dev)

    def diffusers_row(row: dict[str, Any], unet: Any) -> None:
        with torch.inference_mode():
            row["unet_ms"] = per_call_ms(
                lambda: unet(sample, timestep, encoder_hidden_states=hidden, **unet_kwargs),
                s.sync_torch,
                warmup=warm,
                iters=s.iters,
            )
            row["vae_ms"] = per_call_ms(
                lambda: dpipe.vae.decode(latent), s.sync_torch, warmup=warm, iters=max(3, s.iters // 3)
            )
            row["text_ms"] = per_call_ms(
                lambda: dpipe.text_encoder(ids), s.sync_torch, warmup=warm, iters=s.iters
            )
        row["image_ms"] = median_ms(lambda: diffusers_image(s, s.steps), s.sync_torch, repeats=repeats)

    diffusers_row(rows["diffusers eager"], dpipe.unet)
    if s.compile:
        compiled_row: dict[str, Any] = {}
        rows["diffusers torch.compile (UNet)"] = compiled_row
        eager_unet = dpipe.unet
        started = time.perf_counter()
        dpipe.unet = torch.compile(eager_unet, backend="eager") if s.dry else torch.compile(eager_unet)
        with torch.inference_mode():
            dpipe.unet(sample, timestep, encoder_hidden_states=hidden, **unet_kwargs)
        s.sync_torch()
        compiled_row["compile_s"] = round(time.perf_counter() - started, 1)
        try:
            diffusers_row(compiled_row, dpipe.unet)
        finally:
            dpipe.unet = eager_unet
    return {"rows": rows, "steps": s.steps, "size": s.size, "iters": s.iters}


def _host(array: Any) -> Any:
    return array.get() if hasattr(array, "get") else array


# ---- report ------------------------------------------------------------------------------------------
def table(report: dict[str, Any]) -> str:
    stages = report["stages"]
    timing = stages.get("timing", {})
    rows = timing.get("rows", {})
    steps = timing.get("steps", "?")
    size = timing.get("size", "?")
    header = ("", "UNet ms/call", "VAE dec ms", "text enc ms", f"{steps}-step {size}x{size} image ms")
    lines = [header]
    for name, row in rows.items():
        cells = [row.get(k) for k in ("unet_ms", "vae_ms", "text_ms", "image_ms")]
        text = [f"{c:.2f}" if isinstance(c, float) else "-" for c in cells]
        lines.append((name, *text))
    sdrt = rows.get("sdrt", {})
    ratios = []
    for name, row in rows.items():
        if name.startswith("diffusers") and row.get("unet_ms") and sdrt.get("unet_ms"):
            ratios.append(
                f"{name}: UNet x{row['unet_ms'] / sdrt['unet_ms']:.2f}, image "
                f"x{(row.get('image_ms') or float('nan')) / (sdrt.get('image_ms') or float('nan')):.2f}"
            )
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    out = ["  ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    parity = stages.get("parity", {})
    out.append(
        f"parity sdrt vs diffusers: {parity.get('psnr_db')} dB (gate {PARITY_MIN_DB}), {parity.get('status')}"
    )
    for name in ("env", "model", "build", "sync", "pytest"):
        stage = stages.get(name, {})
        out.append(
            f"{name}: {stage.get('status')}"
            + (f" ({stage.get('error') or stage.get('reason')})" if stage.get("status") != "ok" else "")
        )
    build = stages.get("build", {})
    unet = build.get("unet") if isinstance(build, dict) else None
    if unet:
        out.append(
            f"UNet graph: {unet.get('fused')}; {unet.get('casts')} Cast, {unet.get('transposes')} Transpose"
        )
    out.extend(f"ratio sdrt vs {r}" for r in ratios)
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", default=os.environ.get("OUT", "h100-out"), help="where h100.json goes ($OUT)"
    )
    parser.add_argument(
        "--work", default="/tmp/sdrt-h100", help="model folder and bundle (reused when there)"
    )
    parser.add_argument("--cpu-dry-run", action="store_true", help="tiny model, CPU providers (see above)")
    parser.add_argument("--steps", type=int, help="denoising steps (default 50; dry run 3)")
    parser.add_argument("--iters", type=int, help="timed calls per figure (default 30; dry run 3)")
    parser.add_argument("--skip-compile", action="store_true", help="no torch.compile row")
    parser.add_argument(
        "--stages", nargs="+", default=["env", "model", "build", "parity", "sync", "pytest", "timing"]
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    setup = Setup(args)
    report = Report(Path(args.out), setup.dry)
    functions = {
        "env": stage_env,
        "model": stage_model,
        "build": stage_build,
        "parity": stage_parity,
        "sync": stage_sync,
        "pytest": stage_pytest,
        "timing": stage_timing,
    }
    for name in args.stages:
        result = report.stage(name, lambda fn=functions[name]: fn(setup))
        if name in ("env", "model", "build") and result["status"] == "error":
            break  # nothing after can run
    text = table(report.data)
    (Path(args.out) / "h100.txt").write_text(text + "\n")
    print(text)
    return 0 if all(st["status"] in ("ok", "skipped") for st in report.data["stages"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
