import ArgumentParser
import Attest
import Policy
import Foundation

struct PolicyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy", abstract: "Attestation policies for security teams: lint, test offline, capture, diff, explain.",
        subcommands: [Lint.self, Test.self, FromEvidence.self, Diff.self, Explain.self])

    struct EvidenceOptions: ParsableArguments {
        @Option(help: "An evidence bundle (JSON) to verify and evaluate.") var evidence: String?
        @Option(help: "For authoring: a bare event log whose replay is taken as the PCR values (unsigned).") var eventlog: String?

        func validate() throws {
            guard (evidence == nil) != (eventlog == nil) else { throw ValidationError("give exactly one of --evidence or --eventlog") }
        }

        func load(policy: AttestationPolicy?, policyPath: String?) async throws -> (PolicyEvidence, String) {
            if let eventlog {
                return (.unsigned(eventLog: try EventLogCommand.load(eventlog)), eventlog)
            }
            let path = evidence ?? ""
            let bundle = try EvidenceBundle(json: try readInput(path, limit: EvidenceBundle.maxSize))
            let folder = ((policyPath ?? path) as NSString).deletingLastPathComponent
            let p = policy ?? AttestationPolicy(id: "none", version: 1)
            return (try await PolicyEvidencePreparer.prepare(bundle, policy: p, policyFolder: folder), path)
        }
    }

    struct Lint: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check policies: syntax, keys, types, references, extends. Exit 0 or 1.")
        @Argument(help: "Policy files.") var files: [String]

        func run() async throws {
            var failed = false
            for file in files {
                do {
                    let p = try PolicyLoader.load(file, others: files)
                    if p.acceptAny {
                        print("\(file):1:1: warning: policy \"\(p.id)\" accepts any device (accept: any)")
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
                let verdict = PolicyEngine.evaluate(evidence, policy)
                if ear {
                    try printJSON(EARAppraisal(verdict))
                } else if json {
                    try printJSON(verdict)
                } else {
                    if evidence.unsigned { print("note: \(source) is unsigned evidence (a bare event log): nothing was signed by a TPM") }
                    for r in verdict.results where r.status == .failed { print(r.line) }
                    print("\(verdict.pass ? "PASS" : "FAIL") \(policy.id)@\(policy.version): \(verdict.results.filter { $0.status == .passed }.count) passed, \(verdict.failures.count) failed, \(verdict.warnings.count) warnings, \(verdict.results.filter { $0.status == .notApplicable }.count) not applicable")
                }
                if !verdict.pass { throw ExitCode(1) }
            }
        }
    }

    struct FromEvidence: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "from-evidence", abstract: "Golden capture: print a policy that accepts this known-good device's boot.")
        @OptionGroup var input: EvidenceOptions
        @Option(help: "PCRs to pin, e.g. 0-9,14.") var pcrs: String = "0-9,14"
        @Option(help: "The new policy's id.") var id: String = "captured"

        func run() async throws {
            try await reportingErrors {
                guard let selection = TPMLPCRSelection(parsingSpec: "sha256:" + pcrs) else { throw ValidationError("--pcrs \"\(pcrs)\" is not like 0-9,14") }
                let (evidence, source) = try await input.load(policy: nil, policyPath: nil)
                print(PolicyCapture.yaml(from: evidence, id: id, source: URL(fileURLWithPath: source).lastPathComponent, pcrs: selection.selections[0].pcrs), terminator: "")
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
