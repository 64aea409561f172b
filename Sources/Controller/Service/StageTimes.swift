/// Where the controller's time goes in an attestation, stage by stage, as the Prometheus histogram
/// `vigil_attestation_stage_seconds{stage=…}` (`vigil loadtest` reads its sums and counts before and after a run).
/// Only stages that completed are recorded; without metrics nothing is.
final class StageTimes: Sendable {
    let metrics: ControllerMetrics?

    init(metrics: ControllerMetrics?) { self.metrics = metrics }

    /// Records `stage` as having taken the time since `start`.
    func record(_ stage: String, since start: ContinuousClock.Instant) {
        metrics?.stage(stage, ContinuousClock.now - start)
    }

    /// Runs `body` and records its time as `stage` if it returns.
    func time<T>(_ stage: String, _ body: () async throws(ControllerError) -> T) async throws(ControllerError) -> T {
        let start = ContinuousClock.now
        let value = try await body()
        record(stage, since: start)
        return value
    }
}
