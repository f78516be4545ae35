"""``genlab report``: regenerate the report of a compare or sweep output directory.

Owns one flag-less command: it rebuilds ``report.md``, ``report.html`` and ``plots/`` from the
directory's ``spec.json``, ``results.jsonl`` and run directories (``genlab.api.report``), e.g.
after a sweep was stopped, or after more trials were added with ``--set trials=N``.
"""

from __future__ import annotations

import typer


def report(
    out_dir: str = typer.Argument(..., metavar="DIR", show_default=False,
                                  help="Output directory of genlab compare or genlab sweep."),
) -> None:
    """Rebuild report.md and report.html of a compare or sweep output directory."""
    # torch-free --help: the API loads only when the command runs; a directory that is not a
    # compare or sweep output is one line from the error boundary.
    from genlab.api import report as write_report

    md = write_report(out_dir)
    print(md)
    print(md.with_name("report.html"))
