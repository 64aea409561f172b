import ArgumentParser
import Attest
import AttestTPM
import ControllerClient
import ControllerProtocol
import Foundation
import Node
import Policy
import SystemSupport

/// Where the controller is and which CA to trust.
struct ControllerOptions: ParsableArguments {
    @Option(help: "The controller's URL, https://HOST:PORT.") var controller: String
    @Option(help: "The controller's CA certificate (its ca.pem): the only CA trusted.") var ca: String

    func connect() throws -> ControllerConnection {
        let pem = String(decoding: try readInput(ca, limit: 256 * 1024), as: UTF8.self)
        return try ControllerConnection(url: controller, caPEM: pem)
    }

    /// Runs `body` with a connection that is shut down afterwards, whether `body` returns or throws.
    func withConnection<R>(_ body: (ControllerConnection) async throws -> R) async throws -> R {
        let connection = try connect()
        do {
            let result = try await body(connection)
            await connection.shutdown()
            return result
        } catch {
            await connection.shutdown()
            throw error
        }
    }
}

/// `vigil device …`: the device's side of the controller protocol; every key operation is in the TPM.
struct DeviceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "device", abstract: "Onboard to a controller, attest, and fetch secrets.",
        subcommands: [ID.self, Onboard.self, Attest.self, FetchSecret.self, Load.self])

    struct ID: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print this TPM's device id and EK fingerprint (for `vigil admin device allow`).")
        @OptionGroup var tpmOptions: TPMOptions
        @Flag(help: "JSON.") var json = false

        func run() async throws {
            try await reportingErrors {
                let tpm = try await tpmOptions.open()
                let (ek, _, id) = try await DeviceAgent.endorsementKey(of: tpm)
                let fingerprint = try EKFingerprint(ek: ek)
                if json {
                    try printAPIJSON(["device_id": id.rawValue, "ek_fingerprint": fingerprint.hex])
                } else {
                    print("device \(id)\nEK fingerprint \(fingerprint)")
                }
            }
        }
    }

    struct Load: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Load generator: full attestations (nonce, quote, evidence, verdict) from several TPMs at once.",
            discussion: """
                Each --tcti is one onboarded TPM; each runs attestations back to back for --seconds. Prints \
                attestations per second, latency percentiles and this process's own CPU time (the TPMs' and the \
                controller's CPU are the caller's to measure: see scripts/benchmark-controller-swtpm.sh).
                """)
        @OptionGroup var controllerOptions: ControllerOptions
        @Option(help: "A TPM (repeatable): swtpm:host=H,port=N …") var tcti: [String]
        @Option(help: "The event log every device sends.") var eventlog: String
        @Option(help: "Seconds to run.") var seconds: Double = 10
        @Flag(help: "JSON.") var json = false

        func run() async throws {
            try await reportingErrors {
                let log = try readInput(eventlog, limit: UnverifiedEventLog.maxLogSize)
                var agents: [DeviceAgent] = []
                let connection = try controllerOptions.connect()
                for t in tcti {
                    let tpm = try await TPM.open(try TCTIConfiguration.resolve(t))
                    agents.append(DeviceAgent(tpm: tpm, connection: connection))
                }
                let cpu0 = processCPUSeconds()
                let start = ContinuousClock.now
                let deadline = start + .milliseconds(Int(seconds * 1000))
                let results = try await withThrowingTaskGroup(of: ([Double], Int).self) { group in
                    for agent in agents {
                        group.addTask {
                            var latencies: [Double] = []
                            var failed = 0
                            while ContinuousClock.now < deadline {
                                let t0 = ContinuousClock.now
                                let outcome = try await agent.attest(eventLog: log)
                                let d = ContinuousClock.now - t0
                                latencies.append(
                                    Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15)
                                if !outcome.pass { failed += 1 }
                            }
                            return (latencies, failed)
                        }
                    }
                    var all: [([Double], Int)] = []
                    for try await r in group { all.append(r) }
                    return all
                }
                let wall = ContinuousClock.now - start
                let wallSeconds = Double(wall.components.seconds) + Double(wall.components.attoseconds) / 1e18
                let cpu = processCPUSeconds() - cpu0
                await connection.shutdown()
                let latencies = results.flatMap(\.0).sorted()
                let failures = results.map(\.1).reduce(0, +)
                func pct(_ p: Double) -> Double {
                    latencies.isEmpty ? 0 : latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))]
                }
                struct Report: Encodable {
                    var devices: Int
                    var attestations: Int
                    var failed: Int
                    var seconds: Double
                    var perSecond: Double
                    var p50Ms: Double
                    var p95Ms: Double
                    var p99Ms: Double
                    var generatorCPUSeconds: Double
                }
                let report = Report(
                    devices: agents.count, attestations: latencies.count, failed: failures, seconds: wallSeconds,
                    perSecond: Double(latencies.count) / wallSeconds, p50Ms: pct(0.5), p95Ms: pct(0.95),
                    p99Ms: pct(0.99), generatorCPUSeconds: cpu)
                if json {
                    try printAPIJSON(report)
                } else {
                    print(
                        String(
                            format:
                                "%d devices: %d attestations in %.1f s = %.1f/s (p50 %.1f ms, p95 %.1f ms, p99 %.1f ms), %d failed; generator CPU %.2f s",
                            report.devices, report.attestations, report.seconds, report.perSecond, report.p50Ms,
                            report.p95Ms, report.p99Ms, report.failed, report.generatorCPUSeconds))
                }
                if failures > 0 { throw ExitCode(1) }
            }
        }

    }

    struct Onboard: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Onboard this TPM: EK, AK by credential activation, device key by TPM2_Certify.")
        @OptionGroup var tpmOptions: TPMOptions
        @OptionGroup var controllerOptions: ControllerOptions
        @Option(help: "A one-time enrollment token from the security team.") var enrollToken: String?
        @Flag(help: "Print the result as JSON.") var json = false

        func run() async throws {
            try await reportingErrors {
                let tpm = try await tpmOptions.open()
                let result = try await controllerOptions.withConnection { connection in
                    try await DeviceAgent(tpm: tpm, connection: connection).onboard(enrollToken: enrollToken)
                }
                if json {
                    try printAPIJSON(result)
                } else {
                    print("onboarded \(result.deviceID) (group \(result.group))\(result.created ? "" : ", unchanged")")
                    print("AK \(result.akName) bound by credential activation; EK chain: \(result.ekChain)")
                }
            }
        }
    }

    struct Attest: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Attest to the controller: exit 0 on pass, 1 on fail (the failed rules are printed).")
        @OptionGroup var tpmOptions: TPMOptions
        @OptionGroup var controllerOptions: ControllerOptions
        @Option(help: "TCG event log to send (default: the kernel's, when readable).") var eventlog: String?
        @Flag(help: "Print the verdict as JSON, with the signed result under \"result\".") var json = false

        func run() async throws {
            try await reportingErrors {
                let tpm = try await tpmOptions.open()
                let path =
                    eventlog
                    ?? (FileManager.default.isReadableFile(atPath: EvidenceCollector.kernelEventLog)
                        ? EvidenceCollector.kernelEventLog : nil)
                let log = try path.map { try readInput($0, limit: UnverifiedEventLog.maxLogSize) }
                let outcome = try await controllerOptions.withConnection { connection in
                    try await DeviceAgent(tpm: tpm, connection: connection).attest(eventLog: log)
                }
                let verdict = try JSONDecoder().decode(Verdict.self, from: Data(outcome.verdict.utf8))
                if json {
                    struct Output: Encodable {
                        var deviceID: String
                        var pass: Bool
                        var verdict: Verdict
                        var result: String
                        var findings: [String]
                        enum CodingKeys: String, CodingKey {
                            case deviceID = "device_id", pass, verdict, result, findings
                        }
                    }
                    try printJSON(
                        Output(
                            deviceID: outcome.deviceID.rawValue, pass: outcome.pass, verdict: verdict,
                            result: outcome.result, findings: outcome.findings))
                } else {
                    for f in outcome.findings { print("note: \(f)") }
                    for r in verdict.results where r.status == .failed { print(r.line) }
                    print(
                        "\(outcome.pass ? "PASS" : "FAIL") \(outcome.deviceID): \(verdict.failures.count) failed, \(verdict.warnings.count) warnings"
                    )
                }
                if !outcome.pass { throw ExitCode(1) }
            }
        }
    }

    struct FetchSecret: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "fetch-secret",
            abstract: "Fetch a secret released to this TPM (needs a fresh pass); written 0600.")
        @Argument(help: "The secret's name.") var name: String
        @OptionGroup var tpmOptions: TPMOptions
        @OptionGroup var controllerOptions: ControllerOptions
        @Option(help: "Where to write it (0600).") var out: String

        func run() async throws {
            try await reportingErrors {
                let secretName = try SecretName.parse(name)
                let tpm = try await tpmOptions.open()
                let secret = try await controllerOptions.withConnection { connection in
                    try await DeviceAgent(tpm: tpm, connection: connection).fetchSecret(secretName)
                }
                try secret.withUnsafeBytes { raw in
                    try AtomicFile.write(Array(raw), to: URL(fileURLWithPath: out), mode: 0o600)
                }
                print("secret \(secretName) (\(secret.count) bytes) written to \(out)")
            }
        }
    }
}
