"""Shared state of the dashboard: the model, its trainer, the corpus and the shared selection."""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any

from . import gc_policy

if TYPE_CHECKING:  # the core is imported lazily so `import tinylm.tui.session` stays cheap
    from tinylm.core import GPT, Corpus, Trace, Trainer

DEFAULT_PROMPT = "The fox"


class Session:
    """What every screen reads: model, trainer, corpus, prompt, layer/head selection and a weight version."""

    def __init__(
        self,
        model: GPT | None = None,
        trainer: Trainer | None = None,
        corpus: Corpus | None = None,
        prompt: str = DEFAULT_PROMPT,
    ) -> None:
        self.model = model
        self.trainer = trainer
        self.corpus = corpus
        self.prompt = prompt
        self.version = 0  # bumped whenever the weights change (training seen by the UI, load, create)
        self.layer = 0  # selection shared by Inspect and Attention
        self.head = 0
        self.checkpoint_path: str | None = None  # where this model was last loaded from or saved to
        self._saved: tuple[weakref.ref, int] | None = None  # (model, trainer step) a checkpoint holds
        self.ablations: tuple = ()  # parts knocked out on the Attention screen (tinylm.core.Ablation)
        self.ablation_mode = "zero"  # or "mean": a knocked-out part's mean over the positions
        self.forced_tokens: tuple[str, dict[int, int]] = ("", {})  # (prompt, {position: token id}) replaced
        self.history_step: int | None = None  # the history snapshot the screens show; None: live
        self.saved_history = None  # the history of a checkpoint opened without its trainer (HistoryRecorder)
        self.settings: dict[str, Any] = {}  # the Config screen's last values, kept across screen switches
        self.sampling = None  # Generate's sampling settings (current_sampling makes them on first use)
        # the screens' last snapshot (trace, weights, labels): a screen switch reuses it instead of tracing
        # again (at GPT-2 size a 1,024-token trace takes seconds and 1.7 GB)
        self.snapshot = None
        self._trace_key: tuple[int, str, int] | None = None
        self._trace: Trace | None = None
        self._trace_lock = threading.Lock()

    # -- model lifecycle -------------------------------------------------------------------------
    def set_model(
        self,
        model: GPT | None,
        trainer: Trainer | None = None,
        corpus: Corpus | None = None,
        checkpoint: str | None = None,
        history=None,
    ) -> None:
        """Install a new model (and optionally its trainer, corpus and the checkpoint it was opened from);
        clamps the layer/head selection. A model without a checkpoint has no directory of its own yet."""
        self.model = model
        self.trainer = trainer
        self.snapshot = None  # the old model's, memory freed
        self.ablations = ()  # they name parts of the old model
        self.forced_tokens = ("", {})
        self.history_step = None  # a new model's history (if any) starts live
        self.saved_history = history if trainer is None else None
        if corpus is not None:
            self.corpus = corpus
        self.checkpoint_path = checkpoint
        if checkpoint is not None:
            self.mark_saved(checkpoint)
        if model is not None:
            self.layer = min(self.layer, model.config.n_layer - 1)
            self.head = min(self.head, model.config.n_head - 1)
        self.bump()
        gc_policy.settle()  # its tokenizer's tables and the rest stay alive: out of the collector's full passes

    def mark_saved(self, path: str) -> None:
        """Record that the checkpoint at `path` holds the weights as they are now."""
        self.checkpoint_path = path
        if self.model is not None:
            self._saved = (weakref.ref(self.model), self.steps_done)

    @property
    def steps_done(self) -> int:
        return self.trainer.step_count if self.trainer is not None else 0

    @property
    def unsaved(self) -> bool:
        """True when trained weights exist that no checkpoint holds (quitting or replacing them asks first).

        An untrained model is not counted: it is made again from its settings and seed."""
        if self.model is None or self.trainer is None:
            return False
        if self._saved is not None and self._saved[0]() is self.model:
            return self.steps_done != self._saved[1]
        return self.steps_done > 0

    def bump(self) -> None:
        """Mark the weights as changed, so traces and views recompute."""
        self.version += 1

    @property
    def has_model(self) -> bool:
        return self.model is not None

    @property
    def n_layer(self) -> int:
        return self.model.config.n_layer if self.model is not None else 0

    @property
    def n_head(self) -> int:
        return self.model.config.n_head if self.model is not None else 0

    def select(self, layer: int | None = None, head: int | None = None) -> None:
        """Set the shared layer/head selection, wrapping around the model's sizes."""
        if self.model is None:
            return
        if layer is not None:
            self.layer = layer % self.n_layer
        if head is not None:
            self.head = head % self.n_head

    # -- forward pass ----------------------------------------------------------------------------
    def prompt_ids(self):
        """The prompt as token ids (unseen characters become the tokenizer's <unk> id); None if empty."""
        if self.model is None:
            return None
        ids = self.model.tokenizer.encode(self.prompt)
        return ids if len(ids) else None

    def trace(self) -> Trace | None:
        """The forward pass of the shared prompt, cached by (version, prompt); None without a model or prompt."""
        model = self.model
        if model is None:
            return None
        key = (self.version, self.prompt, id(model))
        with self._trace_lock:
            if key == self._trace_key and self._trace is not None:
                return self._trace
            ids = self.prompt_ids()
            if ids is None:
                return None
            with model.lock:  # a trainer step must not change the weights half-way through the pass
                trace = model.trace(ids)
            self._trace_key, self._trace = key, trace
            return trace

    # -- construction ----------------------------------------------------------------------------
    def current_sampling(self):
        """The sampling settings Generate's knobs turn (a core Sampling: temperature 1, every token, seed 0
        at first); the knock-out panels draw their continuations with them too."""
        if self.sampling is None:
            from tinylm.core import Sampling

            self.sampling = Sampling(temperature=1.0, top_k=0, top_p=1.0, greedy=False, seed=0)
        return self.sampling

    @classmethod
    def demo(cls, seed: int = 0, steps: int = 0, prompt: str = DEFAULT_PROMPT) -> Session:
        """A tiny char model on the built-in corpus (2 layers, 2 heads, C=16, T=16), trained `steps` steps."""
        from tinylm.core import DEFAULT_CORPUS, ModelConfig, TrainConfig, load_corpus, make_trainer

        corpus = load_corpus(DEFAULT_CORPUS)
        model_config = ModelConfig(n_layer=2, n_head=2, n_embd=16, block_size=16)
        train_config = TrainConfig(
            batch_size=8,
            max_steps=max(steps, 1),
            warmup_steps=0,
            learning_rate=3e-3,
            min_lr=3e-4,
            eval_interval=max(steps, 1),
            eval_batches=2,
            seed=seed,
        )
        trainer = make_trainer(corpus, "char", model_config=model_config, train_config=train_config)
        for _ in range(steps):
            trainer.step()
        session = cls(trainer.model, trainer, corpus, prompt)
        session.bump()
        return session
