"""Training: one loop for LoRA and full-weight runs, as an iterator of events.

``train.iter_train`` is the entry point; ``setup`` validates and builds everything before the
first step, ``loop`` runs the optimizer steps, ``evaluation`` measures eval loss and samples,
``optimizers`` and ``schedules`` own the update rule and the learning-rate curve, ``checkpoint``
what a resumable checkpoint holds, ``run_writer`` the files written while a run goes and
``run_dir`` the run-directory format and its readers.
"""
