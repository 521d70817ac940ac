"""The programs ``fast_recipes`` runs in fresh processes: one timed image generation per library (sdrt,
diffusers, optimum-intel), and the export of optimum-intel's OpenVINO LCM models (with TAESD's decoder)."""

import textwrap

TIMED = textwrap.dedent(
    """
    import json, resource, sys, time
    start = time.perf_counter()
    {imports}
    imported = time.perf_counter() - start
    a = json.loads(sys.argv[1])
    start = time.perf_counter()
    {load}
    loaded = time.perf_counter() - start
    def call(steps, seed):
        {generate}
    start = time.perf_counter()
    call(min(a["steps"], 4), 0)
    warm = time.perf_counter() - start
    times = []
    for i in range(a["images"]):
        start = time.perf_counter()
        call(a["steps"], i + 1)
        times.append(time.perf_counter() - start)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(dict(import_s=imported, load_s=loaded, warmup_s=warm, image_s=times, peak_rss_mib=rss)))
    """
)
CALL = (
    'a["prompt"], height=a["size"], width=a["size"], num_inference_steps=steps, guidance_scale=a["guidance"]'
)
SDRT = TIMED.format(
    imports="from sdrt.runtime import DiffusionPipeline\nfrom sdrt.schedulers import get_scheduler_class",
    load='pipe = DiffusionPipeline.from_pretrained(a["model"], provider=a["provider"])\n'
    'if a["scheduler"]:\n'
    '    pipe.scheduler = get_scheduler_class(a["scheduler"]).from_config(pipe.scheduler.config)\n'
    "pipe.set_progress_bar_config(disable=True)",
    generate=f'pipe({CALL}, generator=seed, output_type="np", **a["extra"])',
)
DIFFUSERS = TIMED.format(
    imports="import diffusers, torch",
    load='pipe = getattr(diffusers, a["pipeline"]).from_pretrained(a["model"], torch_dtype=torch.bfloat16)\n'
    'if a["scheduler"]:\n'
    '    pipe.scheduler = getattr(diffusers, a["scheduler"]).from_config(pipe.scheduler.config)\n'
    "pipe.set_progress_bar_config(disable=True)\n"
    'if a["deepcache"]:\n'
    "    from DeepCache import DeepCacheSDHelper\n"
    "    helper = DeepCacheSDHelper(pipe=pipe)\n"
    '    helper.set_params(**a["deepcache"])\n'
    "    helper.enable()",
    generate=f'pipe({CALL}, generator=torch.Generator().manual_seed(seed), output_type="np")',
)
OPTIMUM = TIMED.format(
    imports="import torch\nfrom optimum.intel import OVLatentConsistencyModelPipeline",
    load='pipe = OVLatentConsistencyModelPipeline.from_pretrained(a["model"], ov_config={"INFERENCE_PRECISION_HINT": "bf16"}, compile=not a["static"])\n'
    'if a["static"]:\n'  # as FastSD CPU does: static shapes, then compile
    '    pipe.reshape(batch_size=1, height=a["size"], width=a["size"], num_images_per_prompt=1)\n'
    "    pipe.compile()\n"
    "pipe.set_progress_bar_config(disable=True)",
    generate=f'pipe({CALL}, generator=torch.Generator().manual_seed(seed), output_type="np")',
)
EXPORT = textwrap.dedent(
    """
    import sys
    from optimum.intel import OVLatentConsistencyModelPipeline
    OVLatentConsistencyModelPipeline.from_pretrained(sys.argv[1], export=True, compile=False).save_pretrained(sys.argv[2])
    """
)
# optimum-intel cannot export an AutoencoderTiny (its encoder has no latent_dist), so, as FastSD CPU does,
# its LCM model gets TAESD's decoder as an OpenVINO IR in place of ``vae_decoder`` (the rest linked)
EXPORT_TAESD = textwrap.dedent(
    """
    import shutil, sys, torch, openvino as ov
    from pathlib import Path
    from diffusers import AutoencoderTiny
    source, taesd, out = map(Path, sys.argv[1:4])
    out.mkdir()
    for part in source.iterdir():
        if part.name != "vae_decoder":
            (out / part.name).symlink_to(part.resolve())
    class Decoder(torch.nn.Module):
        def __init__(self, vae):
            super().__init__()
            self.vae = vae
        def forward(self, latent_sample):
            return self.vae.decode(latent_sample).sample
    vae = AutoencoderTiny.from_pretrained(taesd).eval()
    model = ov.convert_model(Decoder(vae), example_input=torch.zeros(1, 4, 8, 8))
    model.reshape({0: ov.PartialShape([-1, 4, -1, -1])})
    model.inputs[0].get_tensor().set_names({"latent_sample"})
    model.outputs[0].get_tensor().set_names({"sample"})
    (out / "vae_decoder").mkdir()
    ov.save_model(model, out / "vae_decoder" / "openvino_model.xml")
    shutil.copy(taesd / "config.json", out / "vae_decoder" / "config.json")
    """
)
