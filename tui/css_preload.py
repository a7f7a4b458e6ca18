"""Every screen's and widget's default CSS read once at start, not at each screen's first visit.

Textual adds a widget class's DEFAULT_CSS to the stylesheet the first time one is mounted, and any new
source makes it parse the whole stylesheet again and restyle every widget of every open screen; a new
screen also makes it reparse everything on its first switch. A first visit of a screen blocked the UI
for hundreds of milliseconds at GPT-2 scale. Adding all the sources before the first screen is composed
makes that a single parse at start, later mounts find their CSS there already, and a new screen is
marked as styled. The sources are exactly those Textual would add (same location, text, priority and
scope), so styles do not change. This relies on Textual internals: if they change, nothing is preloaded
and Textual does it its own way.
"""

from __future__ import annotations

from types import SimpleNamespace

from textual.dom import DOMNode
from textual.widget import Widget


def styled_as_the_app(screen) -> None:
    """Tell Textual that a new screen has the app's styles already (its widgets are styled as they are
    mounted, from the stylesheet preloaded above): otherwise its first switch reparses the whole
    stylesheet and restyles every widget of the app, twice (about 180 ms each on a busy 2-core machine)."""
    try:
        screen._css_update_count = screen.app._css_update_count
    except Exception:  # noqa: BLE001 - no app yet, or another Textual: it refreshes its own way
        pass


def _widget_classes() -> list[type[Widget]]:
    """Every Widget subclass imported so far (the registry's screens and what they compose)."""
    found, todo = [], [Widget]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def preload_default_css(stylesheet) -> int:
    """Add every imported widget class's default CSS sources to `stylesheet`; returns how many classes."""
    try:
        count = 0
        for cls in _widget_classes():
            node = SimpleNamespace(_node_bases=DOMNode._css_bases(cls))
            for read_from, css, tie_breaker, scope in DOMNode._get_default_css(node):
                stylesheet.add_source(
                    css, read_from=read_from, is_default_css=True, tie_breaker=tie_breaker, scope=scope
                )
            count += 1
        return count
    except (AttributeError, TypeError):  # another Textual: its first mounts add the CSS themselves
        return 0
