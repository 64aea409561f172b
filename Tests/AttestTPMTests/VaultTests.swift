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
