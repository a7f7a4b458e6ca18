"""tinylm.core: a GPT-2 trained from scratch in numpy + Numba. The public API (the TUI's only door)."""

from tinylm.kernels.backend import available_backends, cuda_missing, cuda_simulated, get_kernels

from . import reference, reference_backward
from .adamw_step import AdamWStep, apply_adamw_step, explain_adamw_step
from .backtrace import FD_STEP, BackTrace, FiniteDifference, backtrace, finite_difference, prompt_window
from .checkpoint import load, save_checkpoint
from .config import LN_EPS, MAX_SEED, ModelConfig, TrainConfig
from .corpus import DEFAULT_CORPUS, Corpus, builtin_corpora, check_split_lengths, load_corpus
from .errors import (
    CheckpointError,
    CheckpointRecovered,
    ConfigError,
    CorpusError,
    NonFiniteOutput,
    TinyLMError,
    TokenizerError,
)
from .generate import GenStep, generate
from .head_patterns import HeadPattern, describe_head, describe_heads, heads_summary
from .history import EmbeddingMaps, HistoryRecorder, Snapshot, embedding_maps, on_schedule
from .history_file import load_history
from .intervene import (
    Ablation,
    Effect,
    Intervention,
    continuation,
    greedy_continuation,
    intervened_probs,
    rank_heads,
)
from .kvwatch import CacheStep, KVWatch, decode_flops, kv_bytes, recompute_flops
from .model import GPT
from .reference import GELU_CUBIC, GELU_SCALE
from .run import finetune_trainer, make_trainer, memory_estimate
from .sampling import Sampling
from .saved_runs import SavedRun, describe_run, find_saved_runs, read_saved_run, run_differences
from .threads import kernel_settings, limit_threads, parallel_allowed
from .tokenizers import (
    TOKENIZERS,
    Tokenizer,
    TokenizerKind,
    load_tokenizer,
    tokenizer_from_dict,
    tokenizer_kind,
    train_tokenizer,
)
from .trace import Trace
from .trainer import Trainer, TrainingDiverged, TrainMetrics

__all__ = [
    "GPT",
    "SavedRun",
    "describe_run",
    "find_saved_runs",
    "read_saved_run",
    "run_differences",
    "load",
    "save_checkpoint",
    "ModelConfig",
    "LN_EPS",
    "GELU_SCALE",
    "GELU_CUBIC",
    "reference",
    "reference_backward",
    "BackTrace",
    "backtrace",
    "prompt_window",
    "FiniteDifference",
    "finite_difference",
    "FD_STEP",
    "AdamWStep",
    "explain_adamw_step",
    "apply_adamw_step",
    "TrainConfig",
    "MAX_SEED",
    "Corpus",
    "DEFAULT_CORPUS",
    "builtin_corpora",
    "load_corpus",
    "check_split_lengths",
    "TinyLMError",
    "ConfigError",
    "CorpusError",
    "TokenizerError",
    "CheckpointError",
    "CheckpointRecovered",
    "NonFiniteOutput",
    "TrainingDiverged",
    "Ablation",
    "Intervention",
    "Effect",
    "intervened_probs",
    "greedy_continuation",
    "continuation",
    "rank_heads",
    "KVWatch",
    "CacheStep",
    "kv_bytes",
    "decode_flops",
    "recompute_flops",
    "HistoryRecorder",
    "Snapshot",
    "EmbeddingMaps",
    "embedding_maps",
    "on_schedule",
    "load_history",
    "HeadPattern",
    "describe_head",
    "describe_heads",
    "heads_summary",
    "GenStep",
    "generate",
    "Sampling",
    "Tokenizer",
    "train_tokenizer",
    "TOKENIZERS",
    "TokenizerKind",
    "tokenizer_kind",
    "tokenizer_from_dict",
    "load_tokenizer",
    "Trace",
    "Trainer",
    "TrainMetrics",
    "make_trainer",
    "finetune_trainer",
    "memory_estimate",
    "limit_threads",
    "kernel_settings",
    "parallel_allowed",
    "get_kernels",
    "available_backends",
    "cuda_missing",
    "cuda_simulated",
]
