"""LoRA without torch: files (diffusers/PEFT and kohya layouts) and where their layers land in a bundle."""
