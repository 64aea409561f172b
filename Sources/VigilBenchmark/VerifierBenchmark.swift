import Foundation
import Attest
import Policy
import Crypto

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
        /// Quote verification cost over the bare signature check, in percent.
        public let quote_overhead_percent: Double
        /// File name → median microseconds per parse + replay.
        public let eventlog_us: [String: Double]
        /// File name → median microseconds of the parse alone.
        public let eventlog_parse_us: [String: Double]
        public let eventlog_mb_per_s: Double
        /// Median microseconds of one policy evaluation on the largest bundled log, with a policy of
        /// ``policyDigests`` allowed boot-application digests plus PCR, Secure Boot, command-line and event rules.
        public let policy_eval_us: Double
        public let policy_eval_log: String
        public let policy_allowed_digests: Int
        public let machine: String
    }

    public let eventLogs: [(name: String, bytes: [UInt8])]
    /// How long each measurement runs.
    public let seconds: Double

    public init(eventLogs: [(name: String, bytes: [UInt8])], seconds: Double = 1.0) {
        self.eventLogs = eventLogs
        self.seconds = seconds
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

    public func run() throws -> Result {
        let dir = try Self.resourceDirectory()
        func load(_ n: String) throws -> [UInt8] { Array(try Data(contentsOf: dir.appendingPathComponent(n))) }
        let ak = try AKPublic(bareSigningKeyPEM: String(decoding: try load("quote-ak.pem"), as: UTF8.self))
        let attest = try load("quote.msg"), signature = try load("quote.sig")
        let (selection, values) = try TPM2ToolsPCRFile.parse(try load("quote.pcrs"))
        let nonce = Array("vigil-benchmark".utf8)
        let verifier = QuoteVerifier(ak: ak)
        // Warm up and check that the input is valid: a benchmark of failures would mean nothing.
        _ = try verifier.verify(attest: attest, signature: signature, nonce: nonce, pcrs: values, expectedSelection: selection)

        let quoteRate = try rate { _ = try verifier.verify(attest: attest, signature: signature, nonce: nonce, pcrs: values, expectedSelection: selection) }

        // The same signature checked raw with the same library: the P-256 key prepared once (as the
        // verifier does), then per check the signature's r||s into the library's type, SHA-256 of the
        // same attest bytes, ECDSA verify.
        guard case .ecc(let p) = ak.publicArea.parameters, case .ecc(let r, let s) = try TPMTSignature(bytes: signature).body else {
            throw AttestError(code: .invalidValue, reason: "benchmark quote is not ECDSA P-256")
        }
        let key = try P256.Signing.PublicKey(x963Representation: [0x04] + p.x + p.y)
        let pad = { (b: [UInt8]) in [UInt8](repeating: 0, count: max(0, 32 - b.count)) + b }
        let rawSignature = pad(r) + pad(s)
        func rawCheck() throws -> Bool {
            key.isValidSignature(try P256.Signing.ECDSASignature(rawRepresentation: rawSignature), for: SHA256.hash(data: attest))
        }
        guard try rawCheck() else { throw AttestError(code: .signatureInvalid, reason: "benchmark signature") }
        let rawRate = try rate { _ = try rawCheck() }

        var perLog: [String: Double] = [:]
        var parseOnly: [String: Double] = [:]
        var totalBytes = 0.0, totalSeconds = 0.0
        for (name, bytes) in eventLogs {
            var samples: [Double] = []
            var parseSamples: [Double] = []
            let deadline = Date().addingTimeInterval(seconds)
            repeat {
                let start = DispatchTime.now().uptimeNanoseconds
                let log = try UnverifiedEventLog(bytes: bytes)
                parseSamples.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
                let replay = EventLogReplay(log)
                let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                guard !replay.values.banks.isEmpty || log.events.count <= 1 else { throw AttestError(code: .invalidValue, reason: "\(name): empty replay") }
                samples.append(elapsed)
            } while Date() < deadline || samples.count < 5
            samples.sort()
            let median = samples[samples.count / 2]
            perLog[name] = (median * 1e6 * 10).rounded() / 10
            parseSamples.sort()
            parseOnly[name] = (parseSamples[parseSamples.count / 2] * 1e6 * 10).rounded() / 10
            totalBytes += Double(bytes.count)
            totalSeconds += median
        }
        let (evalLog, evalUS, digests) = try policyEvaluation()
        return Result(quote_verify_per_s: quoteRate.rounded(), p256_verify_per_s: rawRate.rounded(),
                      quote_overhead_percent: ((rawRate / quoteRate - 1) * 1000).rounded() / 10,
                      eventlog_us: perLog, eventlog_parse_us: parseOnly, eventlog_mb_per_s: totalSeconds > 0 ? ((totalBytes / 1e6 / totalSeconds) * 10).rounded() / 10 : 0,
                      policy_eval_us: evalUS, policy_eval_log: evalLog, policy_allowed_digests: digests, machine: Self.machine())
    }

    /// Evaluates a realistic policy with 256 allowed boot-application digests against the largest log.
    func policyEvaluation() throws -> (String, Double, Int) {
        guard let (name, bytes) = eventLogs.max(by: { $0.bytes.count < $1.bytes.count }) else { return ("", 0, 0) }
        let log = try UnverifiedEventLog(bytes: bytes)
        let evidence = UnsignedEvidence(eventLog: log)
        let bankID: TPMAlgorithmID = evidence.pcrs.banks[.sha256] != nil ? .sha256 : .sha1
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
        let deadline = Date().addingTimeInterval(seconds)
        repeat {
            let start = DispatchTime.now().uptimeNanoseconds
            let verdict = PolicyEngine.evaluate(evidence, policy)
            samples.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e3)
            guard !verdict.results.isEmpty else { throw AttestError(code: .invalidValue, reason: "empty verdict") }
        } while Date() < deadline || samples.count < 5
        samples.sort()
        return (name, (samples[samples.count / 2] * 10).rounded() / 10, allowed.count)
    }

    /// Calls per second of `body`, over ``seconds``.
    func rate(_ body: () throws -> Void) throws -> Double {
        var count = 0
        let start = DispatchTime.now().uptimeNanoseconds
        let end = start + UInt64(seconds * 1e9)
        var now = start
        while now < end {
            for _ in 0..<50 { try body() }
            count += 50
            now = DispatchTime.now().uptimeNanoseconds
        }
        return Double(count) / (Double(now - start) / 1e9)
    }

    static func machine() -> String {
        var model = "unknown CPU"
        if let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
           let line = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
           let value = line.split(separator: ":", maxSplits: 1).last {
            model = value.trimmingCharacters(in: .whitespaces)
        }
        return "\(model), \(ProcessInfo.processInfo.activeProcessorCount) cores"
    }
}
