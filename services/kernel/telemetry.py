"""OpenTelemetry for every process: one tracer provider, W3C trace context in bus headers.

Spans carry pseudonymous ids and event ids only, never a national id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

TRACEPARENT = "traceparent"


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


def links_to(carriers: Iterable[Mapping[str, str] | None]) -> list[trace.Link]:
    """Links to the distinct span contexts the carriers (headers, stored traces) hold."""
    links: list[trace.Link] = []
    seen: set[str] = set()
    for carrier in carriers:
        parent = (carrier or {}).get(TRACEPARENT)
        if parent is None or parent in seen:
            continue
        seen.add(parent)
        span_context = trace.get_current_span(context_from(carrier)).get_span_context()
        if span_context.is_valid:
            links.append(trace.Link(span_context))
    return links


def batch_context(carriers: Iterable[Mapping[str, str] | None]) -> tuple[Context, list[trace.Link]]:
    """For one span over a batch of messages: the first one's context as the parent, and
    links to the other contexts in the batch, so every message's trace leads to the span."""
    links = links_to(carriers)
    if not links:
        return context_from(None), []
    return trace.set_span_in_context(trace.NonRecordingSpan(links[0].context)), links[1:]
