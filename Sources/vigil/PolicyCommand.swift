import ArgumentParser
import Attest
import Foundation
import Policy

struct PolicyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Attestation policies for security teams: lint, test offline, capture, diff, explain.",
        subcommands: [Lint.self, Test.self, FromEvidence.self, Diff.self, Explain.self])

    /// Verified evidence from a device, or a bare log for authoring.
    enum Input {
        case verified(VerifiedEvidence)
        case unsigned(UnsignedEvidence)
    }

    struct EvidenceOptions: ParsableArguments {
        @Option(help: "An evidence bundle (JSON) to verify and evaluate.") var evidence: String?
        @Option(help: "With --evidence: the nonce (hex) the verifier issued for this evidence. Required.") var nonce:
            String?
        @Option(
            name: .customLong("nonce-issued-at"),
            help: "With --evidence: when the verifier issued the nonce (RFC 3339), for freshness rules.")
        var nonceIssuedAt: String?
        @Option(help: "With --evidence: the device's last accepted evidence bundle, for reboot and clock rules.")
        var previous: String?
        @Option(
            name: .customLong("ak-binding"),
            help: "With --evidence: the credential-activation record (JSON) binding this device's AK to its EK.")
        var akBinding: String?
        @Option(help: "For authoring: a bare event log whose replay is taken as the PCR values (unsigned).")
        var eventlog: String?

        func validate() throws {
            guard (evidence == nil) != (eventlog == nil) else {
                throw ValidationError("give exactly one of --evidence or --eventlog")
            }
            if evidence != nil {
                guard let nonce, !nonce.isEmpty else {
                    throw ValidationError(
                        "--evidence needs --nonce HEX: the nonce the verifier issued (it is never taken from the evidence)"
                    )
                }
                guard Hex.decode(nonce) != nil else { throw ValidationError("--nonce \"\(nonce)\" is not hex") }
            } else if nonce != nil || previous != nil || akBinding != nil || nonceIssuedAt != nil {
                throw ValidationError("--nonce, --nonce-issued-at, --previous and --ak-binding go with --evidence")
            }
        }

        func load(policy: AttestationPolicy?, policyPath: String?, selection: TPMLPCRSelection? = nil) async throws -> (
            Input, String
        ) {
            if let eventlog {
                return (.unsigned(UnsignedEvidence(eventLog: try EventLogCommand.load(eventlog))), eventlog)
            }
            let path = evidence ?? ""
            let bundle = try EvidenceBundle(json: try readInput(path, limit: EvidenceBundle.maxSize))
            let nonceBytes = Hex.decode(nonce ?? "") ?? []
            var issued: Date?
            if let nonceIssuedAt {
                guard let d = ISO8601DateFormatter().date(from: nonceIssuedAt) else {
                    throw ValidationError(
                        "--nonce-issued-at \"\(nonceIssuedAt)\" is not an RFC 3339 time such as 2026-12-01T06:00:00Z")
                }
                issued = d
            }
            var anchors: EKTrustAnchors?
            if let folder = policy?.identity?.ekCA {
                let base = ((policyPath ?? path) as NSString).deletingLastPathComponent
                anchors = try EKTrustAnchors(
                    folder: folder.hasPrefix("/") ? folder : (base as NSString).appendingPathComponent(folder))
            }
            var binding: AKBinding?
            if let akBinding {
                binding = try AKBinding(json: try readInput(akBinding, limit: 16 * 1024))
            }
            var previousQuote: PreviousQuote?
            if let previous {
                previousQuote = try Self.previousQuote(previous, current: bundle)
            }
            let verifier = EvidenceVerifier(
                nonce: nonceBytes, nonceIssuedAt: issued,
                requiredSelection: selection ?? policy.map(PolicyEngine.requiredSelection(for:))
                    ?? TPMLPCRSelection([]),
                anchors: anchors, akBinding: binding, previous: previousQuote)
            return (.verified(try await verifier.verify(bundle)), path)
        }

        /// The previous accepted bundle's quote: it must verify with the current bundle's AK (the same device).
        static func previousQuote(_ path: String, current: EvidenceBundle) throws -> PreviousQuote {
            let old = try EvidenceBundle(json: try readInput(path, limit: EvidenceBundle.maxSize))
            let d = try old.decoded()
            let ak = try AKPublic(try current.decoded().ak)
            guard old.akPublic == current.akPublic else {
                throw AttestError(
                    code: .previousQuote,
                    reason: "--previous \(path): signed by another attestation key than this evidence")
            }
            let quote = try QuoteVerifier(ak: ak).verify(
                attest: d.attest, signature: d.signature, nonce: d.nonce, pcrs: d.pcrs)
            return PreviousQuote(quote)
        }
    }

    struct Lint: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check policies: syntax, keys, types, references, extends. Exit 0 or 1.")
        @Argument(help: "Policy files.") var files: [String]

        func run() async throws {
            var failed = false
            for file in files {
                do {
                    let p = try PolicyLoader.load(file, others: files)
                    if p.acceptAny {
                        print("\(file):1:1: warning: policy \"\(p.id)\" accepts any device (accept: any)")
                    } else if !PolicyEngine.judgesBeyondSignature(p) {
                        print(
                            "\(file):1:1: warning: policy \"\(p.id)\" judges nothing beyond the quote's signature: any TPM-signed evidence passes (add PCR values, boot or identity rules)"
                        )
                    } else {
                        print("\(file): ok (\(PolicyEngine.ruleIDs(of: p).count) rules)")
                    }
                } catch {
                    FileHandle.standardError.write(Data("\(error.description)\n".utf8))
                    failed = true
                }
            }
            if failed { throw ExitCode(1) }
        }
    }

    struct Test: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Verify evidence (signature, nonce, replay) and evaluate a policy. Exit 0 on pass, 1 on fail.")
        @Argument(help: "The policy file.") var file: String
        @OptionGroup var input: EvidenceOptions
        @Flag(help: "Print the verdict as JSON.") var json = false
        @Flag(help: "Print an EAR-style appraisal (AR4SI trust tier and vector) as JSON.") var ear = false

        func run() async throws {
            try await reportingErrors {
                let policy = try PolicyLoader.load(file)
                let (evidence, source) = try await input.load(policy: policy, policyPath: file)
                let verdict: Verdict
                var unsigned = false
                switch evidence {
                case .verified(let e): verdict = PolicyEngine.evaluate(e, policy)
                case .unsigned(let e):
                    verdict = PolicyEngine.evaluate(e, policy)
                    unsigned = true
                }
                if ear {
                    try printJSON(EARAppraisal(verdict))
                } else if json {
                    try printJSON(verdict)
                } else {
                    if unsigned {
                        print("note: \(source) is unsigned evidence (a bare event log): nothing was signed by a TPM")
                    }
                    for r in verdict.results where r.status == .failed { print(r.line) }
                    print(
                        "\(verdict.pass ? "PASS" : "FAIL") \(policy.id)@\(policy.version): \(verdict.results.filter { $0.status == .passed }.count) passed, \(verdict.failures.count) failed, \(verdict.warnings.count) warnings, \(verdict.results.filter { $0.status == .notApplicable }.count) not applicable"
                    )
                }
                if !verdict.pass { throw ExitCode(1) }
            }
        }
    }

    struct FromEvidence: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "from-evidence",
            abstract: "Golden capture: print a policy that accepts this known-good device's boot.")
        @OptionGroup var input: EvidenceOptions
        @Option(help: "PCRs to pin, e.g. 0-9,14.") var pcrs: String = "0-9,14"
        @Option(help: "The new policy's id.") var id: String = "captured"

        func run() async throws {
            try await reportingErrors {
                guard let selection = TPMLPCRSelection(parsingSpec: "sha256:" + pcrs) else {
                    throw ValidationError("--pcrs \"\(pcrs)\" is not like 0-9,14")
                }
                let (evidence, source) = try await input.load(policy: nil, policyPath: nil, selection: selection)
                let name = URL(fileURLWithPath: source).lastPathComponent
                let pcrs = selection.selections.first?.pcrs ?? []
                switch evidence {
                case .verified(let e):
                    print(PolicyCapture.yaml(from: e, id: id, source: name, pcrs: pcrs), terminator: "")
                case .unsigned(let e):
                    print(PolicyCapture.yaml(from: e, id: id, source: name, pcrs: pcrs), terminator: "")
                }
            }
        }
    }

    struct Diff: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "What NEW accepts or refuses that OLD did not.")
        @Argument var old: String
        @Argument var new: String
        func run() async throws {
            try await reportingErrors {
                let lines = PolicyDiff.lines(old: try PolicyLoader.load(old), new: try PolicyLoader.load(new))
                print(lines.isEmpty ? "no difference in what the policies accept" : lines.joined(separator: "\n"))
            }
        }
    }

    struct Explain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The policy in plain words.")
        @Argument var file: String
        func run() async throws {
            try await reportingErrors { print(PolicyExplainer.text(try PolicyLoader.load(file))) }
        }
    }
}
