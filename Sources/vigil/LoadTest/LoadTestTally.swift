import Foundation
import Synchronization

extension LoadTestCommand {
    /// What the workers saw, shared between them.
    final class Tally: Sendable {
        private struct State {
            var timeline: [[Int]] = []
            var latencies: [Double] = []
            var passes = 0
            var errors: [String: Int] = [:]
            var stageSums: [String: Double] = [:]
            var stageCounts: [String: Int] = [:]
        }
        private let state = Mutex(State())
        private let start: ContinuousClock.Instant
        /// Where each received result (JWT) is written, one per line (`--results-out`).
        private let results: FileHandle?

        init(start: ContinuousClock.Instant, results: FileHandle?) {
            self.start = start
            self.results = results
        }

        /// One attestation: its end-to-end latency, the client-side stages, its error kind (nil: a pass) and the
        /// signed result received.
        func record(latency: Duration, stages: [String: Duration], error: String?, result: String? = nil) {
            let second = max(0, Int((ContinuousClock.now - start).seconds))
            state.withLock { s in
                while s.timeline.count <= second { s.timeline.append([0, 0]) }
                s.timeline[second][error == nil ? 0 : 1] += 1
                if let result, let results { results.write(Data((result + "\n").utf8)) }
                if let error {
                    s.errors[error, default: 0] += 1
                } else {
                    s.passes += 1
                    s.latencies.append(latency.milliseconds)
                    for (stage, d) in stages {
                        s.stageSums[stage, default: 0] += d.milliseconds
                        s.stageCounts[stage, default: 0] += 1
                    }
                }
            }
        }

        func report(
            devices: Int, instances: Int, concurrency: Int, seconds: Double, generatorCPU: Double,
            onboardSeconds: Double, serverStages: [String: Double]
        ) -> Report {
            state.withLock { s in
                let sorted = s.latencies.sorted()
                func percentile(_ p: Double) -> Double {
                    sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
                }
                var stages: [String: Double] = [:]
                for (stage, sum) in s.stageSums {
                    stages["client_\(stage)_ms"] = sum / Double(s.stageCounts[stage] ?? 1)
                }
                for (stage, mean) in serverStages { stages["controller_\(stage)_ms"] = mean }
                return Report(
                    simulation:
                        "software attesters (not TPMs): EK, AK and device key are P-256 keys in the load generator",
                    devices: devices, instances: instances, concurrency: concurrency, seconds: seconds,
                    attestations: s.passes, attestationsPerS: Double(s.passes) / max(seconds, 0.001),
                    p50Ms: percentile(0.5), p90Ms: percentile(0.9), p99Ms: percentile(0.99), maxMs: sorted.last ?? 0,
                    errors: s.errors, generatorCPUS: generatorCPU, onboardSeconds: onboardSeconds, stages: stages,
                    timeline: s.timeline)
            }
        }
    }

    /// The load test's outcome (`--json` keys are snake_case: `attestations_per_s`, `p50_ms`, …).
    struct Report: Encodable {
        var simulation: String
        var devices: Int
        var instances: Int
        var concurrency: Int
        var seconds: Double
        /// Passing attestations completed (nonce → evidence → verdict stored → signed result).
        var attestations: Int
        var attestationsPerS: Double
        var p50Ms: Double
        var p90Ms: Double
        var p99Ms: Double
        var maxMs: Double
        /// Failed attestations by kind: the controller's refusal code, `verdict_fail`, `connection_failed`, ….
        var errors: [String: Int]
        /// This process's CPU time (user + system) during the attestation phase.
        var generatorCPUS: Double
        var onboardSeconds: Double
        /// Mean milliseconds per stage: `client_*` as the generator saw them, `controller_*` from the instances'
        /// `vigil_attestation_stage_seconds`.
        var stages: [String: Double]
        /// Each second of the run: `[passes, errors]`.
        var timeline: [[Int]]

        enum CodingKeys: String, CodingKey {
            case simulation, devices, instances, concurrency, seconds, attestations, errors, stages, timeline
            case attestationsPerS = "attestations_per_s"
            case p50Ms = "p50_ms"
            case p90Ms = "p90_ms"
            case p99Ms = "p99_ms"
            case maxMs = "max_ms"
            case generatorCPUS = "generator_cpu_s"
            case onboardSeconds = "onboard_s"
        }

        var text: String {
            var lines = [
                "SIMULATION: \(simulation)",
                String(
                    format:
                        "%d devices, %d instance(s), concurrency %d: %d attestations in %.1f s = %.1f/s; p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms; generator CPU %.2f s (onboarding took %.1f s)",
                    devices, instances, concurrency, attestations, seconds, attestationsPerS, p50Ms, p90Ms, p99Ms,
                    maxMs, generatorCPUS, onboardSeconds),
            ]
            lines.append(
                "errors: "
                    + (errors.isEmpty
                        ? "none"
                        : errors.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")))
            lines.append(
                "stages (mean ms): "
                    + stages.sorted { $0.key < $1.key }.map { "\($0.key) " + String(format: "%.3f", $0.value) }.joined(
                        separator: ", "))
            return lines.joined(separator: "\n")
        }
    }
}
