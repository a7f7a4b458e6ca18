"""The bottom chrome of every screen: the numbered screen tabs with a status, and the screen's keys."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widget import Widget


class ModeBar(Widget):
    """One line: `1 Config  2 Training ...` with the current screen highlighted, and the app status on the right."""

    DEFAULT_CSS = """
    ModeBar { height: 1; background: $panel; }
    """

    def on_mount(self) -> None:
        self.watch(self.app, "status", lambda _: self.refresh(), init=False)
        self.app.mode_change_signal.subscribe(self, lambda _: self.refresh())

    def render(self) -> Text:
        width = self.content_size.width
        current = getattr(self.app, "current_mode", None)
        status = str(getattr(self.app, "status", ""))
        # The first layout that fits: long labels, short labels, fewer hints; else short labels and a
        # cropped status (keys alone only on very narrow terminals).
        layouts = ((2, "? help ^p cmds"), (3, "? help ^p cmds"), (3, "? help"), (3, ""), (None, "? help"))
        for labels, hints in layouts:
            right = f"{hints}  {status}".strip()
            tabs = Text(no_wrap=True, overflow="crop")
            for entry in self.app.screen_entries:
                label = {2: entry.label, 3: entry.short, None: ""}[labels]
                style = "bold reverse" if entry.mode == current else ""
                tabs.append(f" {entry.key}", style=style or "bold")
                tabs.append(f" {label} " if label else " ", style=style)
            if tabs.cell_len + len(right) + 1 <= width or (labels == 3 and not hints and width >= 60):
                break
        room = max(width - tabs.cell_len - 1, 0)
        tabs.append(" " * max(room - len(right), 1))
        tabs.append(right[:room], style="italic")
        return tabs


class KeyBar(Widget):
    """The screen's keys on one line, drawn as text (Textual's Footer mounts a widget per key, and
    restyling those on every screen switch cost a few hundred ms while training)."""

    COMPONENT_CLASSES = {"keybar--key"}
    DEFAULT_CSS = """
    KeyBar { height: 1; background: $footer-background; color: $footer-foreground; }
    KeyBar > .keybar--key { color: $footer-key-foreground; text-style: bold; }
    """

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, lambda _: self.refresh())

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def entries(self) -> list[tuple[str, str, bool]]:
        """(keys, description, enabled) of the shown bindings; a binding group is one entry."""
        seen: set[str] = set()
        grouped: dict[str, tuple[list[str], bool]] = {}
        order: list[tuple[str, Binding.Group | None, Binding, bool]] = []
        for _, binding, enabled, _ in self.screen.active_bindings.values():
            if not binding.show or binding.action in seen:
                continue
            seen.add(binding.action)
            key = self.app.get_key_display(binding)
            if binding.group is not None:
                name = binding.group.description
                if name not in grouped:
                    grouped[name] = ([], enabled)
                    order.append((name, binding.group, binding, enabled))
                grouped[name][0].append(key)
            else:
                order.append((key, None, binding, enabled))
        return [
            ("".join(grouped[name][0]), name, enabled) if group is not None else (name, binding.description, enabled)
            for name, group, binding, enabled in order
        ]

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="crop")
        key_style = self.get_component_rich_style("keybar--key")
        for keys, description, enabled in self.entries():
            text.append(f" {keys}", style=key_style)
            text.append(f" {description} ", style="" if enabled else "dim")
        return text


class Chrome(Vertical):
    """The mode bar and, unless the screen brings its own Footer, the key bar."""

    DEFAULT_CSS = """
    Chrome { dock: bottom; height: auto; }
    """

    def __init__(self, footer: bool = True) -> None:
        super().__init__()
        self._footer = footer

    def compose(self) -> ComposeResult:
        yield ModeBar()
        if self._footer:
            yield KeyBar()
