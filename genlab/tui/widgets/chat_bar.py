"""The Sample screen's prompt format: a chat toggle, a system-prompt box, the active template.

Owns how the prompt is sent: through the model's chat template as a user turn (with the system
message in front) or as raw text. It shows which template is active and the model's context
length; with no template the toggle is off and disabled. Any change posts ``ChatBar.Changed``.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Checkbox, Input, Static

from genlab.tui.widgets import tcss

HINT = ("chat: send the prompt as a user turn through the model's chat template (replies "
        "only, stopping at the end of the turn); off = raw text continuation. The system "
        "prompt goes in front of the conversation.")


class ChatBar(Horizontal):
    """``[x] chat  system: ...  ChatML template, turns end with <|im_end|> · context 2048``."""

    DEFAULT_CSS = tcss(__file__)

    class Changed(Message):
        """The chat toggle or the system prompt changed."""

        def __init__(self, bar: ChatBar) -> None:
            super().__init__()
            self.bar = bar

    def compose(self) -> ComposeResult:
        yield Checkbox("chat", False, id="chat", disabled=True,
                       tooltip="Send the prompt through the model's chat template")
        yield Input(placeholder="system prompt (chat only)", id="system",
                    select_on_focus=False)
        yield Static("chat template: waiting for the model", id="template")

    @property
    def chat(self) -> bool:
        """True when prompts go through the chat template."""
        return self.query_one("#chat", Checkbox).value

    @property
    def system(self) -> str | None:
        """The system prompt, or None when empty (or when chat is off)."""
        text = self.query_one("#system", Input).value.strip()
        return text or None if self.chat else None

    def set_model(self, template: str, context: int | None) -> None:
        """Show the model's template (``""``: none) and context; chat starts on with one."""
        box = self.query_one("#chat", Checkbox)
        with self.prevent(Checkbox.Changed):
            box.value = bool(template)
        box.disabled = not template
        self.query_one("#system", Input).disabled = not template
        shown = template or "no chat template: prompts are raw text"
        if context:
            shown += f" · context {context:,} tokens"
        self.query_one("#template", Static).update(shown)

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        event.stop()
        self.query_one("#system", Input).disabled = not event.value
        self.post_message(self.Changed(self))

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.post_message(self.Changed(self))
