import ArgumentParser
import Controller
import ControllerProtocol
import Foundation

/// `vigil result verify`: a relying party checks a controller's signed attestation result offline.
struct ResultCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "result", abstract: "Check signed attestation results offline.", subcommands: [Verify.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Verify an attestation result (JWT, ES256): exit 0 if it is valid and says pass, 1 otherwise.")
        @Argument(help: "The token, or @FILE to read it from a file.") var token: String
        @Option(help: "The controller's result-signing.pub.pem.") var key: String
        @Option(
            help:
                "The controller's signed revocation list (GET /v1/revocations, valid 5 minutes): a result of a revoked device is refused."
        )
        var revocations: String?
        @Flag(help: "Print the claims as JSON.") var json = false

        func run() async throws {
            try await reportingErrors {
                let text =
                    token.hasPrefix("@")
                    ? String(decoding: try readInput(String(token.dropFirst()), limit: 64 * 1024), as: UTF8.self)
                    : token
                let pem = String(decoding: try readInput(key, limit: 64 * 1024), as: UTF8.self)
                let result: AttestationResult
                do {
                    result = try await AttestationResult.verify(
                        text.trimmingCharacters(in: .whitespacesAndNewlines), publicKeyPEM: pem)
                } catch {
                    FileHandle.standardError.write(Data("vigil: the result does not verify: \(error)\n".utf8))
                    throw ExitCode(1)
                }
                if let revocations {
                    let list: RevocationList
                    do {
                        let text = String(decoding: try readInput(revocations, limit: 16 << 20), as: UTF8.self)
                        list = try await RevocationList.verify(
                            text.trimmingCharacters(in: .whitespacesAndNewlines), publicKeyPEM: pem)
                    } catch {
                        FileHandle.standardError.write(
                            Data(
                                "vigil: the revocation list does not verify (signature, type or expiry: fetch a fresh one): \(error)\n"
                                    .utf8))
                        throw ExitCode(1)
                    }
                    if let entry = list.entry(for: result.device) {
                        FileHandle.standardError.write(
                            Data(
                                "vigil: device \(result.device) is revoked (since \(entry.revokedAt), list issued \(list.issuedAtDate)): its result is not to be relied on\n"
                                    .utf8))
                        throw ExitCode(1)
                    }
                }
                if json {
                    try printJSON(result)
                } else {
                    print(
                        "\(result.passed ? "PASS" : "FAIL") \(result.device) policy \(result.policy), issued \(result.issuedAtDate), expires \(result.expiresDate)"
                    )
                    if !result.failedRules.isEmpty { print("failed: \(result.failedRules.joined(separator: ", "))") }
                    if result.akActivated == false {
                        print(
                            "identity: the AK was not bound to the EK by credential activation (attested through EVE's API: the device certificate vouches for it)"
                        )
                    }
                }
                if !result.passed { throw ExitCode(1) }
            }
        }
    }
}
