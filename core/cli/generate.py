"""`tinylm generate`: text from a checkpoint, token by token, with the sampling knobs."""

from __future__ import annotations

import argparse
import codecs
import sys

from .common import (
    add_checkpoint_argument,
    add_device_argument,
    check_prompt,
    default_prompt_ids,
    load_checkpoint,
    non_negative_int,
    note,
)

GENERATE_EXAMPLES = """
examples:
  tinylm generate runs/fables-char --prompt "The Fox" --tokens 300
  tinylm generate runs/fables-char --temperature 0.8 --top-k 20 --seed 1
  tinylm generate runs/fables-char --prompt "Once" --greedy
"""


def add_generate_parser(sub) -> None:
    p = sub.add_parser(
        "generate",
        help="write text with a trained model, token by token",
        description="Stream text from a checkpoint, token by token, after an optional prompt.",
        epilog=GENERATE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_checkpoint_argument(p)
    p.add_argument("--prompt", help="text to continue (default: a newline); longer than the context keeps its end")
    p.add_argument("--tokens", type=non_negative_int, default=200, metavar="N", help="tokens to generate (default 200)")
    p.add_argument("--temperature", type=float, default=1.0, help="below 1 sharper, above 1 flatter (default 1.0)")
    p.add_argument(
        "--top-k", type=non_negative_int, default=0, metavar="K", help="sample among the K likeliest (default 0: all)"
    )
    p.add_argument(
        "--top-p",
        type=float,
        default=1.0,
        metavar="P",
        help="sample among the smallest set whose probability reaches P (default 1: all)",
    )
    p.add_argument("--greedy", action="store_true", help="always take the likeliest token")
    p.add_argument("--seed", type=int, help="seed the sampler for reproducible text (default: fresh)")
    p.add_argument(
        "--ignore-eos",
        action="store_true",
        help="keep sampling past the model's end-of-text token (default: stop there, as transformers does)",
    )
    add_device_argument(p)
    p.set_defaults(func=run_generate)


def run_generate(args) -> int:
    from ..sampling import Sampling

    sampling = Sampling(
        temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, greedy=args.greedy, seed=args.seed
    )
    if not args.greedy:
        sampling.validate()
    sampling.rng()  # checks the seed, which greedy decoding also takes
    model = load_checkpoint(args.checkpoint, device=args.device)
    if args.prompt is not None:
        check_prompt(model, args.prompt)
        prompt, shown = args.prompt, args.prompt
    else:
        prompt = default_prompt_ids(model)
        shown = model.tokenizer.decode(prompt)
    out = sys.stdout
    out.write(shown)
    out.flush()
    # BPE tokens are bytes that may split a character: decode them incrementally.
    utf8 = codecs.getincrementaldecoder("utf-8")("replace") if model.tokenizer.byte_level else None
    ended = None
    for n, step in enumerate(
        model.generate(prompt, sampling, max_new_tokens=args.tokens, stop_at_eos=not args.ignore_eos)
    ):
        if step.end:  # the end-of-text token itself is not text: it is said on stderr below
            ended = (n, step)
            break
        text = utf8.decode(model.tokenizer.token_bytes(step.id)) if utf8 else step.text
        out.write(text)
        out.flush()
    if utf8:
        out.write(utf8.decode(b"", final=True))
    out.write("\n")
    out.flush()
    if ended is not None:
        n, step = ended
        note(
            f"the model ended the text after {n} token{'s' * (n != 1)} with its end-of-text token "
            f"{model.tokenizer.token_text(step.id)!r} (id {step.id}); --ignore-eos keeps sampling past it"
        )
    return 0
