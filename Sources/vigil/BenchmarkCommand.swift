import ArgumentParser
import Attest
import AttestTPM
import Foundation
import VigilBenchmark

struct BenchmarkCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "benchmark",
        abstract:
            "Measure the verifier on this machine (like cryptsetup benchmark): quote verifications/s vs raw P-256, event-log parse+replay."
    )

    @Option(name: .customLong("eventlog"), help: "Event logs to time (default: the bundled fixture logs).")
    var eventLogs: [String] = []
    @Option(help: "Seconds per measurement.") var seconds: Double = 1.0
    @Option(
        name: .customLong("peer-eventlog"),
        help:
            "A peer that reads an event log file (e.g. /usr/bin/tpm2_eventlog), run interleaved with Vigil's rounds on each log."
    )
    var peerEventLog: String?
    @Flag(help: "Print as JSON.") var json = false
    @Flag(
        help:
            "Measure the device side instead: TPM2_GetRandom round trips through Vigil's TPM actor vs bare Esys_GetRandom on the same TPM (--tcti)."
    )
    var tpm = false
    @OptionGroup var tpmOptions: TPMOptions

    func run() async throws {
        if tpm {
            try await runTPM()
            return
        }
        try await reportingErrors {
            let logs =
                eventLogs.isEmpty
                ? try VerifierBenchmark.bundledEventLogs()
                : try eventLogs.map {
                    (URL(fileURLWithPath: $0).lastPathComponent, Array(try Data(contentsOf: URL(fileURLWithPath: $0))))
                }
            let result = try VerifierBenchmark(eventLogs: logs, seconds: seconds, peerEventLogTool: peerEventLog).run()
            if json {
                try printJSON(result)
                return
            }
            print("# \(result.machine)")
            print(String(format: "quote verification   %10.0f /s", result.quote_verify_per_s))
            print(
                String(
                    format: "raw P-256 ECDSA      %10.0f /s   (quote verification costs %.1f %% more)",
                    result.p256_verify_per_s, result.quote_overhead_percent))
            for (name, us) in result.eventlog_us.sorted(by: { $0.key < $1.key }) {
                var line = String(
                    format: "event log %-32@ %8.1f µs parse + replay, %8.1f µs verify + facts, %6.1f µs policy",
                    name as NSString, us, result.evidence_prepare_us[name] ?? 0, result.policy_eval_us_by_log[name] ?? 0
                )
                if let peer = result.tpm2_eventlog_ms?[name] {
                    line += String(format: "; peer %.2f ms (%.0f×)", peer, peer * 1000 / us)
                }
                print(line)
            }
            print(String(format: "event log throughput %10.1f MB/s", result.eventlog_mb_per_s))
            print(
                String(
                    format: "policy evaluation    %10.1f µs   (slowest: %@, %d allowed digests)", result.policy_eval_us,
                    result.policy_eval_log as NSString, result.policy_allowed_digests))
        }
    }

    func runTPM() async throws {
        try await reportingErrors {
            bootstrapLogging(tpmOptions.logLevel)
            setenv("TSS2_LOG", "all+none", 0)
            let config = try TCTIConfiguration.resolve(tpmOptions.tcti)
            let rounds = max(1, Int(seconds.rounded(.up)) * 3)
            let result = try await TPMRoundTripBenchmark(tcti: config, rounds: rounds).run()
            if json {
                try printJSON(result)
                return
            }
            print("# TPM at \(result.tcti), median of \(result.rounds) rounds of \(result.commands_per_round) commands")
            print(String(format: "GetRandom via Vigil's TPM actor %8.1f µs", result.vigil_getrandom_us))
            print(
                String(
                    format: "GetRandom via bare Esys_GetRandom %6.1f µs   (Vigil costs %.1f %% more)",
                    result.esapi_getrandom_us, result.overhead_percent))
        }
    }
}
