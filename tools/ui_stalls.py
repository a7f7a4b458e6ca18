"""The worst UI stall per screen of tinylm-tui with a large model, measured by timer drift.

    python tools/ui_stalls.py --checkpoint DIR [--size 200x60]

A probe task sleeps 5 ms at a time on the app's event loop; how late it wakes is how long the loop was
blocked (a message handler, a compose, a render, or a worker thread holding the GIL). Each screen is
opened, given time to finish its background work, and driven with its keys; the worst lateness seen
while that screen is shown is its stall. Without --checkpoint a GPT-2-small-shaped model (12 layers,
12 heads, 768 wide, 1,024 positions) with random weights is built around a byte-level BPE tokenizer
padded to 50,257 tokens.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys
import threading
import time
import traceback

PROBE_S = 0.005
PRESS_TIMEOUT_S = 10.0
SCREENS = {  # mode -> keys pressed once the screen is ready
    "config": ["tab", "tab", "escape"],
    "inspect": ["n", "n", "n", "n", "n", "right_square_bracket", "full_stop", "right", "right", "z", "right", "z"],
    "attention": ["right_square_bracket", "full_stop", "full_stop", "down", "down"],
    "generate": ["n", "plus", "minus", "space", "plus", "minus", "space"],
    "vocabulary": [
        "down",
        "down",
        "pagedown",
        "right",
        "z",
        "z",
        "slash",
        "space",
        "t",
        "h",
        "e",
        "enter",
        "escape",
        "w",
        "w",
    ],
    "training": ["m", "m"],
    "backward": ["n", "n", "n", "right_square_bracket", "down", "right", "f", "n", "n"],
}


class Probe:
    """Records the largest lateness of a 5 ms sleep on the event loop, per label; a watchdog thread notes
    where the UI thread was whenever the loop has not ticked for 100 ms (the cause of each long stall)."""

    def __init__(self) -> None:
        self.label = "start"
        self.worst: dict[str, float] = {}
        self.task: asyncio.Task | None = None
        self.last_tick = time.perf_counter()
        self.where: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        self.ui_thread = threading.get_ident()
        threading.Thread(target=self._watch, daemon=True).start()

    async def run(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(PROBE_S)
            self.last_tick = now = time.perf_counter()
            late = now - start - PROBE_S
            if late > self.worst.get(self.label, 0.0):
                self.worst[self.label] = late

    def _watch(self) -> None:
        while True:
            time.sleep(0.05)
            if time.perf_counter() - self.last_tick > 0.1:
                frame = sys._current_frames().get(self.ui_thread)
                stack = traceback.extract_stack(frame) if frame is not None else []
                mine = ("/tui/", "/core/", "/kernels/", "/tinylm/")
                ours = [
                    f"{f.filename.split('/')[-1]}:{f.lineno} {f.name}"
                    for f in stack
                    if any(m in f.filename for m in mine)
                ]
                ours += [f"{f.filename.split('/')[-1]}:{f.lineno} {f.name}" for f in stack[-1:]]
                self.where[self.label][" < ".join(reversed(ours[-4:]))] += 1


def gpt2_small_model(vocab_size: int = 50257):
    """Random weights of GPT-2 small's shape, with a BPE tokenizer grown to the vocabulary size."""
    from tinylm.core import DEFAULT_CORPUS, GPT, ModelConfig, load_corpus, tokenizer_from_dict, train_tokenizer

    bpe = train_tokenizer("bpe", load_corpus(DEFAULT_CORPUS).text[:20000], 1000).to_dict()
    merges = bpe["merges"]
    # Pad with byte pairs not merged yet: short tokens, as GPT-2's are (merging each new token with a byte
    # again would make tokens thousands of bytes long, and every labelling of the vocabulary quadratic).
    taken = {tuple(m) for m in merges}
    pairs = ((a, b) for a in range(256) for b in range(256) if (a, b) not in taken)
    while 256 + len(merges) < vocab_size:
        merges.append(list(next(pairs)))
    tokenizer = tokenizer_from_dict({**bpe, "merges": merges})
    config = ModelConfig(n_layer=12, n_head=12, n_embd=768, block_size=1024, vocab_size=vocab_size)
    return GPT(config, tokenizer)


async def measure(model, size: tuple[int, int], settle_s: float, modes: list[str]) -> Probe:
    from tinylm.tui.app import create_app
    from tinylm.tui.session import Session

    app = create_app(Session(model, None, None, prompt="The quick brown fox jumps over the lazy dog. " * 3))
    probe = Probe()
    try:
        async with app.run_test(size=size) as pilot:
            probe.task = asyncio.create_task(probe.run())
            for mode in modes:
                keys = SCREENS[mode]
                started = time.perf_counter()
                probe.label = f"{mode}: open and load"
                app.switch_mode(mode)
                await asyncio.sleep(settle_s)
                probe.label = f"{mode}: keys"
                for key in keys:
                    try:  # the pilot waits for the app to be idle, which a live screen may never be
                        await asyncio.wait_for(pilot.press(key), PRESS_TIMEOUT_S)
                    except TimeoutError:
                        print(f"  {mode}: the app was still busy {PRESS_TIMEOUT_S:.0f} s after {key!r}", flush=True)
                    await asyncio.sleep(0.3)
                await asyncio.sleep(1.0)
                seen = {label: late for label, late in probe.worst.items() if label.startswith(mode)}
                report = "  ".join(f"{label} {1000 * late:.0f} ms" for label, late in seen.items())
                print(f"  ({time.perf_counter() - started:.0f} s) {report}", flush=True)  # as it goes
                for label in seen:
                    for place, n in probe.where[label].most_common(3):
                        print(f"      {n:4d} x 50 ms  {place}", flush=True)
            probe.task.cancel()
    finally:
        return probe  # noqa: B012  (the figures so far, even when a screen failed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="a checkpoint directory (default: build a GPT-2-small-shaped model)")
    parser.add_argument("--size", default="80x24", help="terminal size, e.g. 200x60")
    parser.add_argument("--settle", type=float, default=8.0, help="seconds each screen gets to load")
    parser.add_argument("--screens", default=",".join(SCREENS), help="the screens to visit, in order (comma-separated)")
    parser.add_argument("--gc-off", action="store_true", help="with the garbage collector off (to see its share)")
    args = parser.parse_args()
    modes = args.screens.split(",")
    if unknown := [m for m in modes if m not in SCREENS]:
        parser.error(f"unknown screen {unknown[0]!r}; choose among {', '.join(SCREENS)}")
    from tinylm.core import load

    start = time.perf_counter()
    model = load(args.checkpoint) if args.checkpoint else gpt2_small_model()
    print(f"model ready in {time.perf_counter() - start:.1f} s: {model.config}", flush=True)
    model.trace("warm the kernels")
    width, height = (int(x) for x in args.size.split("x"))
    if args.gc_off:
        import gc

        gc.disable()
    probe = asyncio.run(measure(model, (width, height), args.settle, modes))
    print(f"worst UI stall per screen at {args.size} (event-loop lateness of a {PROBE_S * 1000:.0f} ms timer):")
    for label, late in probe.worst.items():
        print(f"  {label:32s} {1000 * late:7.0f} ms")
    for label, places in probe.where.items():
        print(f"where the UI thread was during stalls over 100 ms ({label}, 50 ms samples):")
        for place, n in places.most_common(4):
            print(f"  {n:4d}  {place}")


if __name__ == "__main__":
    main()
