"""``genlab report``: regenerate the report of a compare or sweep output directory.

Owns one flag-less command: it rebuilds ``report.md``, ``report.html`` and ``plots/`` from the
directory's ``spec.json``, ``results.jsonl`` and run directories (``genlab.api.report``), e.g.
after a sweep was stopped, or after more trials were added with ``--set trials=N``.
"""

from __future__ import annotations

import typer

from genlab.cli.common import fail


def report(
    out_dir: str = typer.Argument(..., metavar="DIR", show_default=False,
                                  help="Output directory of genlab compare or genlab sweep."),
) -> None:
    """Rebuild report.md and report.html of a compare or sweep output directory."""
    from genlab.api import report as write_report

    try:
        md = write_report(out_dir)
    except (FileNotFoundError, ValueError) as err:
        fail(str(err).splitlines()[0])
    print(md)
    print(md.with_name("report.html"))
