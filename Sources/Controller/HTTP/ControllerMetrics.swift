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

    /// The time one stage of an attestation took (`authenticate`, `parse`, `nonce_and_policy`, `verify`, `policy`,
    /// `sign`, `store`, `total`; `issue_nonce` for nonce requests).
    func stage(_ name: String, _ duration: Duration) {
        registry.makeDurationHistogram(
            descriptor: MetricNameDescriptor(
                namespace: "vigil", metricName: "attestation_stage", unitName: "seconds",
                helpText: "Time per stage of an attestation, in this instance"),
            labels: [("stage", name)],
            buckets: [
                .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1),
                .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(100),
            ]
        ).record(duration)
    }

    /// How many requests this instance is handling now (health and metrics not counted).
    func inFlight(_ count: Int) {
        registry.makeGauge(
            descriptor: MetricNameDescriptor(
                namespace: "vigil", metricName: "requests_in_flight", unitName: "",
                helpText: "Requests being handled by this instance (health and metrics not counted)")
        ).set(Int64(count))
    }

    /// One request refused because the instance was at its in-flight limit.
    func overloaded() {
        registry.makeCounter(
            descriptor: MetricNameDescriptor(
                namespace: "vigil", metricName: "overloaded_requests", unitName: "total",
                helpText: "Requests answered 503 because the instance was at its in-flight limit"),
            labels: []
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
