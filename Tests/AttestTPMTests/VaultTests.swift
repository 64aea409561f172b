import Attest
import AttestTPM
import Crypto
import Foundation
import ProcessSupport
import Testing
import Vault
import VigilTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// The fscrypt vault end to end through `vigil vault` on swtpm and a loop-mounted ext4 image (root): sealing
/// refused on a TPM whose firmware measured nothing; create → write → lock (unreadable) → unlock (readable);
/// a changed sealed PCR → unlock refused naming it, and status says which.
@Suite(
    .enabled(if: SoftwareTPM.canRun, "swtpm is not installed"),
    .enabled(if: geteuid() == 0 || SoftwareTPM.isCI, "needs root to loop-mount an ext4 image"))
struct VaultTests {
    @Test func createLockUnlockAndAChangedPCRNamedOnUnlock() async throws {
        let session = try VigilCLISession()
        defer { session.close() }
        let fs = try FSCryptTests.Ext4Image()
        try #require(fs.mounted)
        let dir = fs.mountPoint + "/vault"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        #expect(try session.vigil(["tpm", "provision"]).status == 0)

        // A TPM whose PCR 0 was never extended: sealing to it would prove nothing.
        let refused = try session.vigil(["vault", "create", dir])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("PCR 0 is all zeros"), "\(refused.stderr)")

        let log = SoftwareTPM.repositoryRoot.appendingPathComponent(
            "Tests/AttestTests/Fixtures/eventlogs/gce-rhel8-sb.bin"
        ).path
        #expect(try session.vigil(["tpm", "replay-log", log]).status == 0)
        let create = try session.vigil(["vault", "create", dir])
        #expect(create.status == 0, "\(create.stderr)")
        let metadata = fs.mountPoint + "/.vault.vigil-vault.json"
        let mode = try FileManager.default.attributesOfItem(atPath: metadata)[.posixPermissions] as? Int
        #expect(mode == 0o600)

        let text = "vault contents " + UUID().uuidString
        try Data(text.utf8).write(to: URL(fileURLWithPath: dir + "/notes.txt"))
        sync()
        #expect(try session.vigil(["vault", "lock", dir]).status == 0)
        #expect(!FileManager.default.fileExists(atPath: dir + "/notes.txt"))
        #expect(try session.vigil(["vault", "status", dir]).stdout.contains("locked"))

        let unlock = try session.vigil(["vault", "unlock", dir])
        #expect(unlock.status == 0, "\(unlock.stderr)")
        #expect(try String(contentsOfFile: dir + "/notes.txt", encoding: .utf8) == text)

        // A change to a sealed PCR: the TPM refuses, and the vault says which PCR.
        #expect(try session.vigil(["vault", "lock", dir]).status == 0)
        let tpm = try await session.simulator.open()
        try await tpm.pcrExtend(7, digests: [.sha256: Array(SHA256.hash(data: Array("new db entry".utf8)))])
        let denied = try session.vigil(["vault", "unlock", dir])
        #expect(denied.status == 1)
        #expect(denied.stderr.contains("PCR 7"), "\(denied.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/notes.txt"))
        let status = try session.vigil(["vault", "status", dir, "--json"])
        #expect(status.stdout.contains("\"changed_pcrs\" : [\n    7\n  ]"), "\(status.stdout)")
    }
}

/// A vault sealed to signed approvals (PolicyAuthorize): an approved update opens it offline without a reseal;
/// values that were not approved, an edited, expired or foreign approval, and an approval revoked by the counter
/// are refused, each naming why. The approved policy Vigil computes is the one the TPM computes.
@Suite(
    .enabled(if: SoftwareTPM.canRun, "swtpm is not installed"),
    .enabled(if: geteuid() == 0 || SoftwareTPM.isCI, "needs root to loop-mount an ext4 image"))
struct VaultApprovalTests {
    @Test func approvedPCRsOpenOfflineAndExpiredEditedForeignOrRevokedApprovalsAreRefused() async throws {
        let session = try VigilCLISession()
        defer { session.close() }
        let fs = try Ext4Image()
        try #require(fs.mounted, "\(fs.failure ?? "")")
        let dir = fs.mountPoint + "/vault"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        let work = try ProcessRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: work) }
        func file(_ name: String) -> String { work.appendingPathComponent(name).path }
        #expect(try session.vigil(["tpm", "provision"]).status == 0)
        let log = SoftwareTPM.repositoryRoot.appendingPathComponent(
            "Tests/AttestTests/Fixtures/eventlogs/gce-rhel8-sb.bin"
        ).path
        #expect(try session.vigil(["tpm", "replay-log", log]).status == 0)

        let team = P256.Signing.PrivateKey()
        try team.pemRepresentation.write(toFile: file("team.pem"), atomically: true, encoding: .utf8)
        try team.publicKey.pemRepresentation.write(toFile: file("team.pub.pem"), atomically: true, encoding: .utf8)
        let create = try session.vigil(["vault", "create", dir, "--authorize-key", file("team.pub.pem")])
        #expect(create.status == 0, "\(create.stderr)")
        let text = "approved " + UUID().uuidString
        try Data(text.utf8).write(to: URL(fileURLWithPath: dir + "/notes.txt"))
        sync()
        #expect(try session.vigil(["vault", "lock", dir]).status == 0)
        let bare = try session.vigil(["vault", "unlock", dir])
        #expect(bare.status == 1)
        #expect(bare.stderr.contains("signed approval"), "\(bare.stderr)")

        let tpm = try await session.simulator.open()
        let pcrs = PCRSealedKey.defaultPCRs
        func approve(_ name: String, values: PCRValues, expires: String = "1d", key: String = "team.pem") throws
            -> ProcessResult
        {
            let status = try session.vigil(["vault", "status", dir, "--json"])
            try Data(status.stdout.utf8).write(to: URL(fileURLWithPath: file("descriptor.json")))
            try Data(try JSONSerialization.data(withJSONObject: values.jsonObject)).write(
                to: URL(fileURLWithPath: file(name + ".values.json")))
            return try session.vigil([
                "vault", "approve-pcrs", "--key", file(key), "--vault", file("descriptor.json"), "--pcr-values",
                file(name + ".values.json"), "--expires", expires, "--note", name, "--out", file(name + ".json"),
            ])
        }
        let selection = TPMLPCRSelection([TPMSPCRSelection(hash: .sha256, pcrs: pcrs)])
        let now = try await tpm.pcrRead(selection).values
        #expect(try approve("current", values: now).status == 0)
        let current = try session.vigil(["vault", "unlock", dir, "--approval", file("current.json")])
        #expect(current.status == 0, "\(current.stderr)")
        #expect(try String(contentsOfFile: dir + "/notes.txt", encoding: .utf8) == text)
        #expect(try session.vigil(["vault", "lock", dir]).status == 0)

        // The approved policy is the one the TPM computes (trial session: PolicyPCR, then PolicyNV).
        let approval = try PCRApproval(json: Array(try Data(contentsOf: URL(fileURLWithPath: file("current.json")))))
        let (list, values) = try approval.values()
        let pcrDigest = try values.digest(
            for: TPMLPCRSelection([TPMSPCRSelection(hash: .sha256, pcrs: list)]), hashAlg: .sha256)
        let epoch = approval.epoch
        let trial = try await tpm.withPolicySession(trial: true) { tpm, s throws(TPMError) in
            try tpm.policyPCR(
                s, selection: TPMLPCRSelection([TPMSPCRSelection(hash: .sha256, pcrs: list)]), pcrDigest: pcrDigest)
            try tpm.policyNV(
                s, index: ApprovalCounter.index, operandB: ApprovalCounter.operand(epoch: epoch),
                operation: .unsignedLessOrEqual)
            return try tpm.policyGetDigest(s)
        }
        #expect(Hex.encode(trial) == approval.approvedPolicy)

        // An update the team approved in advance: PCR 14's predicted value.
        let measurement = Array(SHA256.hash(data: Array("shim MokList 2026.12".utf8)))
        var next = now
        next[.sha256, 14] = Array(SHA256.hash(data: (now[.sha256, 14] ?? []) + measurement))
        #expect(try approve("release-2", values: next).status == 0)
        #expect(try approve("short", values: next, expires: "1s").status == 0)
        let stranger = P256.Signing.PrivateKey()
        try stranger.pemRepresentation.write(toFile: file("stranger.pem"), atomically: true, encoding: .utf8)
        let foreign = try approve("foreign", values: next, key: "stranger.pem")
        #expect(foreign.status == 1)
        #expect(foreign.stderr.contains("not the vault's authority"), "\(foreign.stderr)")

        try await tpm.pcrExtend(14, digests: [.sha256: measurement])
        let metadataPath = fs.mountPoint + "/.vault.vigil-vault.json"
        let metadataBefore = try Data(contentsOf: URL(fileURLWithPath: metadataPath))
        let old = try session.vigil(["vault", "unlock", dir, "--approval", file("current.json")])
        #expect(old.status == 1)
        #expect(old.stderr.contains("not the approved values: PCR 14"), "\(old.stderr)")

        // Edited: PCR 14's value changed in the file, signatures kept.
        var edited =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: file("release-2.json"))))
            as? [String: Any] ?? [:]
        var editedPCRs = edited["pcrs"] as? [String: String] ?? [:]
        editedPCRs["13"] = String(repeating: "ab", count: 32)
        edited["pcrs"] = editedPCRs
        try JSONSerialization.data(withJSONObject: edited).write(to: URL(fileURLWithPath: file("edited.json")))
        let forged = try session.vigil(["vault", "unlock", dir, "--approval", file("edited.json")])
        #expect(forged.status == 1)
        #expect(forged.stderr.contains("edited"), "\(forged.stderr)")

        try await Task.sleep(for: .seconds(2))
        let expired = try session.vigil(["vault", "unlock", dir, "--approval", file("short.json")])
        #expect(expired.status == 1)
        #expect(expired.stderr.contains("expired"), "\(expired.stderr)")

        let approved = try session.vigil(["vault", "unlock", dir, "--approval", file("release-2.json")])
        #expect(approved.status == 0, "\(approved.stderr)")
        #expect(try String(contentsOfFile: dir + "/notes.txt", encoding: .utf8) == text)
        #expect(try Data(contentsOf: URL(fileURLWithPath: metadataPath)) == metadataBefore, "no reseal")
        #expect(try session.vigil(["vault", "lock", dir]).status == 0)

        // Revoked: the counter moves past the approval's epoch; the TPM refuses it. A new approval opens.
        let revoke = try session.vigil(["vault", "revoke-approvals", dir])
        #expect(revoke.status == 0, "\(revoke.stderr)")
        let revoked = try session.vigil(["vault", "unlock", dir, "--approval", file("release-2.json")])
        #expect(revoked.status == 1)
        #expect(revoked.stderr.contains("revoked"), "\(revoked.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/notes.txt"))
        #expect(try approve("release-2b", values: next).status == 0)
        let renewed = try session.vigil(["vault", "unlock", dir, "--approval", file("release-2b.json")])
        #expect(renewed.status == 0, "\(renewed.stderr)")
        #expect(try session.vigil(["vault", "lock", dir]).status == 0)

        // Another vault under the same authority: an approval for the first does not open it, even when the
        // software check is told the approval's vault (the TPM's policyRef carries the vault id).
        let dir2 = fs.mountPoint + "/vault2"
        try FileManager.default.createDirectory(atPath: dir2, withIntermediateDirectories: false)
        #expect(try session.vigil(["vault", "create", dir2, "--authorize-key", file("team.pub.pem")]).status == 0)
        let other = try FSCryptVault(path: dir2).read()
        let approvalA = try PCRApproval(
            json: Array(try Data(contentsOf: URL(fileURLWithPath: file("release-2b.json")))))
        await #expect(throws: VaultError.self) {
            _ = try await other.sealing.unseal(tpm: tpm, approvals: [approvalA], vaultID: approvalA.vaultID)
        }
        do {
            _ = try await other.sealing.unseal(tpm: tpm, approvals: [approvalA], vaultID: approvalA.vaultID)
        } catch { #expect(error.reason.contains("the TPM refused it"), "\(error.reason)") }

        // PCR sets that prove little are refused: without 0, 4 and 7, or with resettable PCRs.
        let weak = try session.vigil(["vault", "create", fs.mountPoint + "/vault3", "--pcrs", "0,4,7,23"])
        #expect(weak.status == 1)
        #expect(weak.stderr.contains("16–23 can be reset"), "\(weak.stderr)")
    }
}

/// The LUKS2 backend on a file-backed image (libcryptsetup): formatted with a TPM keyslot and a recovery keyslot,
/// the sealing in a `vigil-tpm2` token; the TPM path and the recovery passphrase yield the same volume key, and so
/// does cryptsetup (the interoperability peer) with the recovery passphrase. Activation needs device-mapper: where
/// the kernel lacks it, unlock stops after the volume key and says so (exit 3). A changed PCR is refused by name.
@Suite(
    .enabled(if: SoftwareTPM.canRun, "swtpm is not installed"),
    .enabled(if: geteuid() == 0 || SoftwareTPM.isCI, "needs root for libcryptsetup and cryptsetup"))
struct LUKS2VaultTests {
    @Test func tpmKeyslotRecoveryKeyslotAndTokenAgreeWithCryptsetupAndAChangedPCRIsNamed() async throws {
        let session = try VigilCLISession()
        defer { session.close() }
        let work = try ProcessRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: work) }
        let image = work.appendingPathComponent("volume.img").path
        #expect(try session.vigil(["tpm", "provision"]).status == 0)
        let log = SoftwareTPM.repositoryRoot.appendingPathComponent(
            "Tests/AttestTests/Fixtures/eventlogs/gce-rhel8-sb.bin"
        ).path
        #expect(try session.vigil(["tpm", "replay-log", log]).status == 0)

        let create = try session.vigil(["vault", "create", "--backend", "luks2", "--size", "32M", image])
        #expect(create.status == 0, "\(create.stderr)")
        let lines = create.stdout.split(separator: "\n").map(String.init)
        let recoveryLine = try #require(lines.firstIndex { $0.hasPrefix("recovery passphrase") })
        let recovery = lines[recoveryLine + 1].trimmingCharacters(in: .whitespaces)
        #expect(recovery.count == 39, "\(create.stdout)")
        let mode = try FileManager.default.attributesOfItem(atPath: image)[.posixPermissions] as? Int
        #expect(mode == 0o600)

        // The peer reads what Vigil wrote: two keyslots, the token naming keyslot 0 with the sealing in it.
        let dump = try ProcessRunner.run("cryptsetup", ["luksDump", image])
        #expect(dump.status == 0, "\(dump.stderr)")
        #expect(dump.stdout.contains("vigil-tpm2") && dump.stdout.contains("argon2id"), "\(dump.stdout)")
        let token = try ProcessRunner.run("cryptsetup", ["token", "export", "--token-id", "0", image])
        #expect(
            token.stdout.contains("\"policyDigest\"") && token.stdout.contains("\"keyslots\":[\"0\"]"),
            "\(token.stdout)")

        // Unlock: the volume key through the TPM keyslot; activation where device-mapper exists.
        let unlock = try session.vigil(["vault", "unlock", image])
        if LUKS2Vault.deviceMapperAvailable {
            #expect(unlock.status == 0, "\(unlock.stderr)")
            #expect(try session.vigil(["vault", "lock", image]).status == 0)
        } else {
            #expect(unlock.status == 3, "\(unlock.stderr)")
            #expect(unlock.stderr.contains("volume key recovered through keyslot 0"), "\(unlock.stderr)")
            #expect(unlock.stderr.contains("device-mapper is absent"), "\(unlock.stderr)")
            print("LUKS2 activation skipped: \(LUKS2Vault.deviceMapperMissing)")
        }

        // The same volume key three ways: the TPM-sealed key, the recovery passphrase, cryptsetup's own dump.
        let tpm = try await session.simulator.open()
        let vault = LUKS2Vault(path: image)
        let tpmKey = try await vault.read().sealing.unseal(tpm: tpm)
        let viaTPM = try vault.volumeKey(passphrase: tpmKey).unsafeCopy()
        let viaRecovery = try vault.volumeKey(passphrase: SecretBytes(utf8: recovery)).unsafeCopy()
        #expect(viaTPM == viaRecovery && viaTPM.count == 64)
        let keyFile = work.appendingPathComponent("recovery.txt").path
        try Data(recovery.utf8).write(to: URL(fileURLWithPath: keyFile))
        let peer = try ProcessRunner.run(
            "cryptsetup", ["luksDump", "--dump-volume-key", "--batch-mode", "--key-file", keyFile, image])
        #expect(peer.status == 0, "\(peer.stderr)")
        let peerHex = peer.stdout.split(separator: "\n").drop { !$0.contains("MK dump") && !$0.contains("Volume key") }
            .joined().filter { $0.isHexDigit }
        #expect(peerHex.lowercased().hasSuffix(Hex.encode(viaTPM)), "\(peer.stdout)")
        #expect(throws: VaultError.self) { try vault.volumeKey(passphrase: SecretBytes(utf8: recovery + "x")) }

        // A sealed PCR changes: the TPM refuses, naming it; the recovery passphrase still works.
        try await tpm.pcrExtend(9, digests: [.sha256: Array(SHA256.hash(data: Array("new grub.cfg".utf8)))])
        let denied = try session.vigil(["vault", "unlock", image])
        #expect(denied.status == 1)
        #expect(denied.stderr.contains("PCR 9"), "\(denied.stderr)")
        let status = try session.vigil(["vault", "status", image, "--json"])
        #expect(status.stdout.contains("\"backend\" : \"luks2\""), "\(status.stdout)")
        #expect(status.stdout.contains("\"changed_pcrs\" : [\n    9\n  ]"), "\(status.stdout)")
        #expect(try vault.volumeKey(passphrase: SecretBytes(utf8: recovery)).unsafeCopy() == viaTPM)
    }
}
