import Foundation
public import Prometheus

/// The controller's Prometheus metrics (`GET /metrics`, swift-prometheus): attestations by verdict and
/// reason, secret releases by outcome, request latency per operation and status.
public final class ControllerMetrics: Sendable {
    /// The registry exposed at `/metrics`.
    public let registry = PrometheusCollectorRegistry()

    /// An empty set of metrics.
    public init() {}

    /// One attestation: `pass`, or refused/failed with its reason (`policy`, `nonce_used`, …).
    func attestation(pass: Bool, reason: String) {
        registry.makeCounter(
            descriptor: MetricNameDescriptor(
                namespace: "vigil", metricName: "attestations", unitName: "total",
                helpText: "Attestations by verdict and reason"),
            labels: [("verdict", pass ? "pass" : "fail"), ("reason", reason)]
        ).increment()
    }

    /// One secret release attempt: `released`, or the refusal's code.
    func release(outcome: String) {
        registry.makeCounter(
            descriptor: MetricNameDescriptor(
                namespace: "vigil", metricName: "secret_releases", unitName: "total",
                helpText: "Secret release attempts by outcome"),
            labels: [("outcome", outcome)]
        ).increment()
    }

    /// One request's latency.
    func record(operation: String, status: Int, since start: ContinuousClock.Instant) {
        registry.makeDurationHistogram(
            descriptor: MetricNameDescriptor(
                namespace: "vigil", metricName: "request_duration", unitName: "seconds",
                helpText: "Request latency by operation and status"),
            labels: [("operation", operation), ("status", String(status))],
            buckets: [
                .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
                .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5),
            ]
        ).record(ContinuousClock.now - start)
    }

    /// The text exposition format.
    public func exposition() -> String { registry.emitToString() }
}
