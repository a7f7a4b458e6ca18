"""The CUDA backend end to end, under numba's simulator (and on a real GPU when there is one): the
model, trainer, generation, trace and checkpoints on device arrays against the same run on the CPU
kernels; on a GPU also the gradients against float64 finite differences.

The simulator must be switched on before numba is first imported, so the runs happen in a child
process (this file run as a script prints one JSON object) and the tests assert on its report.
Under the simulator the buffers are SimDeviceArray (kernels/cuda/_runtime.py), which refuses
numpy on the device as a real GPU array does: host code that would only work on the CPU fails here.
The model is small because the simulator runs every GPU thread as Python (about a millisecond each).
"""

import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest

TEXT = "a bad cab, a dab. " * 12  # 7 distinct characters
MODEL = dict(n_layer=2, n_head=2, n_embd=8, block_size=8, dropout=0.1)
# AdamW's eps at 1e-6: the attention key bias's true gradient is 0 (softmax ignores a constant shift
# of a query's scores), so both runs hold only rounding noise there (~1e-10), and with eps 1e-8 Adam
# scales that noise up to a sizeable share of the learning rate, differently on each device. Every
# other gradient is orders of magnitude above either eps.
TRAIN = dict(batch_size=2, max_steps=3, seed=5, eval_interval=3, eval_batches=1, warmup_steps=1, eps=1e-6)
# float32: differences up to TOL times a tensor's largest magnitude, or TOL itself below magnitude 1
# (small tensors such as that key bias are compared absolutely, as weights of the model's scale).
TOL = 1e-5


def _max_rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return float("inf")
    same_inf = np.isinf(a) & (a == b)  # masked scores: -inf on both
    a, b = np.where(same_inf, 0, a), np.where(same_inf, 0, b)
    scale = max(float(np.abs(a).max(initial=0.0)), 1.0)
    return float(np.abs(a - b).max(initial=0.0)) / scale


def _trainer(device, *, steps=None):
    from tinylm.core import Corpus, ModelConfig, TrainConfig, get_kernels, make_trainer

    train = dict(TRAIN, max_steps=steps or TRAIN["max_steps"])
    trainer = make_trainer(
        Corpus.from_text(TEXT),
        "char",
        model_config=ModelConfig(**MODEL),
        train_config=TrainConfig(**train),
        kernels=get_kernels(device),
    )
    # No history snapshots: each is a trace and a 24-token sample, minutes in the simulator; both are
    # compared below on their own.
    trainer.recorder = None
    return trainer


def _metrics(m) -> list:
    return [m.train_loss, m.val_loss, m.accuracy, m.grad_norm]


def _state(trainer) -> dict:
    """Weights and AdamW moments on the host."""
    K = trainer.kernels
    return {"w": trainer.model.host_params(), "m": K.to_host(trainer.m), "v": K.to_host(trainer.v)}


def _compare_states(a, b) -> float:
    worst = max(_max_rel(a["w"][n], b["w"][n]) for n in a["w"])
    return max(worst, _max_rel(a["m"], b["m"]), _max_rel(a["v"], b["v"]))


def _finite_differences(report) -> None:
    """float64 gradients on the GPU against central differences of the loss, for a few weights."""
    from tinylm.core import GPT, ModelConfig, get_kernels

    model = GPT(ModelConfig(n_layer=1, n_head=2, n_embd=8, block_size=8, vocab_size=11), seed=2, dtype=np.float64)
    model = model.on(get_kernels("cuda"))
    ids, targets = np.array([[1, 4, 2, 9, 0, 3]]), np.array([[4, 2, 9, 0, 3, 7]])
    _, grads = model.loss_and_grads(ids, targets)
    K, h, worst = model.kernels, 1e-5, 0.0
    host = K.to_host(model.flat).copy()
    for name, index in [("transformer.wte.weight", (4, 3)), ("transformer.h.0.attn.c_attn.weight", (2, 17)),
                        ("transformer.h.0.mlp.c_fc.bias", (5,)), ("transformer.ln_f.weight", (1,))]:  # fmt: skip
        i = model.layout.offsets[name] + int(np.ravel_multi_index(index, model.layout.shapes[name]))
        losses = []
        for step in (h, -h):
            moved = host.copy()
            moved[i] += step
            K.copy_in(model.flat, moved)
            losses.append(model.forward(ids, targets))
        K.copy_in(model.flat, host)
        fd = (losses[0] - losses[1]) / (2 * h)
        worst = max(worst, abs(fd - grads[name][index]) / max(abs(fd), 1e-6))
    report["finite_difference_rel"] = worst


def child() -> dict:
    """Run everything on both backends; return the differences found."""
    from safetensors.numpy import load_file

    from tinylm.core import Corpus, Sampling, Trainer, get_kernels

    report = {}
    tmp = tempfile.mkdtemp()
    runs = {}
    for device in ("cpu", "cuda"):
        trainer = _trainer(device)
        assert trainer.model.device == device
        metrics = [trainer.step() for _ in range(2)]
        trainer.save(os.path.join(tmp, device))
        metrics.append(trainer.step())
        runs[device] = (trainer, metrics)
    (cpu, cpu_m), (gpu, gpu_m) = runs["cpu"], runs["cuda"]
    report["device_types"] = [type(gpu.model.flat).__name__, type(gpu.m).__name__]
    report["losses"] = [[_metrics(m) for m in cpu_m], [_metrics(m) for m in gpu_m]]
    report["state_diff"] = _compare_states(_state(cpu), _state(gpu))

    # the checkpoints are the same files, whichever device wrote them
    files = {}
    for name in ("model.safetensors", "optimizer.safetensors"):
        a, b = (load_file(os.path.join(tmp, d, name)) for d in ("cpu", "cuda"))
        files[name] = [sorted(a) == sorted(b), max(_max_rel(a[k], b[k]) for k in a)]
    report["files"] = files

    # a run resumes on the other device, exactly where it stopped
    resumed = {}
    for saved, device in (("cpu", "cuda"), ("cuda", "cpu")):
        trainer = Trainer.resume(os.path.join(tmp, saved), Corpus.from_text(TEXT), kernels=get_kernels(device))
        trainer.recorder = None
        m = trainer.step()
        twin, twin_m = runs[saved]
        resumed[f"{saved}->{device}"] = {
            "device": trainer.model.device,
            "loss_diff": max(abs(x - y) for x, y in zip(_metrics(m), _metrics(twin_m[-1]))),
            "state_diff": _compare_states(_state(trainer), _state(twin)),
        }
    report["resumed"] = resumed

    # greedy generation: the same tokens and near-identical probabilities (prefill and KV-cache steps)
    gens = [list(t.model.generate("a ba", Sampling(greedy=True), 5)) for t in (cpu, gpu)]
    report["generated"] = [[s.id for s in g] for g in gens]
    report["gen_probs_diff"] = max(_max_rel(a.raw_probs, b.raw_probs) for a, b in zip(*gens))

    # the trace: every stage the same numbers
    ta, tb = cpu.model.trace("a bad c"), gpu.model.trace("a bad c")
    report["trace_names_equal"] = ta.names == tb.names
    report["trace_diff"] = {n: _max_rel(ta[n], tb[n]) for n in ta.names}
    report["logits_diff"] = _max_rel(cpu.model.logits([[1, 2, 3]]), gpu.model.logits([[1, 2, 3]]))
    # rows of a weight read back for a screen (a history snapshot's embeddings): a few rows one by one,
    # many through the whole table
    name, vocab = "transformer.wte.weight", cpu.model.config.vocab_size
    report["rows_diff"] = max(
        _max_rel(cpu.model.weight_rows(name, rows), gpu.model.weight_rows(name, rows))
        for rows in ([1], [3, 0, 3], list(range(vocab)))
    )
    from tinylm.kernels.backend import cuda_simulated

    if not cuda_simulated():  # minutes in the simulator
        _finite_differences(report)
    return report


def _real_gpu() -> bool:
    from numba import config, cuda

    return not config.ENABLE_CUDASIM and cuda.is_available()


@pytest.fixture(scope="module", params=["sim", "gpu"])
def report(request):
    """The child's report under the simulator, and on a real GPU (skipped without one)."""
    if request.param == "gpu" and not _real_gpu():
        pytest.skip("no CUDA GPU (numba.cuda.is_available() is False)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_ENABLE_CUDASIM", "TINYLM_CUDA_"))}
    if request.param == "sim":
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    res = subprocess.run([sys.executable, __file__], env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, f"child failed:\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}"
    return dict(json.loads(res.stdout.strip().splitlines()[-1]), mode=request.param)


pytestmark = pytest.mark.slow  # the CUDA simulator: about two minutes on 2 cores


def test_the_cuda_run_holds_device_arrays(report):
    kind = "SimDeviceArray" if report["mode"] == "sim" else "DeviceNDArray"
    assert report["device_types"] == [kind, kind]


def test_gradients_on_a_gpu_match_finite_differences(report):
    if report["mode"] == "sim":
        pytest.skip("run on a real GPU only (minutes in the simulator)")
    assert report["finite_difference_rel"] <= 1e-5


def test_training_on_cuda_matches_the_cpu(report):
    cpu, gpu = report["losses"]
    for a, b in zip(cpu, gpu):  # train loss, val loss, accuracy, grad norm per step
        for x, y in zip(a, b):
            assert (x is None) == (y is None)
            if x is not None:
                assert abs(x - y) <= TOL * max(1.0, abs(x)), (a, b)
    assert report["state_diff"] <= TOL


def test_checkpoints_are_the_same_files_on_both_devices(report):
    for name, (same_names, diff) in report["files"].items():
        assert same_names, name
        assert diff <= TOL, (name, diff)


def test_a_run_resumes_on_the_other_device(report):
    for way, r in report["resumed"].items():
        assert r["device"] == way.split("->")[1]
        assert r["loss_diff"] <= TOL and r["state_diff"] <= TOL, (way, r)


def test_greedy_generation_gives_the_same_tokens(report):
    cpu, gpu = report["generated"]
    assert cpu == gpu and len(cpu) == 5
    assert report["gen_probs_diff"] <= TOL


def test_the_trace_gives_the_same_numbers(report):
    assert report["trace_names_equal"]
    bad = {n: d for n, d in report["trace_diff"].items() if not d <= TOL}
    assert not bad, bad
    assert report["logits_diff"] <= TOL
    assert report["rows_diff"] <= TOL


if __name__ == "__main__":
    sys.setswitchinterval(1e-4)  # the simulator's threads poll: a short switch interval speeds it up
    np.seterr(over="ignore")
    print(json.dumps(child()))
