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
}

/// `vigil device …`: the device's side of the controller protocol; every key operation is in the TPM.
struct DeviceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "device", abstract: "Onboard to a controller, attest, and fetch secrets.",
        subcommands: [Onboard.self, Attest.self, FetchSecret.self])

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
                let connection = try controllerOptions.connect()
                defer { Task { await connection.shutdown() } }
                let result = try await DeviceAgent(tpm: tpm, connection: connection).onboard(enrollToken: enrollToken)
                await connection.shutdown()
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
                let connection = try controllerOptions.connect()
                let outcome: Attestation.Outcome
                do {
                    outcome = try await DeviceAgent(tpm: tpm, connection: connection).attest(eventLog: log)
                } catch {
                    await connection.shutdown()
                    throw error
                }
                await connection.shutdown()
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
                let connection = try controllerOptions.connect()
                let secret: SecretBytes
                do {
                    secret = try await DeviceAgent(tpm: tpm, connection: connection).fetchSecret(secretName)
                } catch {
                    await connection.shutdown()
                    throw error
                }
                await connection.shutdown()
                try secret.withUnsafeBytes { raw in
                    try AtomicFile.write(Array(raw), to: URL(fileURLWithPath: out), mode: 0o600)
                }
                print("secret \(secretName) (\(secret.count) bytes) written to \(out)")
            }
        }
    }
}
