"""Sends metrics to metrics-server with the real OpenTelemetry Python SDK.

usage: otlp_metrics.py ENDPOINT
Exports a counter, an up-down counter, a histogram and a gauge once, then
shuts the provider down (which flushes).
"""
import sys

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

endpoint = sys.argv[1]
resource = Resource.create(
    {"service.name": "shop", "service.instance.id": "shop-1", "deployment.environment": "test"}
)
reader = PeriodicExportingMetricReader(
    OTLPMetricExporter(endpoint=endpoint), export_interval_millis=60_000
)
provider = MeterProvider(resource=resource, metric_readers=[reader])
meter = provider.get_meter("checkout")

orders = meter.create_counter("orders", unit="{order}", description="Orders placed.")
orders.add(3, {"region": "eu"})
orders.add(4, {"region": "us"})
inflight = meter.create_up_down_counter("inflight.requests", unit="{request}")
inflight.add(5)
inflight.add(-2)
latency = meter.create_histogram("checkout.duration", unit="s", description="Checkout time.")
for v in (0.05, 0.2, 0.2, 3.0):
    latency.record(v)
meter.create_observable_gauge(
    "queue.depth", callbacks=[lambda _opts: [Observation(42, {"queue": "mail"})]]
)
provider.shutdown()
print("exported")
