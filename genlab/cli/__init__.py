"""The ``genlab`` command line: one typer app, one module per subcommand.

Subcommand modules import only typer and the standard library at import time; each imports
``genlab.core`` (and so torch) inside its function body, so ``genlab --help`` and
``genlab sample --help`` start without torch. Every command runs inside the one error boundary,
``common.GenlabGroup``: bad input is one ``genlab: error:`` line, never a traceback (``genlab
--debug <command>`` shows it).
"""

from __future__ import annotations

import typer

from genlab.cli import (
    common,
    compare_cmd,
    lr_find_cmd,
    merge_cmd,
    pretrain_cmd,
    report_cmd,
    sample_cmd,
    sweep_cmd,
    train_cmd,
    tui_cmd,
)
from genlab.version import __version__

app = typer.Typer(
    name="genlab",
    cls=common.GenlabGroup,
    help="See how sampling and training hyperparameters change a language model.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"genlab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="On an error, print the Python "
                               "traceback too (also: GENLAB_DEBUG=1). Give it before the "
                               "command: genlab --debug train ..."),
) -> None:
    """See how sampling and training hyperparameters change a language model."""
    common.set_debug(debug)


app.command("sample", no_args_is_help=False)(sample_cmd.sample)
app.command("train", epilog=train_cmd.EPILOG)(train_cmd.train)
app.command("lr-find", epilog=lr_find_cmd.EPILOG)(lr_find_cmd.lr_find)
app.command("merge", epilog=merge_cmd.EPILOG)(merge_cmd.merge)
app.command("tui")(tui_cmd.tui)
app.command("compare", epilog=compare_cmd.EPILOG)(compare_cmd.compare)
app.command("sweep", epilog=sweep_cmd.EPILOG)(sweep_cmd.sweep)
app.command("report")(report_cmd.report)
app.command("pretrain", epilog=pretrain_cmd.EPILOG)(pretrain_cmd.pretrain)


def main() -> None:
    """Console-script entry point."""
    app()
