"""Opening Hugging Face GPT-2 directories: genuine files from transformers, both naming schemes, mask
buffers, explicit lm_head, other dtypes, sharded weights, every config key honoured or refused."""

import contextlib
import io
import json
import shutil
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from tinylm.core import CheckpointError, load, reference
from tinylm.core.cli.main import main

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

TOY = dict(n_layer=2, n_head=2, n_embd=16, n_positions=32, vocab_size=97)


def hf_dir(path, *, base=False, seed=0, **overrides):
    """A directory saved by transformers itself (GPT2LMHeadModel, or GPT2Model's unprefixed names), random
    weights with non-trivial LayerNorms and biases so every parameter matters."""
    torch.manual_seed(seed)
    cfg = transformers.GPT2Config(**{**TOY, **overrides})
    model = (transformers.GPT2Model if base else transformers.GPT2LMHeadModel)(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "ln" in name or name.endswith("bias"):
                p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(str(path))
    return path


def hf_logits(path, ids):
    model = transformers.GPT2LMHeadModel.from_pretrained(str(path))
    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(ids)).logits.numpy()


def ids_for(vocab=TOY["vocab_size"], shape=(2, 20), seed=1):
    return np.random.default_rng(seed).integers(0, vocab, shape)


def edit_config(path, **changes):
    cfg = json.loads((path / "config.json").read_text())
    cfg.update(changes)
    (path / "config.json").write_text(json.dumps(cfg))


def edit_tensors(path, fn):
    tensors = load_file(str(path / "model.safetensors"))
    fn(tensors)
    save_file(tensors, str(path / "model.safetensors"), metadata={"format": "pt"})


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        dict(layer_norm_epsilon=1e-2),
        dict(activation_function="gelu_pytorch_tanh", n_inner=64),
        dict(reorder_and_upcast_attn=True),
        dict(n_layer=3, n_head=4, n_embd=32, n_positions=16),
    ],
    ids=["defaults", "eps", "tanh-gelu-n_inner", "upcast", "wider"],
)
def test_genuine_hf_directory_gives_transformers_logits(tmp_path, overrides):
    path = hf_dir(tmp_path / "m", **overrides)
    model = load(path)
    assert model.tokenizer is None
    T = min(20, model.config.block_size)
    ids = ids_for(shape=(2, T))
    assert np.abs(model.logits(ids) - hf_logits(path, ids)).max() < 1e-4
    assert model.config.layer_norm_epsilon == overrides.get("layer_norm_epsilon", 1e-5)


def test_layer_norm_epsilon_reaches_trace_kv_cache_and_reference(tmp_path):
    path = hf_dir(tmp_path / "m", layer_norm_epsilon=0.5)  # large, so a wrong epsilon shows
    model = load(path)
    ids = ids_for(shape=(1, 12))[0]
    full = model.logits(ids[None])[0]
    views = {n: v for n, v in model.params.items()}
    ref = reference.logits(views, ids[None], 2, model.wpe, eps=0.5)[0]
    assert np.abs(full - ref).max() < 1e-4
    trace = model.trace(ids)
    assert np.abs(trace["logits"] - full).max() == 0
    assert trace.layer_norm_epsilon == 0.5  # what the Inspect screen explains a LayerNorm with
    from tinylm.core.generate import KVCache

    cache = KVCache(model)
    cache.prefill(ids[:6])
    for i in range(6, 12):
        step = cache.step(int(ids[i]))
        if i + 1 < 12:
            assert np.abs(step - full[i]).max() < 1e-4


def test_unprefixed_names_buffers_and_equal_lm_head_are_accepted(tmp_path):
    path = hf_dir(tmp_path / "m", base=True)
    assert "h.0.ln_1.weight" in load_file(str(path / "model.safetensors"))

    def add_extras(t):
        mask = np.tril(np.ones((32, 32), np.float32))[None, None]
        for i in range(2):
            t[f"h.{i}.attn.bias"] = mask
            t[f"h.{i}.attn.masked_bias"] = np.array(-1e4, np.float32)
        t["lm_head.weight"] = t["wte.weight"].copy()

    edit_tensors(path, add_extras)
    edit_config(path, architectures=["GPT2LMHeadModel"])
    model = load(path)
    ids = ids_for()
    assert np.abs(model.logits(ids) - hf_logits(path, ids)).max() < 1e-4


def test_untied_lm_head_that_differs_is_refused(tmp_path):
    path = hf_dir(tmp_path / "m")

    def untie(t):
        t["lm_head.weight"] = t["transformer.wte.weight"] + 1.0

    edit_tensors(path, untie)
    with pytest.raises(CheckpointError, match="lm_head.weight differs from transformer.wte.weight"):
        load(path)


def test_untied_config_without_lm_head_is_refused(tmp_path):
    path = hf_dir(tmp_path / "m")
    edit_config(path, tie_word_embeddings=False)
    with pytest.raises(CheckpointError, match="tie_word_embeddings false but the weights have no lm_head"):
        load(path)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
def test_other_float_dtypes_are_converted(tmp_path, dtype):
    path = hf_dir(tmp_path / "m")
    hf = transformers.GPT2LMHeadModel.from_pretrained(str(path)).to(getattr(torch, dtype))
    hf.save_pretrained(str(tmp_path / dtype))
    model = load(tmp_path / dtype)
    for name, view in model.params.items():  # the oracle: torch's own conversion to float32
        expected = dict(hf.named_parameters())[name].detach().float().numpy()
        np.testing.assert_array_equal(view, expected)


def test_sharded_weights_open(tmp_path):
    path = hf_dir(tmp_path / "m")
    hf = transformers.GPT2LMHeadModel.from_pretrained(str(path))
    hf.save_pretrained(str(tmp_path / "sharded"), max_shard_size="20KB")
    assert (tmp_path / "sharded" / "model.safetensors.index.json").is_file()
    ids = ids_for()
    assert np.abs(load(tmp_path / "sharded").logits(ids) - hf_logits(path, ids)).max() < 1e-4


def test_loading_reads_weights_without_holding_a_second_copy(tmp_path):
    # large enough that the weights, not reading config.json (a 16 MiB read buffer), set the peak
    path = hf_dir(tmp_path / "m", n_layer=2, n_embd=128, n_head=4, vocab_size=50257, n_positions=128)
    weight_bytes = (path / "model.safetensors").stat().st_size
    tracemalloc.start()
    model = load(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert model.num_params * 4 <= weight_bytes
    # a second copy of any large tensor (wte alone is 26 MB) would show; chunked checks cost about 1 MB
    assert peak < weight_bytes + (2 << 20), f"peak {peak} for {weight_bytes} bytes of weights"


def test_pickle_only_directory_says_how_to_convert(tmp_path):
    path = hf_dir(tmp_path / "m")
    (path / "model.safetensors").rename(path / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="pytorch_model.bin, a pickle.*save_pretrained.*safe_serialization=True"):
        load(path)


@pytest.mark.parametrize(
    "changes, words",
    [
        (dict(model_type="llama"), "config.json describes a 'llama' model"),
        (dict(n_inner=40), "n_inner 40 is not 4 x n_embd"),
        (dict(activation_function="relu"), "activation_function 'relu' is not supported"),
        (dict(activation_function="gelu"), "activation_function 'gelu' is not supported"),
        (dict(scale_attn_by_inverse_layer_idx=True), "scale_attn_by_inverse_layer_idx is true"),
        (dict(scale_attn_weights=False), "scale_attn_weights is false"),
        (dict(add_cross_attention=True), "add_cross_attention is true"),
        (dict(n_ctx=16), "n_ctx 16 differs from n_positions 32"),
        (dict(layer_norm_epsilon=-1.0), "layer_norm_epsilon must be a small positive number"),
        (dict(eos_token_id="end"), "eos_token_id must be a token id"),
        (dict(n_embd=15), "n_embd 15 is not divisible by n_head 2"),
        (dict(n_layer=2.5), "n_layer must be a positive whole number"),
        (dict(n_positions=1e9), "needs .* GiB for its weights and .* GiB for the KV cache of one sequence, more than"),
        (dict(vocab_size=10**12), "needs .* GiB for its weights and .* for the KV cache of one sequence, more than"),
        (dict(n_layer=3), "missing tensor transformer.h.2.ln_1.weight"),
        (dict(n_positions=64), r"transformer.wpe.weight has shape \(32, 16\), expected \(64, 16\) from config.json"),
    ],
)
def test_config_keys_we_cannot_honour_are_refused_in_one_line(tmp_path, changes, words):
    path = hf_dir(tmp_path / "m")
    edit_config(path, **changes)
    with pytest.raises(CheckpointError, match=words) as err:
        load(path)
    message = str(err.value)
    assert "\n" not in message and ("config.json" in message or "model.safetensors" in message)


def test_unknown_and_duplicate_tensors_are_refused(tmp_path):
    path = hf_dir(tmp_path / "m")
    edit_tensors(path, lambda t: t.update({"score.weight": np.zeros((2, 16), np.float32)}))
    with pytest.raises(CheckpointError, match="score.weight is not part of a GPT-2 language model"):
        load(path)
    path = hf_dir(tmp_path / "d")
    edit_tensors(path, lambda t: t.update({"ln_f.bias": t["transformer.ln_f.bias"]}))
    with pytest.raises(CheckpointError, match="holds tensor transformer.ln_f.bias twice"):
        load(path)


def test_absurd_sizes_are_refused_before_allocating(tmp_path):
    path = hf_dir(tmp_path / "m")
    edit_config(path, n_positions=10**9)
    tracemalloc.start()
    with pytest.raises(CheckpointError):
        load(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 64 << 20  # the weights would need 57 GiB; reading config.json takes a 16 MiB buffer


# ----- with GPT-2's own tokenizer files, and through the command line ---------------------------------

ROOT = Path(__file__).resolve().parents[1]
GPT2_FILES = next(
    (p for p in (ROOT.parent / "shared/data/gpt2-tokenizer", Path("/work/shared/data/gpt2-tokenizer")) if p.is_dir()),
    None,
)
needs_gpt2_files = pytest.mark.skipif(GPT2_FILES is None, reason="GPT-2's tokenizer files are not here")


def with_gpt2_tokenizer(path):
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(GPT2_FILES / name, path / name)
    return path


def run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main([str(a) for a in argv])
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def gpt2_toy(tmp_path_factory):
    """GPT-2's vocabulary and tokenizer on a 2-layer, 32-wide model of random weights."""
    path = hf_dir(tmp_path_factory.mktemp("gpt2") / "toy", vocab_size=50257, n_embd=32, n_head=4, n_positions=64)
    return with_gpt2_tokenizer(path)


@needs_gpt2_files
def test_gpt2_tokenizer_and_logits_match_transformers(gpt2_toy):
    model = load(gpt2_toy)
    text = "Hello world! Ça va?  Tabs\tand 🙂 emoji, it's <|endoftext|> done."
    ref_ids = transformers.AutoTokenizer.from_pretrained(str(gpt2_toy))(text)["input_ids"]
    ids = model.tokenizer.encode(text)
    assert ids.tolist() == ref_ids
    assert np.abs(model.logits(ids[None]) - hf_logits(gpt2_toy, ids[None])).max() < 1e-4
    assert model.config.eos_token_id == 50256


@needs_gpt2_files
def test_cli_info_generate_and_inspect_open_a_gpt2_directory(gpt2_toy):
    status, out, err = run(["info", gpt2_toy])
    assert status == 0, err
    assert "2 layers" in out and "vocabulary 50,257" in out and "--init" in out
    status, out, err = run(["generate", gpt2_toy, "--prompt", "The cat", "--tokens", "5", "--greedy"])
    assert status == 0, err
    model = load(gpt2_toy)
    ids = model.tokenizer.encode("The cat")[None]
    hf = transformers.GPT2LMHeadModel.from_pretrained(str(gpt2_toy))
    ref = hf.generate(torch.from_numpy(ids), max_new_tokens=5, do_sample=False, eos_token_id=None, pad_token_id=0)
    assert out.startswith("The cat" + model.tokenizer.decode(ref[0, 2:].tolist()))
    status, out, err = run(["inspect", gpt2_toy, "--prompt", "The cat"])
    assert status == 0, err


def test_cli_without_tokenizer_info_works_and_generate_says_what_is_missing(tmp_path):
    path = hf_dir(tmp_path / "m")
    status, out, err = run(["info", path])
    assert status == 0, err
    assert "tokenizer" in out and "none" in out
    for command in (["generate", path, "--tokens", "3"], ["inspect", path, "--prompt", "hi"]):
        status, out, err = run(command)
        assert status == 2 and err.count("\n") == 1
        assert "has weights but no tokenizer (tokenizer.json, or vocab.json + merges.txt)" in err


@needs_gpt2_files
def test_tokenizer_of_another_size_is_refused(tmp_path):
    path = with_gpt2_tokenizer(hf_dir(tmp_path / "m"))
    status, out, err = run(["info", path])
    assert status == 2 and err.count("\n") == 1
    assert "vocab.json: tokenizer has 50257 tokens but the model has vocab_size 97" in err


@pytest.mark.parametrize(
    "text", ['{"model": {"type": "BPE", "vocab": ', '{"model": {"type": "WordPiece", "vocab": {"a": 0}}}']
)
def test_damaged_or_foreign_tokenizer_json_is_refused(tmp_path, text):
    path = hf_dir(tmp_path / "m")
    (path / "tokenizer.json").write_text(text)
    status, out, err = run(["info", path])
    assert status == 2 and err.count("\n") == 1
    assert err.startswith(f"tinylm: error: {path}/tokenizer.json")


@pytest.mark.parametrize(
    "damage, words",
    [
        (lambda p: edit_config(p, model_type="bert"), "config.json describes a 'bert' model"),
        (lambda p: edit_tensors(p, lambda t: t.pop("transformer.h.1.mlp.c_fc.bias")), "missing tensor"),
        (lambda p: edit_config(p, n_embd=32, n_head=2), "has shape"),
        (lambda p: edit_config(p, activation_function="swish"), "activation_function 'swish'"),
        (lambda p: (p / "model.safetensors").rename(p / "pytorch_model.bin"), "pytorch_model.bin, a pickle"),
    ],
    ids=["model-type", "missing-tensor", "shapes", "config-key", "pickle"],
)
def test_cli_bad_directories_exit_2_with_one_line(tmp_path, damage, words):
    path = hf_dir(tmp_path / "m")
    damage(path)
    status, out, err = run(["info", path])
    assert status == 2 and err.startswith("tinylm: error: ") and err.count("\n") == 1
    assert words in err


# ----- fine-tuning a GPT-2 directory -------------------------------------------------------------------


@pytest.mark.slow  # fine-tunes and resumes
@needs_gpt2_files
def test_train_init_fine_tunes_with_the_models_tokenizer_and_resumes(gpt2_toy, tmp_path):
    out = tmp_path / "tuned"
    argv = ["train", "--init", gpt2_toy, "--corpus", "fables", "--steps", "3", "--context", "16"]
    status, stdout, err = run([*argv, "--batch-size", "2", "--eval-batches", "1", "--out", out, "--quiet"])
    assert status == 0, err
    before, after = load(gpt2_toy), load(out)
    assert after.config.block_size == 64 and after.config.vocab_size == 50257  # the model's shape is kept
    assert after.tokenizer.encode("The fox.").tolist() == before.tokenizer.encode("The fox.").tolist()
    assert not np.array_equal(after.flat, before.flat)
    saved = json.loads((out / "config.json").read_text())["tinylm"]["train"]
    assert saved["context"] == 16 and saved["learning_rate"] == 1e-4
    status, stdout, err = run(["train", "--resume", out, "--steps", "4", "--quiet"])
    assert status == 0, err
    assert json.loads((out / "config.json").read_text())["tinylm"]["step"] == 4


@needs_gpt2_files
def test_fine_tuning_resumes_exactly(gpt2_toy, tmp_path):
    from tinylm.core import TrainConfig, Trainer, finetune_trainer, load_corpus

    corpus = load_corpus("fables")
    tc = dict(batch_size=2, max_steps=4, context=16, eval_interval=2, eval_batches=1, learning_rate=1e-3)
    straight = finetune_trainer(gpt2_toy, corpus, TrainConfig(**tc))
    for _ in range(4):
        straight.step()
    first = finetune_trainer(gpt2_toy, corpus, TrainConfig(**tc))
    first.step(), first.step()
    first.save(tmp_path / "half")
    resumed = Trainer.resume(tmp_path / "half", corpus)
    resumed.step(), resumed.step()
    np.testing.assert_array_equal(resumed.model.flat, straight.model.flat)


@pytest.mark.parametrize(
    "flags, words",
    [
        (["--layers", "3"], "--layers cannot be set with --init"),
        (["--tokenizer", "char"], "--tokenizer cannot be set with --init"),
        (["--resume", "x"], "--init and --resume cannot be combined"),
        (["--context", "65"], "context 65 is longer than the 64 positions"),
    ],
)
@needs_gpt2_files
def test_train_init_refuses_conflicting_flags(gpt2_toy, tmp_path, flags, words):
    status, out, err = run(["train", "--init", gpt2_toy, "--corpus", "fables", "--out", tmp_path / "o", *flags])
    assert status == 2 and err.count("\n") == 1 and words in err
    assert not (tmp_path / "o").exists()


def test_train_init_without_tokenizer_says_so(tmp_path):
    path = hf_dir(tmp_path / "m")
    status, out, err = run(["train", "--init", path, "--corpus", "fables", "--out", tmp_path / "o"])
    assert status == 2 and "has no tokenizer" in err and "fine-tuning" in err


@pytest.mark.slow  # fine-tunes and resumes
@needs_gpt2_files
def test_ctrl_c_while_fine_tuning_saves_a_run_that_resumes(gpt2_toy, tmp_path, monkeypatch):
    from tinylm.core import Trainer

    step = Trainer.step

    def interrupted_at_2(self):
        if self.step_count == 2:
            raise KeyboardInterrupt
        return step(self)

    monkeypatch.setattr(Trainer, "step", interrupted_at_2)
    out = tmp_path / "tuned"
    argv = ["train", "--init", gpt2_toy, "--corpus", "fables", "--steps", "4", "--context", "16"]
    status, _, err = run([*argv, "--batch-size", "2", "--eval-batches", "1", "--out", out, "--quiet"])
    assert status == 130 and "Traceback" not in err
    assert f"interrupted at step 2/4; saved to {out}; resume with: tinylm train --resume {out}" in err
    monkeypatch.setattr(Trainer, "step", step)
    status, _, err = run(["train", "--resume", out, "--quiet"])
    assert status == 0, err
    resumed = Trainer.resume(out)
    assert resumed.step_count == 4 and resumed.model.tokenizer.kind == "gpt2" and resumed.config.context == 16


# ----- the end-of-text token (config eos_token_id) ends generation, as in transformers -----------------


def first_new_token(ids: list[int], start: int) -> int:
    """Index of the first token from `start` on that did not appear before it (an eos there ends the text there)."""
    return next(i for i in range(start, len(ids)) if ids[i] not in ids[:i])


def set_eos(path, token: int | None) -> None:
    """Name `token` as the end-of-text token, in config.json and in transformers' generation_config.json."""
    edit_config(path, eos_token_id=token)
    gen = path / "generation_config.json"
    if gen.exists():
        gen.write_text(json.dumps({**json.loads(gen.read_text()), "eos_token_id": token}))


VARIED = dict(initializer_range=0.5)  # large enough random weights that greedy text does not repeat one token


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_greedy_generation_stops_at_eos_as_transformers_does(tmp_path, seed):
    from tinylm.core import Sampling

    path = hf_dir(tmp_path / "m", seed=seed, **VARIED)
    prompt = ids_for(shape=(6,), seed=seed)
    free = [s.id for s in load(path).generate(prompt, Sampling(greedy=True), 24, stop_at_eos=False)]
    stop = first_new_token(free, 2)
    set_eos(path, free[stop])  # an eos the model draws mid-text
    model = load(path)
    steps = list(model.generate(prompt, Sampling(greedy=True), 24))
    hf = transformers.GPT2LMHeadModel.from_pretrained(str(path))
    ref = hf.generate(torch.from_numpy(prompt[None]), max_new_tokens=24, do_sample=False, pad_token_id=0)
    assert [s.id for s in steps] == ref[0, len(prompt) :].tolist() == free[: stop + 1]
    assert [s.end for s in steps] == [False] * stop + [True]
    assert [s.id for s in model.generate(prompt, Sampling(greedy=True), 24, stop_at_eos=False)] == free


def test_sampled_generation_stops_at_the_first_eos_drawn_and_not_before(tmp_path):
    from tinylm.core import Sampling

    path = hf_dir(tmp_path / "m", **VARIED)
    prompt = ids_for(shape=(4,))
    sampling = lambda: Sampling(temperature=1.5, seed=7)  # noqa: E731
    free = [s.id for s in load(path).generate(prompt, sampling(), 40, stop_at_eos=False)]
    stop = first_new_token(free, 5)
    set_eos(path, free[stop])
    steps = list(load(path).generate(prompt, sampling(), 40))
    assert [s.id for s in steps] == free[: stop + 1] and steps[-1].end and not any(s.end for s in steps[:-1])
    set_eos(path, None)  # no end-of-text token: nothing stops the text
    assert len(list(load(path).generate(prompt, sampling(), 40))) == 40


@needs_gpt2_files
def test_cli_generate_stops_at_eos_says_so_and_ignore_eos_goes_on(tmp_path):
    path = with_gpt2_tokenizer(hf_dir(tmp_path / "toy", vocab_size=50257, n_embd=32, n_head=4, **VARIED))
    model = load(path)
    prompt = "The cat"
    ids = model.tokenizer.encode(prompt)
    hf = transformers.GPT2LMHeadModel.from_pretrained(str(path))
    free = hf.generate(torch.from_numpy(ids[None]), max_new_tokens=12, do_sample=False, eos_token_id=None)
    free = free[0, len(ids) :].tolist()
    stop = first_new_token(free, 3)
    set_eos(path, free[stop])
    status, out, err = run(["generate", path, "--prompt", prompt, "--tokens", "12", "--greedy"])
    assert status == 0, err
    assert out == prompt + model.tokenizer.decode(free[:stop]) + "\n"  # nothing of the eos token itself
    assert err.count("\n") == 1 and f"after {stop} tokens" in err and f"id {free[stop]}" in err
    assert "--ignore-eos" in err
    status, out, err = run(["generate", path, "--prompt", prompt, "--tokens", "12", "--greedy", "--ignore-eos"])
    assert status == 0 and err == ""
    assert out == prompt + model.tokenizer.decode(free) + "\n"
