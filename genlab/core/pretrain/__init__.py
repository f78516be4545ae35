"""From-scratch pretraining (``genlab pretrain``): the byte-level BPE ``tokenizer``, the small
Llama ``model`` builder, the ``pipeline`` that trains it through ``genlab.core.training``, the
wall-clock ``timebox`` (warmup-stable-decay to a deadline) and whole-story bits per byte
(``bpb``).
"""
