import Attest
import AttestTPM
import Foundation
import Node
import Policy
import ProcessSupport
import Testing
import VigilTestSupport

/// A real machine's boot replayed into swtpm, quoted by Vigil's AK, and verified with the event log:
/// the whole measured-boot path end to end, through the `vigil` binary a user runs.
@Suite(.enabled(if: SoftwareTPM.canRunTPM2Tools, "swtpm or tpm2-tools is not installed"))
struct EventLogOnTPMTests {
    static let logs = SoftwareTPM.repositoryRoot.appendingPathComponent("Tests/AttestTests/Fixtures/eventlogs")

    @Test func replayLogThenQuoteThenVerifyWithTheEventLogPassesEndToEnd() async throws {
        let session = try VigilCLISession()
        defer { session.close() }
        let dir = session.directory
        let log = Self.logs.appendingPathComponent("gce-rhel8-sb.bin").path

        #expect(try session.vigil(["tpm", "provision"]).status == 0)
        let replay = try session.vigil(["tpm", "replay-log", log])
        #expect(replay.status == 0, "\(replay.stderr)")
        #expect(replay.stdout.contains("for software TPMs only"))
        let nonce = "5eed5eed5eed5eed"
        let quote = try session.vigil([
            "tpm", "quote", "--pcrs", "sha256:0-9+sha1:0-9+sha384:0-9", "--nonce", nonce, "--out", dir.path,
        ])
        #expect(quote.status == 0, "\(quote.stderr)")
        func verify(_ eventlog: String, nonce: String = nonce) throws -> ProcessResult {
            try ProcessRunner.run(
                ProcessRunner.vigilExecutable,
                [
                    "quote", "verify", "--ak", dir.appendingPathComponent("ak.pem").path,
                    "--message", dir.appendingPathComponent("quote.msg").path,
                    "--signature", dir.appendingPathComponent("quote.sig").path,
                    "--pcrs", dir.appendingPathComponent("quote.pcrs").path, "--nonce", nonce, "--eventlog", eventlog,
                ])
        }
        let ok = try verify(log)
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stdout.contains("event log matches the quote"), "\(ok.stdout)")
        // The TPM's replayed PCRs equal Vigil's in-process replay, in all three banks.
        let tpm = try await session.simulator.open()
        let (values, _) = try await tpm.pcrRead(
            TPMLPCRSelection([.sha1, .sha256, .sha384].map { TPMSPCRSelection(hash: $0, pcrs: 0..<10) }))
        let expected = EventLogReplay(
            try UnverifiedEventLog(bytes: Array(try Data(contentsOf: URL(fileURLWithPath: log))))
        ).values
        for bank: TPMAlgorithmID in [.sha1, .sha256, .sha384] {
            for pcr in 0..<10 where expected[bank, pcr] != nil {
                #expect(values[bank, pcr] == expected[bank, pcr], "\(bank.name):\(pcr)")
            }
        }
        // Another machine's log against this quote is refused, naming a PCR.
        let other = try verify(Self.logs.appendingPathComponent("gce-cos85-attested.bin").path)
        #expect(other.status == 1)
        #expect(other.stderr.contains("vigil: event log does not match the quote at "), "\(other.stderr)")
        // And the right log under a wrong nonce.
        let wrongNonce = try verify(log, nonce: "00")
        #expect(wrongNonce.status == 1)
        #expect(wrongNonce.stderr.contains("nonce"))

        // Replaying again is refused: the PCRs are no longer at their reset values.
        let again = try session.vigil(["tpm", "replay-log", log])
        #expect(again.status == 1)
        #expect(again.stderr.contains("not at its reset value"), "\(again.stderr)")
    }

    @Test func aStartupLocalityLogIsReproducedOnSwtpmUpToTheRealTPMsPCR0() async throws {
        let simulator = try SoftwareTPM()
        defer { simulator.stop() }
        let tpm = try await simulator.open()
        let name = "laptop-glinux-nosb.bin"  // StartupLocality 3; the real TPM's PCRs are recorded
        let log = try UnverifiedEventLog(bytes: Array(try Data(contentsOf: Self.logs.appendingPathComponent(name))))
        let report = try await EventLogToTPM.replay(log, into: tpm)
        #expect(report.banks == [.sha1, .sha256])
        let truth = try JSONDecoder().decode(
            [String: [String: String]].self,
            from: Data(contentsOf: Self.logs.appendingPathComponent("laptop-glinux-nosb.pcrs.json")))
        let (values, _) = try await tpm.pcrRead(
            TPMLPCRSelection([TPMSPCRSelection(hash: .sha256, pcrs: 0..<8), TPMSPCRSelection(hash: .sha1, pcrs: 0..<8)])
        )
        for (bank, alg) in [("sha256", TPMAlgorithmID.sha256), ("sha1", .sha1)] {
            for pcr in 0..<8 {
                #expect(values[alg, pcr].map { Hex.encode($0) } == truth[bank]?[String(pcr)], "\(bank) PCR \(pcr)")
            }
        }
    }
}

/// Signed evidence from swtpm booted as a real machine, through the policies security teams write.
@Suite(.enabled(if: SoftwareTPM.canRun, "swtpm is not installed (apt-get install swtpm swtpm-tools)"))
struct SignedEvidencePolicyTests {
    @Test func evidenceFromTheTPMPassesItsMachinesPoliciesAndFailsAnothers() async throws {
        let session = try VigilCLISession()
        defer { session.close() }
        let dir = session.directory
        let root = SoftwareTPM.repositoryRoot
        let log = root.appendingPathComponent("Tests/AttestTests/Fixtures/eventlogs/gce-rhel8-sb.bin").path
        #expect(try session.vigil(["tpm", "provision"]).status == 0)
        #expect(try session.vigil(["tpm", "replay-log", log]).status == 0)
        let bundle = dir.appendingPathComponent("evidence.json").path
        let collect = try session.vigil(["tpm", "evidence", "--nonce", "a1b2c3d4", "--eventlog", log, "--out", bundle])
        #expect(collect.status == 0, "\(collect.stderr)")

        // The evidence verifies and carries the EK certificate, device certificate and log.
        let parsed = try EvidenceBundle(json: Array(try Data(contentsOf: URL(fileURLWithPath: bundle))))
        #expect(parsed.ekCertificate != nil && parsed.deviceCertificate != nil && parsed.eventLog != nil)
        let required = TPMLPCRSelection([TPMSPCRSelection(hash: .sha256, pcrs: Array(0...9))])
        let verified = try await EvidenceVerifier(nonce: [0xA1, 0xB2, 0xC3, 0xD4], requiredSelection: required).verify(
            parsed)
        #expect(verified.quote.pcrs.banks[.sha256]?.count == 24)
        #expect(verified.eventLog?.isConsistent == true)
        await #expect(throws: AttestError.self) {
            try await EvidenceVerifier(nonce: [0], requiredSelection: required).verify(parsed)
        }

        let issued = ISO8601DateFormatter().string(from: Date())
        func policyTest(_ policy: String) throws -> ProcessResult {
            try ProcessRunner.run(
                ProcessRunner.vigilExecutable,
                [
                    "policy", "test", root.appendingPathComponent(policy).path, "--evidence", bundle,
                    "--nonce", "a1b2c3d4", "--nonce-issued-at", issued,
                ])
        }
        // Without --nonce the verifier refuses to guess it from the evidence.
        let noNonce = try ProcessRunner.run(
            ProcessRunner.vigilExecutable,
            [
                "policy", "test", root.appendingPathComponent("policies/captured/gce-rhel8-sb.yaml").path, "--evidence",
                bundle,
            ])
        #expect(noNonce.status != 0 && noNonce.stderr.contains("--nonce"), "\(noNonce.stderr)")
        // Everything the boot shows passes; the EK certificate rule fails until credential activation binds the AK to the EK.
        let unbound = try policyTest("policies/strict-secureboot-linux.yaml")
        #expect(unbound.status == 1, "\(unbound.stdout)\(unbound.stderr)")
        #expect(
            unbound.stdout.contains(
                "FAIL identity.ek_certificate: expected an EK certificate, bound to the AK, found AK not bound to the EK"
            ), "\(unbound.stdout)")
        #expect(unbound.stdout.contains("1 failed"), "\(unbound.stdout)")
        // Credential activation through the CLI: the verifier challenges, the device's TPM answers, the verifier binds.
        let challenge = dir.appendingPathComponent("challenge.json").path,
            answer = dir.appendingPathComponent("answer.bin").path
        let binding = dir.appendingPathComponent("binding.json").path
        #expect(
            try ProcessRunner.run(
                ProcessRunner.vigilExecutable, ["ak", "challenge", "--evidence", bundle, "--out", challenge]
            ).status == 0)
        let activated = try session.vigil(["tpm", "activate-credential", "--challenge", challenge, "--out", answer])
        #expect(activated.status == 0, "\(activated.stderr)")
        let attributes = try FileManager.default.attributesOfItem(atPath: answer)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let bound = try ProcessRunner.run(
            ProcessRunner.vigilExecutable,
            ["ak", "bind", "--challenge", challenge, "--answer", answer, "--out", binding])
        #expect(bound.status == 0, "\(bound.stderr)")
        // A wrong answer binds nothing.
        let wrong = dir.appendingPathComponent("wrong.bin").path
        try Data(repeating: 7, count: 32).write(to: URL(fileURLWithPath: wrong))
        let refused = try ProcessRunner.run(
            ProcessRunner.vigilExecutable,
            ["ak", "bind", "--challenge", challenge, "--answer", wrong, "--out", binding + ".x"])
        #expect(
            refused.status != 0 && !FileManager.default.fileExists(atPath: binding + ".x"),
            "\(refused.stdout)\(refused.stderr)")
        func boundTest(_ policy: String, _ extra: [String] = []) throws -> ProcessResult {
            try ProcessRunner.run(
                ProcessRunner.vigilExecutable,
                [
                    "policy", "test", policy, "--evidence", bundle, "--nonce", "a1b2c3d4",
                    "--nonce-issued-at", issued, "--ak-binding", binding,
                ] + extra)
        }
        let strict = try boundTest(root.appendingPathComponent("policies/strict-secureboot-linux.yaml").path)
        #expect(strict.status == 0, "\(strict.stdout)\(strict.stderr)")
        let captured = try policyTest("policies/captured/gce-rhel8-sb.yaml")
        #expect(captured.status == 0, "\(captured.stdout)")
        let other = try policyTest("policies/captured/ubuntu-supermicro-h12ssl.yaml")
        #expect(other.status == 1)
        #expect(other.stdout.contains("FAIL pcrs.sha256.0"), "\(other.stdout)")

        // With the EK CA folder of the fixtures, the chain rule checks the swtpm EK certificate.
        let policy = dir.appendingPathComponent("ek.yaml")
        try
            "id: ek\nversion: 1\nidentity:\n  ek_certificate: required\n  ek_ca: \(root.appendingPathComponent("swtpm-fixtures/ca").path)\n  manufacturers: [\"id:00001014\"]\n"
            .write(to: policy, atomically: true, encoding: .utf8)
        let ek = try ProcessRunner.run(
            ProcessRunner.vigilExecutable,
            ["policy", "test", policy.path, "--evidence", bundle, "--nonce", "a1b2c3d4", "--json"])
        #expect(ek.status == 1, "\(ek.stdout)\(ek.stderr)")
        let verdict = try JSONDecoder().decode(Verdict.self, from: Data(ek.stdout.utf8))
        // The chain itself validates; the rules fail only because no credential activation bound the AK.
        let chain = try #require(verdict.results.first { $0.rule == "identity.ek_chain" })
        #expect(chain.status == .failed && chain.actual.hasPrefix("AK not bound to the EK"), "\(chain)")
        // With the binding, the EK chain, the certificate and the manufacturer pass.
        let identity = try boundTest(policy.path, ["--json"])
        #expect(identity.status == 0, "\(identity.stdout)\(identity.stderr)")
    }
}

/// Banks must agree: facts come from one trusted bank, and every other trusted bank that was quoted must verify
/// the same PCRs (a log whose SHA-1 digests were edited while its SHA-256 ones were left alone is refused).
@Suite(.serialized)
struct BankAgreementTests {
    @Test func aLogEditedInOneBankMakesTheTrustedBanksDisagree() async throws {
        let session = try VigilCLISession()
        defer { session.close() }
        let root = SoftwareTPM.repositoryRoot
        let log = root.appendingPathComponent("Tests/AttestTests/Fixtures/eventlogs/gce-rhel8-sb.bin").path
        #expect(try session.vigil(["tpm", "provision"]).status == 0)
        #expect(try session.vigil(["tpm", "replay-log", log]).status == 0)
        let path = session.directory.appendingPathComponent("two-banks.json").path
        let collect = try session.vigil([
            "tpm", "evidence", "--nonce", "0badcafe", "--pcrs", "sha1:0-9+sha256:0-9", "--eventlog", log, "--out", path,
        ])
        #expect(collect.status == 0, "\(collect.stderr)")
        var bundle = try EvidenceBundle(json: Array(try Data(contentsOf: URL(fileURLWithPath: path))))
        let encodedLog = try #require(bundle.eventLog)
        let decodedLog = try #require(Data(base64Encoded: encodedLog))
        var bytes = Array(decodedLog)
        let parsed = try UnverifiedEventLog(bytes: bytes)
        let sb = try #require(parsed.events.first { $0.pcrIndex == 7 && $0.type == .efiVariableDriverConfig })
        // TCG_PCR_EVENT2: pcrIndex(4) eventType(4) count(4), then per bank algorithm(2, LE) and digest.
        var at = sb.offset + 12
        for alg in parsed.specID?.algorithms ?? [] {
            if alg.id == .sha1 {
                bytes[at + 2] ^= 0xFF
                break
            }
            at += 2 + alg.digestSize
        }
        bundle.eventLog = Data(bytes).base64EncodedString()
        let required = TPMLPCRSelection([
            TPMSPCRSelection(hash: .sha1, pcrs: [7]), TPMSPCRSelection(hash: .sha256, pcrs: [7]),
        ])
        let e = try await EvidenceVerifier(nonce: [0x0B, 0xAD, 0xCA, 0xFE], requiredSelection: required).verify(bundle)
        let policy = try PolicyLoader.parse(
            "id: t\nversion: 1\npcrs:\n  banks: [sha256, sha1]\nboot:\n  secure_boot: required\n", file: "t.yaml")
        let r = try #require(PolicyEngine.evaluate(e, policy).results.first { $0.rule == "boot.secure_boot" })
        #expect(r.status == .failed && r.actual.contains("banks disagree"), "\(r)")
        // Trusting SHA-256 alone, the same evidence passes: the edit is only in a bank the policy no longer relies on.
        let sha256Only = try PolicyLoader.parse(
            "id: t\nversion: 1\npcrs:\n  banks: [sha256]\nboot:\n  secure_boot: required\n", file: "t.yaml")
        #expect(PolicyEngine.evaluate(e, sha256Only).results.first { $0.rule == "boot.secure_boot" }?.status == .passed)
    }
}
