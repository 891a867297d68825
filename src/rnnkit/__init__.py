"""rnnkit: recurrent neural networks on PyTorch.

Subpackages, one concern each:

- :mod:`rnnkit.nn` – ``torch.nn``-compatible recurrent layers and cells.
- :mod:`rnnkit.engine` – native CPU kernels behind those layers.
- :mod:`rnnkit.scratch` – the same maths in NumPy, forward pass and BPTT by hand.
- :mod:`rnnkit.data` – tokenizers, vocabularies, readers, batching, bundled samples.
- :mod:`rnnkit.models` – ready models for each task shape.
- :mod:`rnnkit.train` – a small, model-agnostic training loop with checkpoints.
- :mod:`rnnkit.tasks` – a run config in, a trained model out: the Python API of the CLI.
- :mod:`rnnkit.analysis` – gradient flow through time, hidden states, reports.
- :mod:`rnnkit.cli` – the ``rnnkit`` command line.
"""

from rnnkit.reproducibility import request_strict_cnr as _request_strict_cnr

__version__ = "0.1.0"

# Before torch's first matrix product, or MKL cannot change mode (see rnnkit.reproducibility).
_request_strict_cnr()
