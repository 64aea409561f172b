import Attest
import AttestTPM
import Foundation
import ProcessSupport
import SystemSupport
import Testing
import Vault
import VigilTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// Nothing is lost: `vigil vault create` and `vigil vault reseal` are killed with SIGKILL at every step
/// (`VIGIL_CRASH_AT`: after sealing, after the key is in the kernel, after the metadata's temporary file is written,
/// after its rename, before the directory is encrypted; LUKS2: after formatting, after the keyslots, after the
/// token). After each kill the vault either did not come to exist (and creating it again works) or opens; a reseal
/// killed at any step leaves the old sealing or the new one, and the vault opens.
@Suite(
    .enabled(if: SoftwareTPM.canRun, "swtpm is not installed"),
    .enabled(if: geteuid() == 0 || SoftwareTPM.isCI, "needs root to loop-mount an ext4 image"))
struct VaultCrashTests {
    static let killed: Int32 = 128 + SIGKILL

    static func bootedSession() throws -> VigilCLISession {
        let session = try VigilCLISession()
        #expect(try session.vigil(["tpm", "provision"]).status == 0)
        let log = SoftwareTPM.repositoryRoot.appendingPathComponent(
            "Tests/AttestTests/Fixtures/eventlogs/gce-rhel8-sb.bin"
        ).path
        #expect(try session.vigil(["tpm", "replay-log", log]).status == 0)
        return session
    }

    @Test(arguments: [
        "vault.create.sealed", "vault.create.key-added", "atomic-file.written", "atomic-file.renamed",
        "vault.create.metadata-written",
    ])
    func anFSCryptCreationKilledAtAnyStepIsRedoneOrOpens(_ point: String) throws {
        let session = try Self.bootedSession()
        defer { session.close() }
        let fs = try Ext4Image()
        try #require(fs.mounted, "\(fs.failure ?? "")")
        let dir = fs.mountPoint + "/vault"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        let crashed = try session.vigil(["vault", "create", dir], environment: [CrashPoint.variable: point])
        #expect(crashed.status == Self.killed, "\(point): \(crashed.status) \(crashed.stderr)")
        // Nothing was written in the directory, and it is not encrypted: creating it again works.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
        #expect(try FSCryptDirectory(path: dir).policyIdentifier() == nil, "\(point)")
        let again = try session.vigil(["vault", "create", dir])
        #expect(again.status == 0, "\(point): \(again.stderr)")
        try Data("after \(point)".utf8).write(to: URL(fileURLWithPath: dir + "/f"))
        sync()
        #expect(try session.vigil(["vault", "lock", dir]).status == 0)
        #expect(try session.vigil(["vault", "unlock", dir]).status == 0)
        #expect(try String(contentsOfFile: dir + "/f", encoding: .utf8) == "after \(point)")
        // No temporary file of the killed write is left where a reader would take it for metadata.
        let metadata = try FileManager.default.contentsOfDirectory(atPath: fs.mountPoint).filter {
            $0.hasSuffix(".vigil-vault.json")
        }
        #expect(metadata == [".vault.vigil-vault.json"])
    }

    @Test(arguments: ["vault.reseal.sealed", "atomic-file.written", "atomic-file.renamed"])
    func aResealKilledAtAnyStepLeavesTheOldOrTheNewSealing(_ point: String) throws {
        let session = try Self.bootedSession()
        defer { session.close() }
        let fs = try Ext4Image()
        try #require(fs.mounted, "\(fs.failure ?? "")")
        let dir = fs.mountPoint + "/vault"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        #expect(try session.vigil(["vault", "create", dir, "--pcrs", "0-4,6-14"]).status == 0)
        try Data("kept".utf8).write(to: URL(fileURLWithPath: dir + "/f"))
        sync()
        let old = try FSCryptVault(path: dir).read().sealing
        let crashed = try session.vigil(
            ["vault", "reseal", dir, "--pcrs", "0-7"], environment: [CrashPoint.variable: point])
        #expect(crashed.status == Self.killed, "\(point): \(crashed.stderr)")
        let now = try FSCryptVault(path: dir).read().sealing
        #expect(now == old || now.pcrs == Array(0...7), "\(point): \(now.pcrs)")
        #expect(try session.vigil(["vault", "lock", dir]).status == 0)
        let unlock = try session.vigil(["vault", "unlock", dir])
        #expect(unlock.status == 0, "\(point): \(unlock.stderr)")
        #expect(try String(contentsOfFile: dir + "/f", encoding: .utf8) == "kept")
    }

    @Test(arguments: ["luks2.create.formatted", "luks2.create.keyslots", "luks2.create.token"])
    func aLUKS2CreationKilledAtAnyStepIsRedone(_ point: String) throws {
        let session = try Self.bootedSession()
        defer { session.close() }
        let image = session.path("volume.img")
        let crashed = try session.vigil(
            ["vault", "create", "--backend", "luks2", "--size", "32M", image], environment: [CrashPoint.variable: point]
        )
        #expect(crashed.status == Self.killed, "\(point): \(crashed.stderr)")
        // The interrupted volume (labelled vigil-pending) is formatted again; a finished one would be refused.
        let again = try session.vigil(["vault", "create", "--backend", "luks2", image])
        #expect(again.status == 0, "\(point): \(again.stderr)")
        let unlock = try session.vigil(["vault", "unlock", image])
        #expect(unlock.status == (LUKS2Vault.deviceMapperAvailable ? 0 : 3), "\(point): \(unlock.stderr)")
        let refused = try session.vigil(["vault", "create", "--backend", "luks2", image])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("already has a LUKS2 header"), "\(refused.stderr)")
    }
}
