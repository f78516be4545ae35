"""Models: the only ``from_pretrained`` calls (``loading``: device, dtype, the shipped default
model, adapters by name), LoRA targets and PEFT wrapping (``lora``) and folding an adapter into
its base (``merge``).
"""
