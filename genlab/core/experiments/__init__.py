"""Experiments: running compare and sweep specs, resumably, by one or several workers.

``compare`` runs a compare spec's cells as one batched generation; ``sweep`` runs a sweep spec's
trials in an Optuna ``study``, each ``trial`` an ordinary training run, in this process or in
local ``worker`` processes; ``events`` are what a sweep yields. The top of the core: it uses
specs, reports, training, pretraining and generation, and nothing in the core imports it.
"""
