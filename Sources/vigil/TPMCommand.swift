public import ArgumentParser
import Attest
public import AttestTPM
import Foundation
import Node
import SystemSupport

struct TPMCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tpm",
        abstract: "Device side: provision the TPM-rooted identity, inspect the TPM, read PCRs, quote.",
        subcommands: [
            Provision.self, Info.self, PCRs.self, Quote.self, Evidence.self, ActivateCredential.self, ReplayLog.self,
        ]
    )

    struct Provision: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create or load the EKs, SRK, attestation key, device key and device certificate (idempotent).")

        @OptionGroup var tpmOptions: TPMOptions
        @Option(name: .long, help: "Attestation key algorithm for a new AK: ecc (P-256) or rsa (2048).")
        var akAlgorithm: IdentityKeyTemplates.AKAlgorithm = .eccP256
        @Flag(help: "Print the report as JSON.") var json = false

        func run() async throws {
            try await reportingErrors {
                let tpm = try await tpmOptions.open()
                let report = try await IdentityProvisioner(tpm: tpm, akAlgorithm: akAlgorithm).provision()
                if json {
                    try printJSON(report)
                    return
                }
                for item in report.items {
                    print(
                        "\(item.state.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)) \(item.object) at \(item.handle): \(item.detail)"
                    )
                }
                print(
                    report.changed ? "Identity provisioned." : "Nothing changed: the identity was already provisioned.")
            }
        }
    }

    struct Info: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Manufacturer, firmware, PCR banks, EKs and their certificates, AK and device identity.")

        @OptionGroup var tpmOptions: TPMOptions
        @Flag(help: "Print as JSON.") var json = false

        func run() async throws {
            try await reportingErrors {
                let info = try await TPMInfo.gather(try await tpmOptions.open())
                if json { try printJSON(info) } else { print(info.text) }
            }
        }
    }

    struct PCRs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "pcrs", abstract: "Read PCRs 0–23 of one or all active banks.")

        @OptionGroup var tpmOptions: TPMOptions
        @Option(help: "Bank to read (sha1, sha256, sha384, sha512, sm3_256). Default: every active bank.")
        var bank: String?
        @Flag(help: "Print as JSON: {\"sha256\": {\"0\": \"hex\", …}}.") var json = false

        func run() async throws {
            try await reportingErrors {
                let tpm = try await tpmOptions.open()
                let banks: [TPMAlgorithmID]
                if let bank {
                    guard let alg = TPMAlgorithmID(name: bank), alg.isHash else {
                        throw ValidationError("unknown PCR bank \"\(bank)\"")
                    }
                    banks = [alg]
                } else {
                    banks = try await tpm.activeBanks()
                }
                let selection = TPMLPCRSelection(banks.map { TPMSPCRSelection(hash: $0, pcrs: 0..<24) })
                let (values, _) = try await tpm.pcrRead(selection)
                if json {
                    try printJSON(values.jsonObject)
                    return
                }
                for alg in banks {
                    print("\(alg.name):")
                    for pcr in 0..<24 {
                        if let v = values[alg, pcr] { print("  \(pcr < 10 ? " " : "")\(pcr): \(Hex.encode(v))") }
                    }
                }
            }
        }
    }

    struct Quote: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Quote PCRs with the attestation key; writes files tpm2_checkquote accepts.",
            discussion: """
                Writes DIR/quote.msg (TPMS_ATTEST), DIR/quote.sig (TPMT_SIGNATURE), DIR/quote.pcrs (tpm2_quote -o format), \
                DIR/ak.pem and DIR/ak.pub. Check with:
                  tpm2_checkquote -u DIR/ak.pem -m DIR/quote.msg -s DIR/quote.sig -f DIR/quote.pcrs -g sha256 -q NONCE
                """)

        @OptionGroup var tpmOptions: TPMOptions
        @Option(help: "PCR selection, tpm2-tools syntax: sha256:0,1,2,3+sha1:0-7.") var pcrs: String
        @Option(help: "The verifier's nonce, hex (up to 64 bytes).") var nonce: String
        @Option(help: "Output directory.") var out: String

        func validate() throws {
            guard TPMLPCRSelection(parsingSpec: pcrs) != nil else {
                throw ValidationError("--pcrs \"\(pcrs)\" is not a PCR selection like sha256:0,1,2")
            }
            guard let n = Hex.decode(nonce), n.count <= 64 else {
                throw ValidationError("--nonce must be hex of at most 64 bytes")
            }
        }

        func run() async throws {
            try await reportingErrors {
                guard let selection = TPMLPCRSelection(parsingSpec: pcrs), let nonceBytes = Hex.decode(nonce) else {
                    throw ExitCode(2)
                }
                let tpm = try await tpmOptions.open()
                let export = try await QuoteExport.make(tpm: tpm, selection: selection, nonce: nonceBytes)
                try export.write(to: URL(fileURLWithPath: out))
                print("Quote over \(selection) written to \(out)/quote.msg, quote.sig, quote.pcrs, ak.pem, ak.pub")
            }
        }
    }
}

extension TPMCommand {
    struct Evidence: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Collect an evidence bundle (quote, PCRs, AK, EK and device certificates, event log) for the verifier.")

        @OptionGroup var tpmOptions: TPMOptions
        @Option(help: "The verifier's nonce, hex (up to 64 bytes).") var nonce: String
        @Option(help: "PCR selection to quote.") var pcrs: String = "sha256:0-23"
        @Option(help: "Event log file (default: \(EvidenceCollector.kernelEventLog) when readable).") var eventlog:
            String?
        @Option(help: "Where to write the bundle (JSON).") var out: String

        func validate() throws {
            guard TPMLPCRSelection(parsingSpec: pcrs) != nil else {
                throw ValidationError("--pcrs \"\(pcrs)\" is not a PCR selection")
            }
            guard let n = Hex.decode(nonce), n.count <= 64 else {
                throw ValidationError("--nonce must be hex of at most 64 bytes")
            }
        }

        func run() async throws {
            try await reportingErrors {
                guard let selection = TPMLPCRSelection(parsingSpec: pcrs), let nonceBytes = Hex.decode(nonce) else {
                    throw ExitCode(2)
                }
                var log: [UInt8]?
                if let eventlog {
                    log = try readInput(eventlog, limit: UnverifiedEventLog.maxLogSize)
                } else if FileManager.default.isReadableFile(atPath: EvidenceCollector.kernelEventLog) {
                    log = try readInput(EvidenceCollector.kernelEventLog, limit: UnverifiedEventLog.maxLogSize)
                }
                let tpm = try await tpmOptions.open()
                let bundle = try await EvidenceCollector.collect(
                    tpm: tpm, nonce: nonceBytes, selection: selection, eventLog: log)
                try AtomicFile.write(try bundle.json(), to: URL(fileURLWithPath: out))
                print(
                    "evidence for \(bundle.deviceID) written to \(out) (\(selection)\(log == nil ? ", no event log" : ", with event log"))"
                )
            }
        }
    }

    struct ActivateCredential: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "activate-credential",
            abstract:
                "Answer a verifier's credential challenge with this TPM's EK and AK (TPM2_ActivateCredential); the answer is written 0600."
        )
        @OptionGroup var tpmOptions: TPMOptions
        @Option(help: "The challenge (JSON) from vigil ak challenge or a controller.") var challenge: String
        @Option(help: "Where to write the answer for the verifier.") var out: String

        func run() async throws {
            try await reportingErrors {
                let c = try CredentialChallenge(json: try readInput(challenge, limit: CredentialChallenge.maxJSONSize))
                let tpm = try await tpmOptions.open()
                let answer = try await CredentialActivation.answer(c, tpm: tpm)
                var bytes = answer.unsafeCopy()
                defer { for i in bytes.indices { bytes[i] = 0 } }
                try AtomicFile.write(bytes, to: URL(fileURLWithPath: out), mode: 0o600)
                print("credential activated with AK \(c.akName); answer written to \(out)")
            }
        }
    }

    struct ReplayLog: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "replay-log",
            abstract: "For software TPMs only: extend the simulator's PCRs with a real machine's event log.",
            discussion:
                "Every bank the TPM has active and the log carries is extended. Refuses real TPM devices, PCRs not at their reset values, and logs whose PCR 0 needs a starting locality the simulator cannot reproduce."
        )

        @OptionGroup var tpmOptions: TPMOptions
        @Argument(help: "The event log file.") var file: String

        func run() async throws {
            try await reportingErrors {
                let log = try EventLogCommand.load(file)
                let tpm = try await tpmOptions.open()
                print("note: replay-log is for software TPMs only (this TPM: \(tpm.tcti))")
                let report = try await EventLogToTPM.replay(log, into: tpm)
                print(
                    "extended \(report.extendedEvents) events into \(report.banks.map(\.name).joined(separator: ", "))"
                        + (report.banksNotInLog.isEmpty
                            ? ""
                            : "; active banks the log has no digests for, left untouched: \(report.banksNotInLog.map(\.name).joined(separator: ", "))")
                )
            }
        }
    }
}

extension IdentityKeyTemplates.AKAlgorithm: ExpressibleByArgument {}
