import Attest
import Crypto
import Foundation
import Policy

/// `vigil benchmark`: what the verifier costs on this machine, next to the crypto it cannot avoid.
///
/// - full quote verifications per second (``QuoteVerifier`` on a real ECC P-256 quote: signature,
///   decode, nonce, selection, PCR digest);
/// - raw P-256 ECDSA verifications per second of the same signature with the same library (swift-crypto);
/// - in-process event-log parse + replay time per log (median of repeated runs) and throughput.
public struct VerifierBenchmark: Sendable {
    public struct Result: Codable, Sendable {
        public let quote_verify_per_s: Double
        public let p256_verify_per_s: Double
        /// Quote verification cost over the bare signature check, in percent (median of interleaved rounds).
        public let quote_overhead_percent: Double
        /// File name → median microseconds per parse + replay.
        public let eventlog_us: [String: Double]
        /// File name → median microseconds of the parse alone.
        public let eventlog_parse_us: [String: Double]
        public let eventlog_mb_per_s: Double
        /// File name → median milliseconds of one `tpm2_eventlog` process on the same log, run interleaved with
        /// Vigil's rounds (absent without `--peer-eventlog`, or when the peer fails on the log).
        public let tpm2_eventlog_ms: [String: Double]?
        /// File name → median microseconds to verify the log against PCR values and decode facts per bank (once
        /// per attestation: replay, data binding, facts).
        public let evidence_prepare_us: [String: Double]
        /// File name → median microseconds of one policy evaluation with ``policy_allowed_digests`` allowed
        /// boot-application digests plus PCR, Secure Boot, command-line and event rules.
        public let policy_eval_us_by_log: [String: Double]
        /// The slowest of ``policy_eval_us_by_log``.
        public let policy_eval_us: Double
        public let policy_eval_log: String
        public let policy_allowed_digests: Int
        public let machine: String
    }

    public let eventLogs: [(name: String, bytes: [UInt8])]
    /// How long each measurement runs.
    public let seconds: Double
    /// `tpm2_eventlog` (or another peer taking a log path), run as a process interleaved with Vigil's rounds.
    public let peerEventLogTool: String?

    public init(eventLogs: [(name: String, bytes: [UInt8])], seconds: Double = 1.0, peerEventLogTool: String? = nil) {
        self.eventLogs = eventLogs
        self.seconds = seconds
        self.peerEventLogTool = peerEventLogTool
    }

    /// The logs bundled with Vigil.
    public static func bundledEventLogs() throws -> [(name: String, bytes: [UInt8])] {
        let dir = try resourceDirectory()
        return try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".bin") }
            .sorted().map { ($0, Array(try Data(contentsOf: dir.appendingPathComponent($0)))) }
    }

    static func resourceDirectory() throws -> URL {
        guard let url = Bundle.module.url(forResource: "Resources", withExtension: nil) else {
            throw AttestError(code: .invalidValue, reason: "benchmark resources are missing from this build")
        }
        return url
    }

    static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.isEmpty ? 0 : sorted[sorted.count / 2]
    }

    static func rounded(_ v: Double) -> Double { (v * 10).rounded() / 10 }

    /// Runs `a` and `b` in alternating batches until ``seconds`` have passed (at least 9 rounds each), so that
    /// machine noise hits both alike; returns the median seconds per call of each.
    func interleaved(batch: Int, _ a: () throws -> Void, _ b: () throws -> Void) throws -> (Double, Double) {
        var sa: [Double] = [], sb: [Double] = []
        let end = Self.now() + UInt64(seconds * 2e9)
        repeat {
            var t = Self.now()
            for _ in 0..<batch { try a() }
            sa.append(Double(Self.now() - t) / 1e9 / Double(batch))
            t = Self.now()
            for _ in 0..<batch { try b() }
            sb.append(Double(Self.now() - t) / 1e9 / Double(batch))
        } while Self.now() < end || sa.count < 9
        return (Self.median(sa), Self.median(sb))
    }

    public func run() throws -> Result {
        let dir = try Self.resourceDirectory()
        func load(_ n: String) throws -> [UInt8] { Array(try Data(contentsOf: dir.appendingPathComponent(n))) }
        // The AK as a verifier has it: its TPM public area (attributes, scheme and qualified name all checked).
        let ak = try AKPublic(try TPMTPublic(tpmPublicBytes: try load("quote-ak.pub")))
        let attest = try load("quote.msg"), signature = try load("quote.sig")
        let (selection, values) = try TPM2ToolsPCRFile.parse(try load("quote.pcrs"))
        let nonce = Array("vigil-benchmark".utf8)
        let verifier = QuoteVerifier(ak: ak)
        // Warm up and check that the input is valid: a benchmark of failures would mean nothing.
        let checked = try verifier.verify(
            attest: attest, signature: signature, nonce: nonce, pcrs: values, expectedSelection: selection)
        guard checked.signerHierarchy == .endorsement else {
            throw AttestError(
                code: .invalidValue,
                reason: "benchmark quote: qualifiedSigner is not the AK's endorsement-hierarchy name")
        }

        // The same signature checked raw with the same library: the P-256 key prepared once (as the
        // verifier does), then per check the signature's r||s into the library's type, SHA-256 of the
        // same attest bytes, ECDSA verify.
        guard case .ecc(let p) = ak.publicArea.parameters,
            case .ecc(let r, let s) = try TPMTSignature(bytes: signature).body
        else {
            throw AttestError(code: .invalidValue, reason: "benchmark quote is not ECDSA P-256")
        }
        let key = try P256.Signing.PublicKey(x963Representation: [0x04] + p.x + p.y)
        let pad = { (b: [UInt8]) in [UInt8](repeating: 0, count: max(0, 32 - b.count)) + b }
        let rawSignature = pad(r) + pad(s)
        func rawCheck() throws -> Bool {
            key.isValidSignature(
                try P256.Signing.ECDSASignature(rawRepresentation: rawSignature), for: SHA256.hash(data: attest))
        }
        guard try rawCheck() else { throw AttestError(code: .signatureInvalid, reason: "benchmark signature") }
        let (quoteSeconds, rawSeconds) = try interleaved(
            batch: 100,
            {
                _ = try verifier.verify(
                    attest: attest, signature: signature, nonce: nonce, pcrs: values, expectedSelection: selection)
            }, { _ = try rawCheck() })

        var perLog: [String: Double] = [:], parseOnly: [String: Double] = [:], peer: [String: Double] = [:]
        var prepare: [String: Double] = [:], evaluate: [String: Double] = [:]
        var totalBytes = 0.0, totalSeconds = 0.0
        var digests = 0
        for (name, bytes) in eventLogs {
            // Vigil's parse + replay in batches, alternating with one run of the peer process on the same file.
            let peerPath = peerEventLogTool.flatMap { _ in Self.temporaryCopy(bytes, name: name) }
            defer { if let peerPath { try? FileManager.default.removeItem(atPath: peerPath) } }
            var samples: [Double] = [], parseSamples: [Double] = [], peerSamples: [Double] = []
            var peerFailed = false
            let end = Self.now() + UInt64(seconds * 1e9)
            repeat {
                for _ in 0..<50 {  // a verifier parses logs back to back; the peer is one process per round
                    let start = Self.now()
                    let log = try UnverifiedEventLog(bytes: bytes)
                    parseSamples.append(Double(Self.now() - start) / 1e9)
                    let replay = EventLogReplay(log)
                    samples.append(Double(Self.now() - start) / 1e9)
                    guard !replay.values.banks.isEmpty || log.events.count <= 1 else {
                        throw AttestError(code: .invalidValue, reason: "\(name): empty replay")
                    }
                }
                if let tool = peerEventLogTool, let peerPath, !peerFailed {
                    if let t = Self.timeProcess(tool, [peerPath]) { peerSamples.append(t) } else { peerFailed = true }
                }
            } while Self.now() < end || samples.count < 100
                || (peerEventLogTool != nil && !peerFailed && peerSamples.count < 9)
            let median = Self.median(samples)
            perLog[name] = Self.rounded(median * 1e6)
            parseOnly[name] = Self.rounded(Self.median(parseSamples) * 1e6)
            if !peerSamples.isEmpty && !peerFailed {
                peer[name] = (Self.median(peerSamples) * 1e3 * 100).rounded() / 100
            }
            totalBytes += Double(bytes.count)
            totalSeconds += median
            let (prepareUS, evalUS, count) = try policyEvaluation(bytes, name: name)
            prepare[name] = prepareUS
            evaluate[name] = evalUS
            digests = count
        }
        let worst = evaluate.max { $0.value < $1.value }
        return Result(
            quote_verify_per_s: (1 / quoteSeconds).rounded(), p256_verify_per_s: (1 / rawSeconds).rounded(),
            quote_overhead_percent: Self.rounded((quoteSeconds / rawSeconds - 1) * 100),
            eventlog_us: perLog, eventlog_parse_us: parseOnly,
            eventlog_mb_per_s: totalSeconds > 0 ? Self.rounded(totalBytes / 1e6 / totalSeconds) : 0,
            tpm2_eventlog_ms: peerEventLogTool == nil ? nil : peer, evidence_prepare_us: prepare,
            policy_eval_us_by_log: evaluate, policy_eval_us: worst?.value ?? 0, policy_eval_log: worst?.key ?? "",
            policy_allowed_digests: digests, machine: Self.machine())
    }

    static func temporaryCopy(_ bytes: [UInt8], name: String) -> String? {
        let path = NSTemporaryDirectory() + "vigil-bench-\(ProcessInfo.processInfo.processIdentifier)-\(name)"
        return FileManager.default.createFile(atPath: path, contents: Data(bytes)) ? path : nil
    }

    /// Wall seconds of one run of `tool args` (output discarded); nil when it fails.
    static func timeProcess(_ tool: String, _ args: [String]) -> Double? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = args
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        let start = now()
        do { try process.run() } catch { return nil }
        process.waitUntilExit()
        let elapsed = Double(now() - start) / 1e9
        return process.terminationStatus == 0 ? elapsed : nil
    }

    /// Prepares unsigned evidence from the log (replay, data binding, facts per bank) and evaluates a realistic policy
    /// with 256 allowed boot-application digests (plus the log's own) against it; median microseconds of each.
    func policyEvaluation(_ bytes: [UInt8], name: String) throws -> (Double, Double, Int) {
        let log = try UnverifiedEventLog(bytes: bytes)
        var prepareSamples: [Double] = []
        var evidence = UnsignedEvidence(eventLog: log)
        let prepareEnd = Self.now() + UInt64(seconds * 0.5e9)
        repeat {
            let start = Self.now()
            evidence = UnsignedEvidence(eventLog: try UnverifiedEventLog(bytes: bytes))
            prepareSamples.append(Double(Self.now() - start) / 1e3)
        } while Self.now() < prepareEnd || prepareSamples.count < 20
        let bankID: TPMAlgorithmID =
            evidence.pcrs.banks[.sha256] != nil ? .sha256 : (evidence.pcrs.banks.keys.sorted().first ?? .sha1)
        let bank = bankID.name
        let facts = evidence.facts[bankID]
        var allowed = (0..<256).map { i in Hex.encode((try? TPMDigest.hash(bankID, Array("digest \(i)".utf8))) ?? []) }
        allowed += facts?.bootApplications.compactMap(\.digest) ?? []
        let pcrs = (0...7).map { "    \"\($0)\": replay" }.joined(separator: "\n")
        let yaml = """
            id: benchmark
            version: 1
            reference_sets:
              apps: [\(allowed.joined(separator: ", "))]
            pcrs:
              banks: [\(bank)]
              \(bank):
            \(pcrs)
            boot:
              secure_boot: required
              boot_applications:
                allowed: ["@apps"]
              kernel_cmdline:
                forbidden: [init, rd.break, single]
              forbid: [error_separators, uefi_debug_mode, events_after_exit_boot_services]
            """
        let policy: AttestationPolicy
        do {
            var p = try PolicyLoader.parse(yaml, file: "benchmark.yaml")
            try PolicyLoader.resolveForTesting(&p)
            policy = p
        } catch {
            throw AttestError(code: .invalidValue, reason: "benchmark policy: \(error)")
        }
        var samples: [Double] = []
        let end = Self.now() + UInt64(seconds * 0.5e9)
        repeat {
            let start = Self.now()
            let verdict = PolicyEngine.evaluate(evidence, policy)
            samples.append(Double(Self.now() - start) / 1e3)
            guard !verdict.results.isEmpty else {
                throw AttestError(code: .invalidValue, reason: "\(name): empty verdict")
            }
        } while Self.now() < end || samples.count < 20
        return (Self.rounded(Self.median(prepareSamples)), Self.rounded(Self.median(samples)), allowed.count)
    }

    static func machine() -> String {
        var model = "unknown CPU"
        if let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
            let line = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
            let value = line.split(separator: ":", maxSplits: 1).last
        {
            model = value.trimmingCharacters(in: .whitespaces)
        }
        return "\(model), \(ProcessInfo.processInfo.activeProcessorCount) cores"
    }
}
