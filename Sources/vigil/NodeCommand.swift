import ArgumentParser
import AttestTPM
import Foundation
import Logging
import Node
import ServiceLifecycle
import UnixSignals

/// `vigil node …`: the node agent, the security core that gates the plugins.
struct NodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node",
        abstract: "The node agent: attest, unlock, release, then run the plugins while attestation passes.",
        subcommands: [Run.self, Status.self, AttestNow.self])

    struct StateOptions: ParsableArguments {
        @Option(help: "The node's state directory (status, runtime record, pinned result key, workload logs).")
        var stateDir: String = ProcessInfo.processInfo.environment["VIGIL_NODE_STATE_DIR"] ?? "/var/lib/vigil/node"
    }

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the node agent until SIGTERM/SIGINT (which close the gate first).",
            discussion: """
                The gate opens only after: recovery of anything a previous run left open → TPM and onboarding → \
                attestation over a fresh controller nonce (the result's signature checked with the controller's \
                key) → every --vault unlocked → the plugins' secrets released to this TPM → plugins started \
                (--manifest: the network stack, then the workload manager). A failed, expired or withdrawn \
                verdict, a revocation, a TPM reset or restart, or an unreachable controller beyond the policy's \
                offline grace closes it: plugins stop (SIGTERM, then SIGKILL at --stop-deadline), secrets are \
                wiped, vaults lock. SIGUSR1 (vigil node attest-now) re-attests at once.
                """)
        @OptionGroup var controllerOptions: ControllerOptions
        @OptionGroup var state: StateOptions
        @Option(help: "Where the TPM is (swtpm:host=H,port=N | device:/dev/tpmrm0). Default: $VIGIL_TCTI.") var tcti:
            String?
        @Option(help: "The workloads and networks (YAML; see the README).") var manifest: String?
        @Option(help: "A vault to unlock when the gate opens (repeatable).") var vault: [String] = []
        @Option(help: "The event log sent with every quote.")
        var eventlog: String = "/sys/kernel/security/tpm0/binary_bios_measurements"
        @Option(help: "An enrollment token for the first onboarding.") var enrollToken: String?
        @Option(help: "Seconds between re-attestations.") var interval: Double = 300
        @Option(help: "Fraction of the interval taken off at random (0–0.5).") var jitter: Double = 0.1
        @Option(help: "Seconds between watches (TPM counters, expiry, revocation, report to the controller).")
        var watchInterval: Double = 2
        @Option(help: "Seconds plugins get to stop before they are killed.") var stopDeadline: Int = 10
        @Option(help: "The longest backoff between failed attempts, seconds.") var backoffMax: Double = 60
        @Option(help: "Log level for libraries.") var logLevel: Logger.Level = .warning

        func validate() throws {
            guard interval >= 1, interval <= 86400 else { throw ValidationError("--interval: 1…86400 seconds") }
            guard (0...0.5).contains(jitter) else { throw ValidationError("--jitter: 0…0.5") }
            guard watchInterval >= 0.1, watchInterval <= 3600 else {
                throw ValidationError("--watch-interval: 0.1…3600 seconds")
            }
            guard (0...600).contains(stopDeadline) else { throw ValidationError("--stop-deadline: 0…600 seconds") }
            guard backoffMax >= 1, backoffMax <= 3600 else { throw ValidationError("--backoff-max: 1…3600 seconds") }
        }

        func run() async throws {
            try await reportingErrors {
                bootstrapLogging(logLevel)
                if logLevel > .debug { setenv("TSS2_LOG", "all+none", 0) }
                let caPEM = String(decoding: try readInput(controllerOptions.ca, limit: 256 * 1024), as: UTF8.self)
                let vaults = vault.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
                var plugins: [any NodePlugin] = []
                if let manifest {
                    let text = String(decoding: try readInput(manifest, limit: NodeManifest.maximumSize), as: UTF8.self)
                    let m = try NodeManifest(yaml: text)
                    if !m.networks.isEmpty { plugins.append(NetworkStack(networks: m.networks)) }
                    if !m.workloads.isEmpty { plugins.append(WorkloadManager(workloads: m.workloads, vaults: vaults)) }
                }
                var configuration = NodeConfiguration(
                    controllerURL: controllerOptions.controller, caPEM: caPEM,
                    tcti: try TCTIConfiguration.resolve(tcti), stateDirectory: state.stateDir,
                    eventLogPath: FileManager.default.fileExists(atPath: eventlog) ? eventlog : nil,
                    enrollToken: enrollToken, vaults: vaults)
                configuration.interval = interval
                configuration.jitter = jitter
                configuration.watchInterval = watchInterval
                configuration.stopDeadline = .seconds(stopDeadline)
                configuration.backoffMax = backoffMax
                let agent = try NodeAgent(configuration: configuration, plugins: plugins)
                var logger = Logger(label: "vigil.node")
                logger.logLevel = logLevel
                let group = ServiceGroup(
                    configuration: ServiceGroupConfiguration(
                        services: [.init(service: agent, successTerminationBehavior: .gracefullyShutdownGroup)],
                        gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
                try await group.run()
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The node's gate (open or closed, and why), last verdict, next attestation and plugins.")
        @OptionGroup var state: StateOptions
        @Flag(help: "JSON.") var json = false

        func run() async throws {
            try await reportingErrors {
                let status = try NodeStatus.read(stateDirectory: state.stateDir)
                let running = NodeCommand.isNodeAgent(status.pid)
                if json {
                    let encoder = JSONEncoder()
                    encoder.keyEncodingStrategy = .convertToSnakeCase
                    encoder.dateEncodingStrategy = .iso8601
                    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                    struct Shown: Encodable {
                        var running: Bool
                        var status: NodeStatus
                    }
                    print(String(decoding: try encoder.encode(Shown(running: running, status: status)), as: UTF8.self))
                    return
                }
                print("agent: \(running ? "running (pid \(status.pid))" : "not running (last status below)")")
                print("device: \(status.deviceID ?? "(not onboarded)")")
                print("gate: \(status.gateOpen ? "OPEN" : "CLOSED") — \(status.reason)")
                print("phase: \(status.phase) (as of \(status.updatedAt))")
                if let v = status.lastVerdict {
                    print(
                        "last verdict: \(v.pass ? "pass" : "FAIL") at \(v.at)\(v.policy.map { " under \($0)" } ?? "")\(v.expires.map { ", valid until \($0)" } ?? "")"
                    )
                    for f in v.failures { print("  failed: \(f)") }
                }
                if let next = status.nextAttestation { print("next attestation: \(next)") }
                for (name, state) in status.plugins.sorted(by: { $0.key < $1.key }) {
                    print("plugin \(name): \(state)")
                }
                if let ms = status.timings.startToGateMs {
                    print(
                        String(
                            format: "start → gate open: %.0f ms, %d TPM commands", ms,
                            status.timings.tpmCommandsToGate ?? 0))
                }
                for line in status.recovered { print("recovered at start: \(line)") }
            }
        }
    }

    struct AttestNow: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "attest-now", abstract: "Ask the running node agent to re-attest at once (SIGUSR1).")
        @OptionGroup var state: StateOptions

        func run() async throws {
            try await reportingErrors {
                let status = try NodeStatus.read(stateDirectory: state.stateDir)
                guard NodeCommand.isNodeAgent(status.pid) else {
                    throw ValidationError("no node agent is running for \(state.stateDir) (pid \(status.pid) is gone)")
                }
                guard kill(status.pid, SIGUSR1) == 0 else {
                    throw ValidationError("cannot signal pid \(status.pid): \(String(cString: strerror(errno)))")
                }
                print("asked pid \(status.pid) to re-attest")
            }
        }
    }

    /// Whether `pid` is a running `vigil node run` (not a reused pid).
    static func isNodeAgent(_ pid: Int32) -> Bool {
        guard pid > 0, let cmdline = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
        let args = cmdline.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        return args.contains("node") && args.contains("run") && (args.first?.hasSuffix("vigil") ?? false)
    }
}
