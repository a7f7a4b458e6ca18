"""A step-at-a-time trainer: random windows, AdamW, warmup + cosine schedule, clipping, validation."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numba
import numpy as np

from .checkpoint import open_run, restore_trainer_state, save_checkpoint
from .config import TrainConfig
from .corpus import check_split_lengths, split_ids
from .errors import ConfigError, CorpusError, TinyLMError
from .history import PROBE_TOKENS, HistoryRecorder, default_probe
from .interrupts import HeldInterrupts
from .metrics_history import MetricsHistory
from .parallel import MIN_SHARD_FLOPS, Shards, shard_count
from .schedule import get_lr


class TrainingDiverged(TinyLMError):
    """The loss or gradient became NaN or infinite; the weights are those of the last good step."""


@dataclass
class TrainMetrics:
    """What one training step reports."""

    step: int  # optimizer steps done, including this one
    max_steps: int
    train_loss: float
    val_loss: float | None  # set on evaluation steps
    accuracy: float | None  # top-1 next-token accuracy on validation (0..1), on evaluation steps
    lr: float
    grad_norm: float  # before clipping
    tokens_per_s: float
    elapsed_s: float  # training time so far (paused time excluded)
    eta_s: float  # estimated time to max_steps

    @property
    def progress(self) -> float:
        return self.step / self.max_steps


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)


def compact_ids(ids, vocab_size: int) -> np.ndarray:
    """The corpus's token ids in the smallest integer type that holds the vocabulary: uint16 for
    any vocabulary up to 65,536 (a quarter of int64's memory: 2.2 MB instead of 8.9 for tiny
    shakespeare), checked against the vocabulary first so that nothing wraps around."""
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise CorpusError(f"token ids must be one sequence, got shape {ids.shape}")
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        raise CorpusError(
            f"token ids must be in [0, {vocab_size}) for this model, got {ids.min()}..{ids.max()}; "
            "encode the corpus with the model's tokenizer"
        )
    return np.ascontiguousarray(ids, dtype=np.uint16 if vocab_size <= 1 << 16 else np.int32)


class Trainer:
    """Advances a model one optimizer step at a time; pausing and stopping are the caller's choice
    of when to call step() next."""

    def __init__(self, model, ids: np.ndarray, config: TrainConfig, *, corpus=None, history: bool = True):
        """history: keep snapshots at log-spaced steps (see history.py) in `recorder`; False: none (None)."""
        self.model, self.config, self.corpus = model, config.validate(), corpus
        self.kernels = model.kernels  # the optimizer runs on the model's backend
        T, B = config.context or model.config.block_size, config.batch_size
        if T > model.config.block_size:
            raise ConfigError(
                f"training context {T} is longer than the model's context {model.config.block_size} (n_positions)"
            )
        ids = compact_ids(ids, model.config.vocab_size)
        check_split_lengths(len(ids), T, config.val_fraction)
        self.train_ids, self.val_ids = split_ids(ids, config.val_fraction)
        self.step_count = 0
        self.history: list[TrainMetrics] = MetricsHistory()  # bounded: thinned as the run grows
        self.rng = np.random.default_rng(config.seed)  # batch positions
        self.dropout_rng = np.random.default_rng(config.seed + 1)
        n = model.flat.size
        zeros = self.kernels.zeros
        self.m = zeros(n, model.dtype)  # AdamW first moment, same layout as the weights
        self.v = zeros(n, model.dtype)  # AdamW second moment
        self.x = zeros((B, T), np.int64)  # (B, T) inputs
        self.y = zeros((B, T), np.int64)  # (B, T) next-token targets
        self._uniform = np.zeros(B)  # (B,) draws that place this batch's windows, made on the host
        # The kernels' copies (the same arrays on the CPU): batches are cut on the device.
        self._uniform_buf = self.kernels.from_host(self._uniform)
        self._data = {"train": self.kernels.from_host(self.train_ids), "val": self.kernels.from_host(self.val_ids)}
        self.elapsed_s = 0.0
        self._tokens_per_s = 0.0
        self._recent: list[float] = []  # seconds of the latest steps, for the time-left estimate
        # Threads for data parallelism (see parallel.py); None: the calling thread's Numba thread
        # count, which `limit_threads` and NUMBA_NUM_THREADS set. 1 runs each batch in one piece.
        self.threads: int | None = None
        # The least work (forward + backward FLOPs) a row shard must carry to be worth a thread.
        self.min_shard_flops = MIN_SHARD_FLOPS
        self._shards: Shards | None = None
        probe = default_probe(self.val_ids, model.tokenizer, min(PROBE_TOKENS, model.config.block_size))
        self.recorder = HistoryRecorder.for_model(model, probe) if history else None

    @property
    def n_train_tokens(self) -> int:
        return len(self.train_ids)

    @property
    def n_val_tokens(self) -> int:
        return len(self.val_ids)

    @property
    def done(self) -> bool:
        return self.step_count >= self.config.max_steps

    def _fill_batch(self, part: str, rng: np.random.Generator) -> None:
        """Cut a batch of random windows of the "train" or "val" tokens into x and y."""
        rng.random(out=self._uniform)
        self.kernels.copy_in(self._uniform_buf, self._uniform)
        self.kernels.gather_windows(self.x, self.y, self._data[part], self._uniform_buf)

    def shards(self) -> Shards | None:
        """The row shards this step runs as, or None to run the batch in one piece (always on a GPU,
        which runs each kernel across its own threads)."""
        if self.kernels.DEVICE != "cpu":
            return None
        B = self.config.batch_size
        n = shard_count(self.model, B, self.threads or numba.get_num_threads(), self.min_shard_flops)
        if n == 1:
            return None
        if self._shards is None or len(self._shards) != n:
            self._shards = Shards(self.model, n, B)
        return self._shards

    def release_buffers(self) -> None:
        """Free the activations, gradients and row-shard replicas of training (made again by the next
        step); the weights and the optimizer state stay."""
        for model in self._shards.models if self._shards is not None else [self.model]:
            model.release_buffers()
        self._shards = None

    def lr_at(self, step: int) -> float:
        c = self.config
        return get_lr(step, c.learning_rate, c.min_lr, c.warmup_steps, c.decay_steps)

    def step(self) -> TrainMetrics:
        """One optimizer step; evaluates every eval_interval steps and at the end.

        An exception or Ctrl-C never leaves half a step: before the update nothing has changed (the
        batch and dropout generators are put back), the update and the step count change together
        with Ctrl-C held back, and an evaluation cut short by Ctrl-C is skipped (val_loss None) with
        the step kept, its metrics recorded, and the KeyboardInterrupt raised after."""
        c, model = self.config, self.model
        if self.recorder is not None and not len(self.recorder):
            self.record_history()  # the weights before this step: the start of the run (or of a resumed one)
        started = time.perf_counter()
        lr = self.lr_at(self.step_count)
        dropout_rng = self.dropout_rng if model.config.dropout else None
        rng_state, dropout_state = self.rng.bit_generator.state, self.dropout_rng.bit_generator.state
        # overflow becomes a NaN or inf loss or norm, which _gradients reports in one line
        with model.lock, np.errstate(over="ignore", invalid="ignore"):
            try:
                loss, norm = self._gradients(dropout_rng)
            except BaseException:
                self.rng.bit_generator.state, self.dropout_rng.bit_generator.state = rng_state, dropout_state
                raise
            interrupted = None
            with HeldInterrupts() as held:
                if c.grad_clip > 0 and norm > c.grad_clip:
                    self.kernels.scale_inplace(model.grad_flat, c.grad_clip / (norm + 1e-6))
                self.kernels.adamw_update(
                    model.flat,
                    model.grad_flat,
                    self.m,
                    self.v,
                    lr,
                    c.beta1,
                    c.beta2,
                    c.eps,
                    c.weight_decay,
                    self.step_count + 1,
                    model.layout.n_decay,
                )
                self.step_count += 1
                val_loss = accuracy = None
                if self.step_count % c.eval_interval == 0 or self.done:
                    try:
                        with held.released():
                            val_loss, accuracy = self.evaluate()
                    except KeyboardInterrupt as exc:
                        interrupted = exc
                metrics = self._metrics(started, loss, norm, lr, val_loss, accuracy)
        if interrupted is not None:
            raise interrupted
        if self.recorder is not None and (self.done or self.recorder.due(self.step_count)):
            self.record_history()  # rare (log-spaced steps) and outside the step's timing
        return metrics

    def record_history(self) -> None:
        """Snapshot the weights as they are now (between steps) into the history, with this step's train
        loss and the latest validation loss; nothing when the step is there already or there is no history."""
        if self.recorder is None:
            return
        last = self.history[-1] if self.history and self.history[-1].step == self.step_count else None
        val = next((m for m in reversed(self.history) if m.val_loss is not None), None)
        self.recorder.take(
            self.model,
            self.step_count,
            last.train_loss if last is not None else None,
            val.val_loss if val is not None else None,
            val.step if val is not None else None,
        )

    def _gradients(self, dropout_rng) -> tuple[float, float]:
        """Forward and backward of a fresh batch: (loss, gradient norm); changes no weights."""
        model = self.model
        self._fill_batch("train", self.rng)
        shards = self.shards()
        if shards is None:
            loss = model.forward(self.x, self.y, dropout_rng=dropout_rng)
            if np.isfinite(loss):
                model.backward()
        else:
            loss = shards.train(self.x, self.y, dropout_rng)
        if not np.isfinite(loss):
            raise TrainingDiverged(
                f"training diverged at step {self.step_count + 1} (loss {loss}); the weights are those of "
                f"step {self.step_count}: lower the learning rate and train again"
            )
        norm = self.kernels.grad_norm(model.grad_flat)
        if not np.isfinite(norm):
            raise TrainingDiverged(
                f"training diverged at step {self.step_count + 1} (gradient norm {norm}); the weights are "
                f"those of step {self.step_count}: lower the learning rate and train again"
            )
        return loss, norm

    def _metrics(self, started, loss, norm, lr, val_loss, accuracy) -> TrainMetrics:
        """The step's metrics, recorded in the history."""
        c = self.config
        seconds = time.perf_counter() - started
        self.elapsed_s += seconds
        rate = self.x.size / max(seconds, 1e-9)
        # Smoothed, so the display does not flicker with every step's noise; the first step of a
        # process may include compiling kernels, so it seeds the rate but not the time-left estimate.
        self._tokens_per_s = (
            rate if self._tokens_per_s == 0 or len(self._recent) < 2 else 0.9 * self._tokens_per_s + 0.1 * rate
        )
        self._recent.append(seconds)
        if len(self._recent) > 50:
            self._recent.pop(0)
        timed = self._recent[1:] if len(self._recent) > 1 else self._recent
        mean_step = sum(timed) / len(timed)
        metrics = TrainMetrics(
            step=self.step_count,
            max_steps=c.max_steps,
            train_loss=loss,
            val_loss=val_loss,
            accuracy=accuracy,
            lr=lr,
            grad_norm=float(norm),
            tokens_per_s=self._tokens_per_s,
            elapsed_s=self.elapsed_s,
            eta_s=mean_step * (c.max_steps - self.step_count),
        )
        self.history.append(metrics)
        return metrics

    def evaluate(self) -> tuple[float, float]:
        """Mean validation loss and top-1 next-token accuracy over eval_batches fixed random windows."""
        model = self.model
        # Seeded by the step, so evaluation neither consumes nor depends on the training RNG.
        rng = np.random.default_rng([self.config.seed, self.step_count])
        total, correct, count = 0.0, 0, 0
        K = self.kernels
        x_saved, y_saved = np.array(K.to_host(self.x)), np.array(K.to_host(self.y))  # copies
        with model.lock:
            shards = self.shards()
            for _ in range(self.config.eval_batches):
                self._fill_batch("val", rng)
                if shards is None:
                    total += model.forward(self.x, self.y)
                    a = model.last_activations
                    correct += K.count_correct(a.logits, a.targets_flat)
                else:
                    loss, right = shards.evaluate(self.x, self.y)
                    total, correct = total + loss, correct + right
                count += self.y.size
        K.copy_in(self.x, x_saved)
        K.copy_in(self.y, y_saved)
        return total / self.config.eval_batches, correct / count

    # ----- checkpoints ---------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """JSON-ready state that, with the weights and moments, lets training resume exactly."""
        return {
            "step": self.step_count,
            "elapsed_s": self.elapsed_s,
            "rng": self.rng.bit_generator.state,
            "dropout_rng": self.dropout_rng.bit_generator.state,
            "history": [asdict(h) for h in self.history],
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore what state_dict saved; ValueError or TypeError naming the first value of a wrong kind."""
        step, elapsed = state["step"], state.get("elapsed_s", 0.0)
        if not isinstance(step, int) or isinstance(step, bool) or step < 0:
            raise ValueError(f"step must be a whole number 0 or more, got {step!r}")
        if not _is_number(elapsed):
            raise ValueError(f"elapsed_s must be a number, got {elapsed!r}")
        history = state.get("history", [])
        if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
            raise ValueError("history must be a list of objects")
        history = [TrainMetrics(**h) for h in history]
        for m in history:
            for name, value in asdict(m).items():
                if not (_is_number(value) or (value is None and name in ("val_loss", "accuracy"))):
                    raise ValueError(f"history step {m.step!r}: {name} is {value!r}, not a number")
        rng, dropout_rng = np.random.default_rng(), np.random.default_rng()
        rng.bit_generator.state, dropout_rng.bit_generator.state = state["rng"], state["dropout_rng"]
        self.step_count, self.elapsed_s, self.history = step, float(elapsed), MetricsHistory(history)
        self.rng.bit_generator.state = rng.bit_generator.state
        self.dropout_rng.bit_generator.state = dropout_rng.bit_generator.state

    def save(self, path) -> None:
        """Write model, tokenizer, optimizer, trainer state and history to a checkpoint directory (the history
        gets a snapshot of the weights saved, when it has none of this step)."""
        self.record_history()
        save_checkpoint(path, self.model, trainer=self)

    @classmethod
    def resume(cls, path, corpus=None, *, kernels=None) -> Trainer:
        """A trainer that continues a checkpoint's run exactly (same losses as an uninterrupted run),
        on the kernel namespace `kernels` (default the CPU's; any device, whichever saved it)."""
        model, config, corpus = open_run(path, corpus, kernels=kernels)
        trainer = cls(model, model.tokenizer.encode(corpus.text), config, corpus=corpus)
        restore_trainer_state(path, trainer)
        return trainer
