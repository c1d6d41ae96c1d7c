"""Monitoring: one observation per target, as Prometheus metrics or a monitoring-plugin line.

:mod:`.observe` probes (and optionally diagnoses) one target and judges its chain;
:mod:`.metrics` turns an observation into Prometheus metrics; :mod:`.config` reads the
exporter's modules; :mod:`.exporter` serves ``/probe`` and ``/metrics``; :mod:`.check`
applies the plugin thresholds.
"""
