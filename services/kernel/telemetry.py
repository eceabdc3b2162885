"""OpenTelemetry for every process: one tracer provider, W3C trace context in bus headers.

Spans carry pseudonymous ids and event ids only, never a national id.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter


def setup(service: str, exporter: str) -> None:
    """Install the tracer provider for this process: exporter "none", "console" or "otlp"."""
    provider = TracerProvider(resource=Resource.create({"service.name": f"los-{service}"}))
    chosen: SpanExporter | None = None
    if exporter == "console":
        chosen = ConsoleSpanExporter()
    elif exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        chosen = OTLPSpanExporter()
    elif exporter != "none":
        raise ValueError(f"LOS_TELEMETRY must be none, console or otlp, not {exporter!r}")
    if chosen is not None:
        provider.add_span_processor(BatchSpanProcessor(chosen))
    trace.set_tracer_provider(provider)


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)


def current_traceparent() -> dict[str, str]:
    """The current span's context as W3C headers, to store beside an event or send on the bus."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def context_from(headers: Mapping[str, str] | None) -> Context:
    return propagate.extract(dict(headers or {}))
