"""The table of the dashboard's screens: the number keys, the mode bar, the help screen and the command
palette are all built from it, so a new screen is its own module plus one line here."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # textual loads with the app; the command line reads this table before that
    from textual.screen import Screen


@dataclass(frozen=True)
class ScreenEntry:
    """One screen: the key that shows it, its mode name, labels, where its class lives, what it is for."""

    key: str  # a single key, pressed anywhere to switch to the screen
    mode: str  # the App's mode name
    label: str  # "Training": the help screen, the palette, a wide mode bar
    short: str  # "Train": the mode bar at 80 columns
    target: str  # "package.module:Class", imported when the screen is first shown
    description: str  # one line for the help screen and the command palette

    def screen_class(self) -> type[Screen]:
        """The Screen class, imported on first use (the views pull in numpy and the core)."""
        module, _, name = self.target.partition(":")
        return getattr(importlib.import_module(module), name)


SCREENS = (
    ScreenEntry(
        "1", "config", "Config", "Config", "tinylm.tui.screens.config:ConfigScreen",
        "corpus, tokenizer, model and training settings",
    ),
    ScreenEntry(
        "2", "training", "Training", "Train", "tinylm.tui.screens.training:TrainingScreen",
        "loss chart, metrics and live weight heatmaps",
    ),
    ScreenEntry(
        "3", "inspect", "Inspect", "Inspect", "tinylm.tui.screens.inspect:InspectScreen",
        "a forward pass stage by stage, with its numbers",
    ),
    ScreenEntry(
        "4", "attention", "Attention", "Attn", "tinylm.tui.screens.attention:AttentionScreen",
        "every head's attention map for a layer",
    ),
    ScreenEntry(
        "5", "generate", "Generate", "Gen", "tinylm.tui.screens.generate:GenerateScreen",
        "next-token probabilities and live sampling",
    ),
    ScreenEntry(
        "6", "vocabulary", "Vocabulary", "Vocab", "tinylm.tui.screens.vocabulary:VocabularyScreen",
        "token embeddings, positions and a PCA map",
    ),
    ScreenEntry(
        "7", "backward", "Backward", "Back", "tinylm.tui.screens.backward:BackwardScreen",
        "one window's gradients from the loss to the embeddings; an AdamW step",
    ),
)  # fmt: skip


def key_of(mode: str, screens: tuple[ScreenEntry, ...] = SCREENS) -> str:
    """The key that shows a mode's screen, for messages such as "press 1 to ..."."""
    return next(entry.key for entry in screens if entry.mode == mode)


def key_range(screens: tuple[ScreenEntry, ...] = SCREENS) -> str:
    """The screens' keys for a sentence: "1-6" when they run in order, else "1, 2, 9"."""
    keys = [s.key for s in screens]
    consecutive = all(k.isdigit() for k in keys) and [int(k) for k in keys] == list(
        range(int(keys[0]), int(keys[0]) + len(keys))
    )
    return f"{keys[0]}-{keys[-1]}" if consecutive and len(keys) > 2 else ", ".join(keys)
