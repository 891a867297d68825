"""Export a run's model: the exporter lives with the models (:mod:`rnnkit.models.export`)."""

from rnnkit.models.export import ExportReport, export_model

__all__ = ["ExportReport", "export_model"]
