"""rnnkit: recurrent neural networks on PyTorch.

Subpackages, one concern each:

- :mod:`rnnkit.nn` – ``torch.nn``-compatible recurrent layers and cells.
- :mod:`rnnkit.engine` – native CPU kernels behind those layers.
- :mod:`rnnkit.scratch` – the same maths in NumPy, forward pass and BPTT by hand.
- :mod:`rnnkit.data` – tokenizers, vocabularies, readers, batching, bundled samples.
- :mod:`rnnkit.models` – ready models for each task shape.
- :mod:`rnnkit.train` – a small, model-agnostic training loop with checkpoints.
- :mod:`rnnkit.analysis` – gradient flow through time, hidden states, reports.
- :mod:`rnnkit.cli` – the ``rnnkit`` command line.
"""

__version__ = "0.1.0"
