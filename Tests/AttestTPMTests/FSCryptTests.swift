import AttestTPM
import Foundation
import ProcessSupport
import Testing
import Vault
import VigilTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// The fscrypt v2 backend on a real ext4 filesystem: an image with the `encrypt` feature, made and loop-mounted
/// by the test (root only; with CI=true a run without root fails instead of skipping).
@Suite(.enabled(if: geteuid() == 0 || SoftwareTPM.isCI, "needs root to loop-mount an ext4 image"))
struct FSCryptTests {
    /// A loop-mounted ext4 image with encryption enabled, removed at the end.
    typealias Ext4Image = VigilTestSupport.Ext4Image

    @Test func lockedFilesAreUnreadableAndUnlockingRestoresThem() throws {
        let fs = try Ext4Image()
        try #require(fs.mounted)
        let dir = fs.mountPoint + "/vault"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        let vault = FSCryptDirectory(path: dir)
        #expect(try vault.policyIdentifier() == nil)

        var raw = [UInt8](repeating: 0, count: FSCryptDirectory.masterKeySize)
        for i in raw.indices { raw[i] = UInt8.random(in: 0...255) }
        let key = SecretBytes(raw)
        let identifier = try vault.addKey(key)
        #expect(identifier.count == 16)
        // Vigil's derivation of the identifier (used to check a recovered key) is the kernel's.
        #expect(FSCryptDirectory.keyIdentifier(of: key) == identifier)
        try vault.setPolicy(identifier: identifier)
        #expect(try vault.policyIdentifier() == identifier)
        #expect(try vault.keyStatus(identifier: identifier) == .present)

        let marker = "vigil-fscrypt-plaintext-marker-" + UUID().uuidString
        try Data(marker.utf8).write(to: URL(fileURLWithPath: dir + "/secret.txt"))
        #expect(try String(contentsOfFile: dir + "/secret.txt", encoding: .utf8) == marker)

        // Lock: the key leaves the keyring; the file's name and contents are gone with it.
        sync()
        #expect(try vault.removeKey(identifier: identifier))
        #expect(try vault.keyStatus(identifier: identifier) == .absent)
        let names = try FileManager.default.contentsOfDirectory(atPath: dir)
        #expect(names.count == 1 && !names.contains("secret.txt"), "\(names)")
        #expect((try? String(contentsOfFile: dir + "/" + names[0], encoding: .utf8)) == nil)

        // Another key is not this directory's key.
        var otherRaw = raw
        otherRaw[0] ^= 1
        let other = try vault.addKey(SecretBytes(otherRaw))
        #expect(other != identifier)
        #expect(!FileManager.default.fileExists(atPath: dir + "/secret.txt"))
        try vault.removeKey(identifier: other)

        // Unlock with the key: readable again.
        #expect(try vault.addKey(key) == identifier)
        #expect(try String(contentsOfFile: dir + "/secret.txt", encoding: .utf8) == marker)

        // On the disk itself neither the plaintext nor the key appears.
        try vault.removeKey(identifier: identifier)
        fs.unmount()
        let image = try Data(contentsOf: URL(fileURLWithPath: fs.image))
        #expect(image.range(of: Data(marker.utf8)) == nil, "the plaintext is on the disk")
        #expect(image.range(of: Data(raw)) == nil, "the master key is on the disk")
    }

    @Test func aFilesystemWithoutEncryptionSaysSo() throws {
        let dir = try ProcessRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let vault = FSCryptDirectory(path: dir.path)
        var raw = [UInt8](repeating: 7, count: FSCryptDirectory.masterKeySize)
        defer { for i in raw.indices { raw[i] = 0 } }
        let error = #expect(throws: VaultError.self) { _ = try vault.addKey(SecretBytes(raw)) }
        #expect(error?.reason.contains("FS_IOC_ADD_ENCRYPTION_KEY") == true, "\(String(describing: error))")
        let short = #expect(throws: VaultError.self) { _ = try vault.addKey(SecretBytes([1, 2, 3])) }
        #expect(short?.reason.contains("64 bytes") == true)
    }
}
