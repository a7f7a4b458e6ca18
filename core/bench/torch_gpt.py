"""The PyTorch side of `tinylm bench`: a small eager GPT-2 with tinylm's shapes, optimizer and loops.

Run as a script (`python torch_gpt.py SPEC.json`) so the torch process never imports tinylm or
numba and its memory is torch's alone; tests import it as `tinylm.core.bench.torch_gpt`. It needs only
torch and numpy, and is only started when torch is importable.
"""

from __future__ import annotations

import json
import math
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

try:
    from .memory_peak import peak_rss_kb
except ImportError:  # run as a script: this folder is sys.path[0]
    from memory_peak import peak_rss_kb

IMPORTED_AT = time.time()


class Block(nn.Module):
    """Pre-LayerNorm transformer block: causal self-attention and a GELU-tanh MLP."""

    def __init__(self, C: int, n_head: int):
        super().__init__()
        self.n_head = n_head
        self.ln_1 = nn.LayerNorm(C, eps=1e-5)
        self.c_attn = nn.Linear(C, 3 * C)
        self.c_proj = nn.Linear(C, C)
        self.ln_2 = nn.LayerNorm(C, eps=1e-5)
        self.c_fc = nn.Linear(C, 4 * C)
        self.mlp_proj = nn.Linear(4 * C, C)

    def attention(self, x, cache=None, pos=0):
        """Causal attention of x (B, T, C); with a cache (k, v of shape (B, NH, Tmax, HS)) the new
        keys and values are written at pos.. and the queries attend to everything up to them."""
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            kc, vc = cache
            kc[:, :, pos : pos + T] = k
            vc[:, :, pos : pos + T] = v
            k, v = kc[:, :, : pos + T], vc[:, :, : pos + T]
            y = F.scaled_dot_product_attention(q, k, v, is_causal=T > 1)  # one query sees every key
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))

    def forward(self, x, cache=None, pos=0):
        x = x + self.attention(self.ln_1(x), cache, pos)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class TorchGPT(nn.Module):
    """GPT-2 as in nanoGPT: learned positions, pre-LN blocks, final LayerNorm, head tied to wte."""

    def __init__(self, vocab_size: int, block_size: int, n_layer: int, n_head: int, n_embd: int):
        super().__init__()
        self.block_size = block_size
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)
        self.h = nn.ModuleList(Block(n_embd, n_head) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd, eps=1e-5)
        proj_std = 0.02 / math.sqrt(2 * n_layer)
        for name, p in self.named_parameters():
            if p.dim() == 2:
                nn.init.normal_(p, 0.0, proj_std if name.endswith(("c_proj.weight", "mlp_proj.weight")) else 0.02)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, idx, caches=None, pos=0, last_only=False):
        """Logits (B, T, V) for idx (B, T) at positions pos..; last_only keeps the last position (nanoGPT)."""
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(pos, pos + T, dtype=torch.long))
        for i, block in enumerate(self.h):
            x = block(x, None if caches is None else caches[i], pos)
        x = self.ln_f(x)
        if last_only:
            x = x[:, -1:, :]
        return F.linear(x, self.wte.weight)  # tied head

    def load_tinylm(self, params: dict) -> None:
        """Copy weights from tinylm's Hugging Face-named arrays (weights are (in, out) there)."""
        sd = {
            "wte.weight": params["transformer.wte.weight"],
            "wpe.weight": params["transformer.wpe.weight"],
            "ln_f.weight": params["transformer.ln_f.weight"],
            "ln_f.bias": params["transformer.ln_f.bias"],
        }
        names = {
            "ln_1": "ln_1",
            "c_attn": "attn.c_attn",
            "c_proj": "attn.c_proj",
            "ln_2": "ln_2",
            "c_fc": "mlp.c_fc",
            "mlp_proj": "mlp.c_proj",
        }
        for i in range(len(self.h)):
            for ours, theirs in names.items():
                w = params[f"transformer.h.{i}.{theirs}.weight"]
                sd[f"h.{i}.{ours}.weight"] = w if w.ndim == 1 else w.T
                sd[f"h.{i}.{ours}.bias"] = params[f"transformer.h.{i}.{theirs}.bias"]
        self.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in sd.items()})


def make_optimizer(model: TorchGPT, lr: float, weight_decay: float, betas, eps: float):
    """AdamW as tinylm's: decay on 2-D weights only, the unfused (foreach) implementation."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas), eps=eps, fused=False)


def train_step(model, opt, x, y, lr: float, grad_clip: float) -> float:
    """One optimizer step, nanoGPT's loop: forward, loss, backward, clip, AdamW."""
    logits = model(x)
    loss = F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    for group in opt.param_groups:
        group["lr"] = lr
    opt.step()
    return loss.item()


def _sample(logits, temperature: float, top_k: int, gen: torch.Generator) -> int:
    logits = logits[0, -1] / temperature
    if top_k and top_k < logits.numel():
        kth = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < kth, -math.inf)
    return int(torch.multinomial(F.softmax(logits, dim=-1), 1, generator=gen))


@torch.no_grad()
def generate(model: TorchGPT, first: int, n_tokens: int, kv_cache: bool, temperature=0.8, top_k=200, seed=0):
    """n_tokens sampled tokens after `first`. Without a cache, every token re-reads the last
    block_size tokens (nanoGPT's sample.py); with one, a full cache keeps the newest 3/4 and is
    refilled, as tinylm's generate does. Runs where the model's weights are."""
    dev = model.wte.weight.device
    gen = torch.Generator(device=dev).manual_seed(seed)
    T, context, out = model.block_size, [first], []

    def tensor(rows):
        return torch.tensor(rows, device=dev)

    if kv_cache:
        C, NH = model.wte.embedding_dim, model.h[0].n_head
        caches = [
            (torch.zeros(1, NH, T, C // NH, device=dev), torch.zeros(1, NH, T, C // NH, device=dev)) for _ in model.h
        ]
        logits = model(tensor([context]), caches, 0, last_only=True)
        length = 1
    while len(out) < n_tokens:
        if not kv_cache:
            logits = model(tensor([context[-T:]]), last_only=True)
        token = _sample(logits, temperature, top_k, gen)
        out.append(token)
        context.append(token)
        if kv_cache:
            if length < T:
                logits = model(tensor([[token]]), caches, length, last_only=True)
                length += 1
            else:
                context = context[-(T - max(1, T // 4)) :]
                logits = model(tensor([context]), caches, 0, last_only=True)
                length = len(context)
    return out


def _batch(train_ids: np.ndarray, rng: np.random.Generator, B: int, T: int):
    """Random windows, drawn like tinylm's Trainer."""
    starts = rng.integers(0, len(train_ids) - T, size=B)
    x = np.stack([train_ids[i : i + T] for i in starts])
    y = np.stack([train_ids[i + 1 : i + 1 + T] for i in starts])
    return torch.from_numpy(x).to(_DEVICE), torch.from_numpy(y).to(_DEVICE)


_DEVICE = "cpu"  # where batches go: run() sets the spec's device


def run(spec: dict) -> dict:
    """Everything one benchmark child measures for torch; spec is written by tinylm.core.bench.worker."""
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(spec["seed"])
    m, t = spec["model"], spec["train"]
    train_ids = np.load(spec["ids_path"])
    dev = torch.device(spec.get("device", "cpu"))
    global _DEVICE
    _DEVICE = dev
    if dev.type == "cuda":  # float32 as tinylm computes it: no TF32 shortcuts in the products
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    model = TorchGPT(m["vocab_size"], m["block_size"], m["n_layer"], m["n_head"], m["n_embd"]).to(dev)
    opt = make_optimizer(model, t["learning_rate"], t["weight_decay"], (t["beta1"], t["beta2"]), t["eps"])
    rng = np.random.default_rng(spec["seed"])
    B, T, lrs = t["batch_size"], m["block_size"], spec["lrs"]
    result = {"engine": "torch", "torch_version": torch.__version__, "threads": torch.get_num_threads()}
    if dev.type == "cuda":
        result["gpu"] = torch.cuda.get_device_name(dev)
    if spec["mode"] == "startup":
        built = time.time()
        train_step(model, opt, *_batch(train_ids, rng, B, T), lrs[0], t["grad_clip"])
        return {**result, "imported_at": IMPORTED_AT, "built_at": built, "finished_at": time.time()}
    if spec["mode"] == "profile":
        return {**result, **profile(model, opt, train_ids, rng, spec)}
    times, losses, step = [], [], 0
    budget_end = None
    while True:
        x, y = _batch(train_ids, rng, B, T)
        started = time.perf_counter()
        losses.append(train_step(model, opt, x, y, lrs[step % len(lrs)], t["grad_clip"]))
        elapsed = time.perf_counter() - started
        step += 1
        if step <= spec["warmup"]:
            continue
        times.append(elapsed)
        budget_end = budget_end or time.perf_counter() + spec["min_time"]
        if len(times) >= spec["max_steps"] or (len(times) >= spec["min_steps"] and time.perf_counter() > budget_end):
            break
    result.update(step_s=times, losses=losses[:3], peak_rss_kb=peak_rss_kb())
    if spec["gen_tokens"]:
        model.eval()
        for kv in (False, True):
            generate(model, 0, min(50, spec["gen_tokens"]), kv)  # warm-up
            started = time.perf_counter()
            generate(model, 0, spec["gen_tokens"], kv, seed=spec["seed"])
            result["gen_kv_s" if kv else "gen_nocache_s"] = time.perf_counter() - started
    return result


def profile(model, opt, train_ids, rng, spec: dict, top: int = 15) -> dict:
    """Self CPU time per PyTorch operator over `steps` training steps (after warm-up)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    t, T = spec["train"], spec["model"]["block_size"]
    batches = [_batch(train_ids, rng, t["batch_size"], T) for _ in range(spec["warmup"] + spec["steps"])]
    for x, y in batches[: spec["warmup"]]:
        train_step(model, opt, x, y, spec["lrs"][0], t["grad_clip"])
    started = time.perf_counter()
    for x, y in batches[spec["warmup"] :]:
        train_step(model, opt, x, y, spec["lrs"][0], t["grad_clip"])
    plain_ms = 1e3 * (time.perf_counter() - started) / spec["steps"]
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for x, y in batches[spec["warmup"] :]:
            train_step(model, opt, x, y, spec["lrs"][0], t["grad_clip"])
    n = spec["steps"]
    events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    rows = [{"op": e.key, "ms": e.self_cpu_time_total / 1e3 / n, "calls": e.count // n} for e in events[:top]]
    return {"step_ms_plain": plain_ms, "rows": rows}


def _median_of_runs(fn, reps: int):
    """fn() once to warm up, then reps timed calls: (median seconds, the last result)."""
    out = fn()
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2], out


@torch.no_grad()
def run_transformers_gpt2(spec: dict) -> dict:
    """transformers' GPT2LMHeadModel on the checkpoint tinylm wrote: what the tinylm child measures
    (opening it, a forward pass over the same prompt, greedy generate with its cache)."""
    import transformers

    torch.set_num_threads(spec["threads"])
    before = peak_rss_kb()
    started = time.perf_counter()
    model = transformers.GPT2LMHeadModel.from_pretrained(spec["path"]).eval()
    result = {
        "engine": "transformers",
        "version": transformers.__version__,
        "load_s": time.perf_counter() - started,
        "rss_before_kb": before,
        "rss_peak_kb": peak_rss_kb(),
    }
    vocab = model.config.vocab_size
    ids = torch.from_numpy(np.random.default_rng(spec["seed"]).integers(0, vocab, (1, spec["trace_tokens"])))
    result["forward_s"], _ = _median_of_runs(lambda: model(ids), spec["reps"])
    prompt, n = ids[:, : spec["prompt_tokens"]], spec["gen_tokens"]
    settings = dict(max_new_tokens=n, min_new_tokens=n, do_sample=False, use_cache=True, pad_token_id=0)
    greedy = lambda: model.generate(prompt, **settings)[0, prompt.shape[1] :].tolist()  # noqa: E731
    result["gen_s"], result["gen_ids"] = _median_of_runs(greedy, max(1, spec["reps"] // 2))
    result["rss_end_kb"] = peak_rss_kb()
    return result


def main(argv: list[str]) -> int:
    with open(argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    print(json.dumps(run_transformers_gpt2(spec) if spec["mode"] == "gpt2" else run(spec)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
