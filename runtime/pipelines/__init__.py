"""The pipelines, with diffusers' names and call arguments: a shared base (loading, loop, decode), the
text-guided generation (``guided``) that text-to-image, img2img, inpainting and SDXL configure, and DDPM."""
