"""The IPython side: `%load_ext autograd_quiz` registers %quiz_login, %quiz_logout and the %%grade cell magic,
and shows every QuizError as its one-paragraph message instead of a traceback (the message says what to do;
the stack of the client's HTTP code would only hide it).

A %%grade cell is not run in the notebook: its text is sent to the grader, which runs it in its sandbox
against the reference, and the verdict is shown as the cell's output.
"""
from __future__ import annotations

from typing import Any

from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display

from . import session
from .errors import QuizError


@magics_class
class QuizMagics(Magics):
    @line_magic
    @magic_arguments()
    @argument("url", nargs="?", help="the quiz server's address (default: $AUTOGRAD_QUIZ_URL, or the last one)")
    @argument("--course", help="the course to grade in (a course's slug)")
    @argument("--token", action="store_true", help="paste an API token instead of typing a username and password")
    def quiz_login(self, line: str) -> None:
        """Log in to the quiz server: the token comes from $AUTOGRAD_QUIZ_TOKEN, the stored one, or a prompt
        (never shown, stored readable by you only)."""
        args = parse_argstring(self.quiz_login, line)
        display(session.login(args.url, course=args.course, ask_token=args.token))

    @line_magic
    def quiz_logout(self, line: str) -> None:
        """Forget the stored token of the quiz server (the current one, or the address given)."""
        url = line.strip() or None
        forgotten = session.logout(url)
        display(_Note("Logged out: the stored token is deleted." if forgotten else "No stored token to delete."))

    @cell_magic
    @magic_arguments()
    @argument("item", help="the item's slug, e.g. grad-of-polynomial")
    @argument("--course", help="the course to grade in, when not the one of %%quiz_login")
    @argument("--timeout", type=float, default=None, help="seconds to wait for the verdict (default 120)")
    def grade(self, line: str, cell: str) -> None:
        """Send this cell's code to the grader (it is not run here) and show the verdict."""
        args = parse_argstring(self.grade, line)
        options: dict[str, Any] = {"course": args.course}
        if args.timeout is not None:
            options["timeout"] = args.timeout
        display(session.grade(args.item, cell, **options))


class _Note:
    def __init__(self, text: str) -> None:
        self._text = text

    def __repr__(self) -> str:
        return self._text

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self._text)


def show_quiz_error(shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: int | None = None) -> list[str]:
    """IPython's handler for QuizError: the error's name and message as the cell's error output, no stack."""
    structured = [f"{etype.__name__}: {value}"]
    show = getattr(shell, "_showtraceback", None)  # ipykernel's sends an `error` output; the terminal's prints
    if show is not None:
        show(etype, value, structured)
    else:  # pragma: no cover - every InteractiveShell has it today
        shell.showtraceback(exception_only=True)
    return structured


def load_ipython_extension(ipython: Any) -> None:
    ipython.register_magics(QuizMagics)
    ipython.set_custom_exc((QuizError,), show_quiz_error)


def unload_ipython_extension(ipython: Any) -> None:
    ipython.set_custom_exc((), None)
