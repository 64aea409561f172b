import ArgumentParser
import Attest
import Foundation

struct QuoteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quote", abstract: "Verifier side: check TPM quotes (no TPM needed).", subcommands: [Verify.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Verify a quote: signature, nonce, PCR selection and digest, and optionally the event log against it.",
            discussion: "Exit 0 when valid; exit 1 with the reason on stderr.")

        @Option(help: "The attestation key: PEM (SubjectPublicKeyInfo), TPM2B_PUBLIC or TPMT_PUBLIC.") var ak: String
        @Option(help: "TPMS_ATTEST (tpm2_quote -m).") var message: String
        @Option(help: "TPMT_SIGNATURE (tpm2_quote -s).") var signature: String
        @Option(help: "PCR values: tpm2_quote -o format, or JSON {\"sha256\": {\"0\": \"hex\", …}}.") var pcrs: String
        @Option(help: "The nonce the verifier issued, hex.") var nonce: String
        @Option(help: "A TCG event log to replay against the quoted PCRs.") var eventlog: String?
        @Flag(help: "Print the verified result as JSON.") var json = false

        func validate() throws {
            guard Hex.decode(nonce) != nil else { throw ValidationError("--nonce must be hex") }
        }

        static func read(_ path: String, limit: Int = 1 << 20) throws -> [UInt8] { try readInput(path, limit: limit) }

        struct Output: Encodable {
            let valid: Bool
            let nonce: String
            let selection: String
            let clock: UInt64
            let reset_count: UInt32
            let restart_count: UInt32
            let safe: Bool
            let firmware_version: String
            let eventlog: EventLogOutput?
        }
        struct EventLogOutput: Encodable {
            let format: String
            let matched: [String: [Int]]
            let verified_events: Int
            let workarounds: [String]
        }

        func run() async throws {
            try await reportingErrors {
                let akBytes = try Self.read(ak)
                let akKey: AKPublic
                if let text = String(validating: akBytes, as: UTF8.self), text.contains("-----BEGIN") {
                    akKey = try AKPublic(bareSigningKeyPEM: text)
                    FileHandle.standardError.write(
                        Data(
                            "note: \(ak) is a bare public key: its TPM attributes and Name are not checked (give its TPM2B_PUBLIC to check them)\n"
                                .utf8))
                } else {
                    akKey = try AKPublic(try TPMTPublic(tpmPublicBytes: akBytes))
                }
                let pcrBytes = try Self.read(pcrs)
                let values: PCRValues
                var expected: TPMLPCRSelection?
                if pcrBytes.first == UInt8(ascii: "{") {
                    let object = try JSONDecoder().decode([String: [String: String]].self, from: Data(pcrBytes))
                    values = try PCRValues(jsonObject: object)
                } else {
                    let parsed = try TPM2ToolsPCRFile.parse(pcrBytes)
                    expected = parsed.0
                    values = parsed.1
                }
                guard let nonceBytes = Hex.decode(nonce), !nonceBytes.isEmpty else {
                    throw ValidationError(
                        "--nonce \"\(nonce)\" is not a non-empty hex nonce (the one the verifier issued)")
                }
                let quote = try QuoteVerifier(ak: akKey).verify(
                    attest: try Self.read(message, limit: TPMSAttest.maxSize),
                    signature: try Self.read(signature, limit: TPMTSignature.maxSize),
                    nonce: nonceBytes, pcrs: values, expectedSelection: expected)
                var logOutput: EventLogOutput?
                if let eventlog {
                    let log = try EventLogCommand.load(eventlog)
                    let verified = EventLogVerifier.verify(log, against: quote)
                    if verified.matched.isEmpty && verified.mismatches.isEmpty {
                        throw AttestError(
                            code: .eventLogMismatch,
                            reason:
                                "event log has no digests in the quoted bank(s) (\(quote.selection)): it verifies nothing"
                        )
                    }
                    if verified.extendedPCRs.isDisjoint(with: quote.selection.selections.flatMap(\.pcrs)) {
                        throw AttestError(
                            code: .eventLogMismatch,
                            reason:
                                "event log extends none of the quoted PCRs (\(quote.selection)): it says nothing about this quote"
                        )
                    }
                    if let first = verified.mismatches.first {
                        let culprit = first.eventIndex.map { " (event \($0))" } ?? ""
                        throw AttestError(
                            code: .eventLogMismatch,
                            reason:
                                "event log does not match the quote at \(first.bank.name) PCR \(first.pcr)\(culprit): \(first.explanation)"
                        )
                    }
                    logOutput = EventLogOutput(
                        format: log.format.rawValue,
                        matched: Dictionary(uniqueKeysWithValues: verified.matched.map { ($0.key.name, $0.value) }),
                        verified_events: verified.events.count, workarounds: verified.workarounds.map(\.name))
                }
                let c = quote.clockInfo
                if json {
                    try printJSON(
                        Output(
                            valid: true, nonce: Hex.encode(nonceBytes), selection: quote.selection.description,
                            clock: c.clock,
                            reset_count: c.resetCount, restart_count: c.restartCount, safe: c.safe,
                            firmware_version: String(quote.firmwareVersion, radix: 16), eventlog: logOutput))
                    return
                }
                print(
                    "quote valid: \(quote.selection), nonce \(Hex.encode(nonceBytes)), resetCount \(c.resetCount), restartCount \(c.restartCount), clock \(c.clock) ms\(c.safe ? "" : " (not safe)")"
                )
                if let logOutput {
                    let matched = logOutput.matched.sorted { $0.key < $1.key }.map {
                        "\($0.key): \($0.value.map(String.init).joined(separator: ","))"
                    }
                    print(
                        "event log matches the quote (\(matched.joined(separator: "; "))), \(logOutput.verified_events) verified events"
                            + (logOutput.workarounds.isEmpty
                                ? "" : ", workarounds: \(logOutput.workarounds.joined(separator: ", "))"))
                }
            }
        }
    }
}
