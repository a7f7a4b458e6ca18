"""Side-by-side continuations of one prompt under four decoding strategies, with the same seed."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from ..safe_text import one_line, shown_text
from ..workers import background

COMPARE_TOKENS = 60  # tokens generated per strategy


def strategies(seed: int):
    """(label, Sampling) of the compared strategies."""
    from tinylm.core import Sampling

    return [
        ("greedy", Sampling(greedy=True, seed=seed)),
        ("temperature 0.7", Sampling(temperature=0.7, seed=seed)),
        ("top-k 10", Sampling(top_k=10, seed=seed)),
        ("top-p 0.9", Sampling(top_p=0.9, seed=seed)),
    ]


STRATEGIES = ("greedy", "temperature 0.7", "top-k 10", "top-p 0.9")


class CompareView(Horizontal):
    """Four columns, one per strategy, each continuing the same prompt from the same seed."""

    DEFAULT_CSS = """
    CompareView > Vertical { width: 1fr; padding: 0 1; }
    CompareView .compare-title { color: $accent; text-style: bold; height: 1; }
    CompareView .compare-text { height: 1fr; }
    """

    def compose(self) -> ComposeResult:
        for i, label in enumerate(STRATEGIES):
            with Vertical():
                yield Static(label, classes="compare-title", id=f"cmp-title-{i}")
                yield Static("", classes="compare-text", id=f"cmp-{i}")

    def run_compare(self, model, prompt: str, seed: int) -> None:
        """Generate the four continuations (in a worker) and show them."""
        if model is None or not prompt:
            for i in range(len(STRATEGIES)):
                self.query_one(f"#cmp-{i}", Static).update(Text("needs a model and a prompt", style="dim"))
            return
        for i in range(len(STRATEGIES)):
            self.query_one(f"#cmp-{i}", Static).update(Text("…", style="dim"))
        self.query_one("#cmp-title-0", Static).update(f"greedy · seed {seed}")
        self.generate(model, prompt, seed)

    @background("compare")
    def generate(self, model, prompt: str, seed: int) -> None:
        results = []
        for _label, sampling in strategies(seed):
            steps = list(model.generate(prompt, sampling, max_new_tokens=COMPARE_TOKENS))
            text = shown_text(model.tokenizer, [(g.id, g.text) for g in steps if not g.end])
            results.append(text + (" (end of text)" if steps and steps[-1].end else ""))  # named, not shown as text
        self.app.call_from_thread(self.show, results)

    def show(self, results: list[str]) -> None:
        for i, text in enumerate(results):
            self.query_one(f"#cmp-{i}", Static).update(Text(one_line(text.replace("\n", "⏎ "))))
