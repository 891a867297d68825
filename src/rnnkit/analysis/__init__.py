"""Seeing inside recurrent networks: gradient flow through time, spectra, hidden states, reports.

Example::

    from rnnkit.analysis import gradient_flow, recurrent_weight_spectrum

    flow = gradient_flow(model, batch)          # ||dL/dh_t|| per layer, direction and step
    print(flow.curve().summary().describe())    # e.g. "vanishing: x0.71 per step ..., memory 12"
    for gate in recurrent_weight_spectrum(model.rnn):
        print(gate.layer, gate.gate, gate.largest)   # largest singular value of W_hh vs 1

Modules: :mod:`.recording` (run a layer step by step, keeping each ``h_t`` in the graph),
:mod:`.gradient_flow` and :mod:`.decay` (norms and their summaries), :mod:`.spectrum`,
:mod:`.hidden` (states, char features, unit correlations), :mod:`.tasks`, :mod:`.experiment`
and :mod:`.demo` (the long-dependency demonstration), :mod:`.plots`, :mod:`.html`,
:mod:`.report` (``rnnkit report DIR``).
"""

from rnnkit.analysis.decay import FlowSummary, FlowThresholds, summarize
from rnnkit.analysis.gradient_flow import FlowCurve, GradientFlow, gradient_flow
from rnnkit.analysis.hidden import record_states, text_features, unit_correlations
from rnnkit.analysis.recording import LayerTrace, recorded_forward, recording
from rnnkit.analysis.spectrum import (
    GateSpectrum,
    recurrent_weight_spectrum,
    step_jacobian_spectrum,
)

__all__ = [
    "FlowCurve",
    "FlowSummary",
    "FlowThresholds",
    "GateSpectrum",
    "GradientFlow",
    "LayerTrace",
    "gradient_flow",
    "record_states",
    "recorded_forward",
    "recording",
    "recurrent_weight_spectrum",
    "step_jacobian_spectrum",
    "summarize",
    "text_features",
    "unit_correlations",
]
