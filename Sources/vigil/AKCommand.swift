import ArgumentParser
import Attest
import Foundation
import Node
import SystemSupport

/// Verifier side of credential activation, for operators without a controller: challenge a device's AK and EK
/// from its evidence, then turn the device's answer into the `AKBinding` that `policy test --ak-binding` takes.
struct AKCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ak",
        abstract: "Verifier side: bind a device's AK to its EK by credential activation (no TPM needed).",
        discussion: """
            vigil ak challenge --evidence bundle.json --out challenge.json    # writes challenge.json and challenge.json.secret (0600)
            vigil tpm activate-credential --challenge challenge.json --out answer.bin   # on the device
            vigil ak bind --challenge challenge.json --answer answer.bin --out binding.json
            """,
        subcommands: [Challenge.self, Bind.self])

    struct Challenge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "TPM2_MakeCredential for the evidence's AK and EK; keeps the secret in OUT.secret (0600).")
        @Option(help: "The device's evidence bundle (its EK certificate, EK public area and AK).") var evidence: String
        @Option(help: "Where to write the challenge (JSON) for the device.") var out: String

        func run() async throws {
            try await reportingErrors {
                let bundle = try EvidenceBundle(json: try readInput(evidence, limit: EvidenceBundle.maxSize))
                var secret = [UInt8](repeating: 0, count: 32)
                var rng = SystemRandomNumberGenerator()
                for i in secret.indices { secret[i] = rng.next() }
                defer { for i in secret.indices { secret[i] = 0 } }
                let challenge = try CredentialChallenge.make(for: bundle, secret: secret)
                try AtomicFile.write(secret, to: URL(fileURLWithPath: out + ".secret"), mode: 0o600)
                try AtomicFile.write(try challenge.json(), to: URL(fileURLWithPath: out))
                print(
                    "challenge for AK \(challenge.akName) written to \(out); the expected answer is in \(out).secret (keep it on the verifier)"
                )
            }
        }
    }

    struct Bind: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Check the device's answer to a challenge and write the AK binding (JSON) for policy test --ak-binding."
        )
        @Option(help: "The challenge (JSON) the device answered.") var challenge: String
        @Option(help: "The secret kept when the challenge was made (default: CHALLENGE.secret).") var secret: String?
        @Option(help: "The device's answer (vigil tpm activate-credential --out).") var answer: String
        @Option(help: "Where to write the binding (JSON).") var out: String

        func run() async throws {
            try await reportingErrors {
                let c = try CredentialChallenge(json: try readInput(challenge, limit: CredentialChallenge.maxJSONSize))
                var expected = try readInput(secret ?? challenge + ".secret", limit: 64)
                var response = try readInput(answer, limit: 64)
                defer {
                    for i in expected.indices { expected[i] = 0 }
                    for i in response.indices { response[i] = 0 }
                }
                let binding = try c.binding(response: response, expected: expected)
                try AtomicFile.write(try binding.json(), to: URL(fileURLWithPath: out))
                print(
                    "AK \(binding.akName) is bound to EK key \(binding.ekPublicKeySHA256.prefix(16))…: written to \(out)"
                )
            }
        }
    }
}
