"""Spec files: ``common`` (YAML rules, variables, overrides, the typed validators), the two kinds
of spec (``compare``, ``sweep`` with its ``search_space``) and the ``loader`` on top that reads a
file and dispatches on its kind. Imports configs and generation's grid vocabulary, never the
experiments that run a spec.
"""
