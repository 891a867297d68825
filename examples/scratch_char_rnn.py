"""Train the NumPy character RNN of ``rnnkit.scratch`` on a text and watch it learn to write.

A min-char-rnn style run: one-hot characters in, a recurrent layer, a softmax over the next
character, truncated backpropagation through time written by hand, gradient clipping and
Adagrad. Every ``--print-every`` steps it prints the loss (nats per character, smoothed) and a
sample drawn at ``--temperature``.

    PYTHONPATH=src python examples/scratch_char_rnn.py                 # bundled Shakespeare
    PYTHONPATH=src python examples/scratch_char_rnn.py my_text.txt --steps 20000 --cell lstm
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from importlib.resources import files
from pathlib import Path

import numpy as np

from rnnkit.scratch.char_rnn import (
    CharRNN,
    CharRNNConfig,
    CharRNNTrainer,
    Vocabulary,
    iterate_chunks,
)

# The bundled sample of rnnkit.data (whole plays); read directly so that only NumPy is imported.
SHAKESPEARE = files("rnnkit") / "data" / "samples" / "shakespeare" / "train.txt"

# Used when the Shakespeare sample is not installed.
BUILT_IN_TEXT = """\
the river ran under the old stone bridge and the miller sat beside it every morning.
he counted the boats that passed, he counted the birds that rested on the rail,
and he counted the hours until the bell in the village rang for noon.
when the bell rang he walked home along the river, and the river ran on without him.
the next morning the miller sat beside the bridge again, and counted the boats again.
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "text_file", nargs="?", type=Path, help="UTF-8 text (default: bundled Shakespeare)"
    )
    parser.add_argument("--steps", type=int, default=5000, help="training steps (chunks)")
    parser.add_argument("--hidden-size", type=int, default=100)
    parser.add_argument("--seq-length", type=int, default=25, help="BPTT length in characters")
    parser.add_argument("--lr", type=float, default=0.1, help="learning rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cell", choices=("rnn", "lstm", "gru"), default="rnn")
    parser.add_argument("--optimizer", choices=("adagrad", "adam"), default="adagrad")
    parser.add_argument("--max-grad-norm", type=float, default=5.0)
    parser.add_argument("--print-every", type=int, default=500)
    parser.add_argument("--sample-length", type=int, default=200)
    parser.add_argument("--temperature", type=float, default=0.8)
    args = parser.parse_args(argv)
    for name in ("steps", "hidden_size", "seq_length", "print_every", "sample_length"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    return args


def read_text(path: Path | None) -> tuple[str, str]:
    """The training text and where it came from."""
    if path is None:
        if SHAKESPEARE.is_file():
            return SHAKESPEARE.read_text(encoding="utf-8"), "the bundled Shakespeare sample"
        return BUILT_IN_TEXT, "the built-in paragraph"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SystemExit(f"error: cannot read {path}: {error}") from None
    if len(text) < 2:
        raise SystemExit(f"error: {path} must hold at least 2 characters, got {len(text)}")
    return text, str(path)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    text, source = read_text(args.text_file)
    vocabulary = Vocabulary.from_text(text)
    config = CharRNNConfig(
        hidden_size=args.hidden_size,
        cell=args.cell,
        optimizer=args.optimizer,
        learning_rate=args.lr,
        max_grad_norm=args.max_grad_norm,
        seed=args.seed,
    )
    model = CharRNN(len(vocabulary), config)
    trainer = CharRNNTrainer(model)
    sample_rng = np.random.default_rng(args.seed + 1)
    print(f"{source}: {len(text)} characters, {len(vocabulary)} distinct; {config}")

    # Start from the loss of a uniform guess, ln(V), and smooth as min-char-rnn does.
    smooth_loss = math.log(len(vocabulary))
    chunks = iterate_chunks(vocabulary.encode(text), args.seq_length)
    state = None
    started = time.perf_counter()
    for step in range(1, args.steps + 1):
        inputs, targets, restart = next(chunks)
        if restart:
            state = None
        loss, grad_norm, state = trainer.step(inputs, targets, state)
        smooth_loss = 0.99 * smooth_loss + 0.01 * loss
        if step % args.print_every == 0 or step == args.steps:
            elapsed = time.perf_counter() - started
            print(
                f"step {step:>6} | loss {smooth_loss:.3f} nats/char | "
                f"grad norm {grad_norm:.2f} | {elapsed:.1f} s"
            )
            ids = model.sample(int(inputs[0]), args.sample_length, sample_rng, args.temperature)
            print("----\n" + vocabulary.decode(ids) + "\n----")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
