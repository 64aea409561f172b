import ArgumentParser
import Attest
import ControllerClient
import ControllerProtocol
import Foundation
import Synchronization

/// `vigil loadtest`: many simulated devices attesting against one or more controller instances, end to end through
/// the real API, with throughput, latency, errors by kind, the generator's own CPU time and where the controller
/// spent its time.
struct LoadTestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loadtest",
        abstract: "Load test: N SIMULATED devices (software keys, not TPMs) onboard and attest for S seconds.",
        discussion: """
            Each simulated device has software EK, AK and device keys and a synthetic boot: the PCRs are the replay \
            of --eventlog (a real log, e.g. Tests/AttestTests/Fixtures/eventlogs/gce-rhel8-sb.bin), which it sends \
            with every quote. The devices are admitted by EK fingerprint into --group (with the admin token) and \
            onboarded through the real API (credential activation, certify); then --concurrency workers run full \
            attestations back to back: nonce from one instance, evidence to the next (any instance answers any \
            device), verdict and signed result back. The group's policy is the caller's to assign. Reports \
            attestations/s, latency percentiles, errors by kind, this process's CPU seconds, and the controller's \
            per-stage time (from each instance's /metrics, before and after).
            """)

    @Option(help: "The controllers' URLs, comma-separated: https://HOST:PORT[,https://HOST2:PORT…].")
    var controller: String
    @Option(help: "The controllers' CA certificate (their ca.pem).") var ca: String
    @Option(help: "File holding an admin API token (to admit the simulated EKs).") var tokenFile: String
    @Option(help: "Simulated devices.") var devices: Int = 100
    @Option(help: "Seconds of attestations (after onboarding).") var duration: Double = 10
    @Option(help: "Attestations in flight at once (at most --devices: a device attests one at a time).")
    var concurrency: Int = 16
    @Option(help: "The event log every simulated device booted and sends.") var eventlog: String
    @Option(help: "The group the devices join (assign it a policy first).") var group: String = "loadtest"
    @Option(help: "Write every signed result received to this file, one per line (to check none was lost).")
    var resultsOut: String?
    @Flag(
        help: """
            Measure the transport floor instead: each "attestation" is two GET /healthz (no body, no signature, no \
            database), through the same connections, TLS and concurrency: the most attestations/s this HTTP stack \
            could carry on this machine.
            """)
    var transportFloor = false
    @Flag(help: "JSON.") var json = false

    func validate() throws {
        guard (1...1_000_000).contains(devices) else { throw ValidationError("--devices: 1 to 1,000,000") }
        guard duration > 0, duration <= 86_400 else { throw ValidationError("--duration: up to a day") }
        guard concurrency >= 1 else { throw ValidationError("--concurrency: at least 1") }
    }

    func run() async throws {
        try await reportingErrors {
            let urls = controller.split(separator: ",").map { String($0) }.filter { !$0.isEmpty }
            guard !urls.isEmpty else { throw ValidationError("--controller: no URL") }
            let pem = String(decoding: try readInput(ca, limit: 256 * 1024), as: UTF8.self)
            let token = String(decoding: try readInput(tokenFile, limit: 4096), as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            // A dead instance is noticed within a second (a connection refused is retried until this timeout).
            let connections = try urls.map {
                try ControllerConnection(url: $0, caPEM: pem, connectSeconds: 1, requestSeconds: 30)
            }
            defer { Task { for c in connections { await c.shutdown() } } }
            let log = try readInput(eventlog, limit: UnverifiedEventLog.maxLogSize)
            let replayed = EventLogReplay(try UnverifiedEventLog(bytes: log))

            // 1. The simulated fleet, admitted and onboarded through the API.
            let fleet = try (0..<devices).map { _ in try SimulatedDevice(eventLog: log, replayed: replayed) }
            let onboardStart = ContinuousClock.now
            let width = min(concurrency, devices)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<width {
                    group.addTask {
                        for i in stride(from: worker, to: fleet.count, by: width) {
                            try await Self.onboard(
                                fleet[i], connections[i % connections.count], token: token, group: self.group)
                        }
                    }
                }
                try await group.waitForAll()
            }
            let onboardSeconds = (ContinuousClock.now - onboardStart).seconds

            // 2. Attestations, back to back, for --duration.
            let before = await Self.stageTotals(connections)
            var results: FileHandle?
            if let resultsOut {
                guard FileManager.default.createFile(atPath: resultsOut, contents: nil) else {
                    throw ValidationError("--results-out: cannot create \(resultsOut)")
                }
                results = FileHandle(forWritingAtPath: resultsOut)
            }
            defer { try? results?.close() }
            let cpu0 = processCPUSeconds()
            let start = ContinuousClock.now
            let deadline = start + .milliseconds(Int(duration * 1000))
            let tally = Tally(start: start, results: results)
            let health = InstanceHealth(count: connections.count)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<width {
                    group.addTask {
                        var round = worker
                        var next = worker
                        while ContinuousClock.now < deadline {
                            let device = fleet[next]
                            next += width
                            if next >= fleet.count { next = worker }
                            // Nonce from one instance, evidence to the next, skipping any that just failed to answer
                            // (as a load balancer would).
                            let nonceAt = health.pick(from: round)
                            let evidenceTo = health.pick(from: nonceAt + 1)
                            round += 1
                            if transportFloor {
                                await Self.floor(
                                    nonceFrom: connections[nonceAt], evidenceTo: connections[evidenceTo], tally: tally)
                                continue
                            }
                            await Self.attest(
                                device, nonceFrom: connections[nonceAt], evidenceTo: connections[evidenceTo],
                                tally: tally
                            ) { failed in health.markDown(failed == .nonce ? nonceAt : evidenceTo) }
                        }
                    }
                }
                try await group.waitForAll()
            }
            let wall = (ContinuousClock.now - start).seconds
            let cpu = processCPUSeconds() - cpu0
            let after = await Self.stageTotals(connections)
            let report = tally.report(
                devices: devices, instances: urls.count, concurrency: width, seconds: wall, generatorCPU: cpu,
                onboardSeconds: onboardSeconds, serverStages: Self.stageMeans(before, after))
            if json {
                try printAPIJSON(report)
            } else {
                print(report.text)
            }
        }
    }

    // MARK: One device

    static func onboard(_ device: SimulatedDevice, _ connection: ControllerConnection, token: String, group: String)
        async throws
    {
        let allow = try APIJSON.encode(
            Admin.AllowEK(ekFingerprint: try EKFingerprint(ek: device.ekPublic), group: group))
        let (status, answer) = try await connection.send(
            method: "POST", path: try path("deviceAllow"), body: allow,
            headers: [("Authorization", "Bearer \(token)")])
        guard status == 200 else { throw ControllerClientError(status: status, body: answer) }
        let challenge = try await connection.call(
            Onboarding.Challenge.self, method: "POST", path: try path("onboardBegin"),
            body: try APIJSON.encode(device.beginRequest))
        let finish = try APIJSON.encode(try device.finish(challenge))
        let finishPath = try path("onboardFinish")
        _ = try await connection.call(
            Onboarding.Result.self, method: "POST", path: finishPath, body: finish,
            headers: [("Authorization", try device.authorization(path: finishPath, body: finish))])
    }

    /// Which request of an attestation could not reach its instance.
    enum Leg { case nonce, evidence }

    /// One full attestation; its latency, stages and outcome go to `tally`; `unreachable` hears which leg's instance
    /// did not answer at all.
    static func attest(
        _ device: SimulatedDevice, nonceFrom: ControllerConnection, evidenceTo: ControllerConnection, tally: Tally,
        unreachable: (Leg) -> Void
    ) async {
        let t0 = ContinuousClock.now
        var leg = Leg.nonce
        do {
            let noncePath = try path("attestNonce")
            let grant = try await nonceFrom.call(
                Attestation.NonceGrant.self, method: "POST", path: noncePath, body: [],
                headers: [("Authorization", try device.authorization(path: noncePath, body: []))])
            leg = .evidence
            let t1 = ContinuousClock.now
            guard let nonce = Hex.decode(grant.nonce), nonce.count == 32,
                let selection = TPMLPCRSelection(parsingSpec: grant.pcrSelection)
            else { throw ControllerClientError(status: nil, code: "bad_nonce_grant", reason: "malformed nonce grant") }
            let body = try device.evidence(nonce: nonce, selection: selection).json()
            let attestPath = try path("attest")
            let header = try device.authorization(path: attestPath, body: body)
            let t2 = ContinuousClock.now
            let outcome = try await evidenceTo.call(
                Attestation.Outcome.self, method: "POST", path: attestPath, body: body,
                headers: [("Authorization", header)])
            let t3 = ContinuousClock.now
            let kind = outcome.pass ? nil : (outcome.result.isEmpty ? "no_result" : "verdict_fail")
            tally.record(
                latency: t3 - t0, stages: ["nonce": t1 - t0, "evidence_build": t2 - t1, "attest": t3 - t2],
                error: kind, result: outcome.result.isEmpty ? nil : outcome.result)
        } catch let error as ControllerClientError {
            if error.status == nil { unreachable(leg) }
            tally.record(latency: ContinuousClock.now - t0, stages: [:], error: error.code)
        } catch {
            tally.record(latency: ContinuousClock.now - t0, stages: [:], error: "generator_\(type(of: error))")
        }
    }

    /// Two requests that do nothing but cross the stack (TLS, HTTP, router, in-flight limit, deadline), timed as an
    /// attestation is.
    static func floor(nonceFrom: ControllerConnection, evidenceTo: ControllerConnection, tally: Tally) async {
        let t0 = ContinuousClock.now
        do {
            let health = try path("health")
            let (first, _) = try await nonceFrom.send(method: "GET", path: health, body: nil)
            let t1 = ContinuousClock.now
            let (second, _) = try await evidenceTo.send(method: "GET", path: health, body: nil)
            let t2 = ContinuousClock.now
            let error = first == 200 && second == 200 ? nil : "healthz_\(first)_\(second)"
            tally.record(latency: t2 - t0, stages: ["nonce": t1 - t0, "attest": t2 - t1], error: error, result: nil)
        } catch {
            tally.record(latency: ContinuousClock.now - t0, stages: [:], error: "floor_\(type(of: error))")
        }
    }

    /// Instances that failed to answer are skipped for five seconds.
    final class InstanceHealth: Sendable {
        private let downUntil: Mutex<[ContinuousClock.Instant?]>

        init(count: Int) { downUntil = Mutex(Array(repeating: nil, count: count)) }

        func markDown(_ index: Int) {
            downUntil.withLock { $0[index] = ContinuousClock.now + .seconds(5) }
        }

        /// The first instance from `start` (wrapping) that is not marked down; `start` itself if all are.
        func pick(from start: Int) -> Int {
            downUntil.withLock { down in
                let now = ContinuousClock.now
                for offset in 0..<down.count {
                    let i = (start + offset) % down.count
                    if let until = down[i], until > now { continue }
                    return i
                }
                return start % down.count
            }
        }
    }

    static func path(_ operation: String) throws -> String {
        guard let op = APIOperation.named(operation) else { throw ValidationError("unknown operation \(operation)") }
        return op.path
    }

    // MARK: The controller's stages

    /// `vigil_attestation_stage_seconds` sums and counts by stage, summed over every instance's `/metrics`.
    static func stageTotals(_ connections: [ControllerConnection]) async -> [String: (sum: Double, count: Double)] {
        var totals: [String: (sum: Double, count: Double)] = [:]
        for connection in connections {
            guard let (status, body) = try? await connection.send(method: "GET", path: "/metrics", body: nil),
                status == 200
            else { continue }
            for line in String(decoding: body, as: UTF8.self).split(separator: "\n") {
                guard line.hasPrefix("vigil_attestation_stage_seconds_"),
                    let open = line.firstIndex(of: "{"), let close = line.firstIndex(of: "}"),
                    let value = Double(line[line.index(after: close)...].trimmingCharacters(in: .whitespaces))
                else { continue }
                let metric = line[..<open]
                let labels = line[line.index(after: open)..<close]
                guard
                    let stage = labels.split(separator: ",").first(where: { $0.hasPrefix("stage=") })?
                        .dropFirst("stage=".count).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
                else { continue }
                if metric.hasSuffix("_sum") { totals[stage, default: (0, 0)].sum += value }
                if metric.hasSuffix("_count") { totals[stage, default: (0, 0)].count += value }
            }
        }
        return totals
    }

    /// Mean milliseconds per stage over the run.
    static func stageMeans(
        _ before: [String: (sum: Double, count: Double)], _ after: [String: (sum: Double, count: Double)]
    ) -> [String: Double] {
        var means: [String: Double] = [:]
        for (stage, a) in after {
            let b = before[stage] ?? (0, 0)
            let count = a.count - b.count
            if count > 0 { means[stage] = (a.sum - b.sum) / count * 1000 }
        }
        return means
    }

}

extension Duration {
    /// Seconds as a Double.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
    /// Milliseconds as a Double.
    var milliseconds: Double { seconds * 1000 }
}
