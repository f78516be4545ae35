"""Training data: reading documents from files, directories and the hub (``sources``), and
turning them into tokens packed into fixed-length blocks with an eval split (``packing``).

Depends only on ``genlab.core.configs``; the tokenizer is handed in by the caller.
"""
