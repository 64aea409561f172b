import Attest
import AttestTPM
import ControllerProtocol
import Crypto
import Foundation
import Node
import ProcessSupport
import SystemSupport
import Testing
import Vault
import VigilTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// The vault's whole cycle with the controller, on swtpm and a loop-mounted ext4 image (root): create (escrowed at
/// the controller after a pass) → write → lock (unreadable) → unlock (readable) → a sealed PCR extended by a logged
/// update → unlock refused naming the PCR, status naming the event → recovery refused while the attestation fails →
/// recovery after a passing attestation (escrow handed back, opened by the TPM, resealed) → unlock offline. The key
/// appears in no output, log, database or file but the sealed blob and the escrow.
@Suite(
    .enabled(if: SoftwareTPM.canRun, "swtpm is not installed"),
    .enabled(if: geteuid() == 0 || SoftwareTPM.isCI, "needs root to loop-mount an ext4 image"))
struct VaultRecoveryTests {
    @Test func createLockUnlockChangeRecoverThroughTheControllerAndUnlockOffline() async throws {
        let controller = try await ControllerHarness.start(.sqlite)
        let device = try TestDevice()
        defer { device.stop() }
        let fs = try Ext4Image()
        var outputs: [String] = []
        func run(_ arguments: [String]) async throws -> ProcessResult {
            let r = try await device.vigil(arguments)
            outputs.append(r.stdout + r.stderr)
            return r
        }
        do {
            try #require(fs.mounted, "\(fs.failure ?? "")")
            let dir = fs.mountPoint + "/vault"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
            try await controller.prepareFleet()
            _ = try await ControllerEndToEndTests.bootAndOnboard(device, controller, group: "lab")
            let log = ControllerFixtures.eventLog

            // The controller takes an escrow only from a device whose latest attestation passed.
            let early = try await run(
                ["vault", "create", dir, "--eventlog", log] + controller.connectionArguments)
            #expect(early.status == 1)
            #expect(early.stderr.contains("not_attested"), "\(early.stderr)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)

            #expect(
                try await run(["device", "attest", "--eventlog", log] + controller.connectionArguments).status == 0)
            let create = try await run(["vault", "create", dir, "--eventlog", log] + controller.connectionArguments)
            #expect(create.status == 0, "\(create.stderr)")
            #expect(create.stdout.contains("escrowed at the controller as escrow."), "\(create.stdout)")

            let text = "vault contents " + UUID().uuidString
            try Data(text.utf8).write(to: URL(fileURLWithPath: dir + "/notes.txt"))
            sync()
            #expect(try await run(["vault", "lock", dir]).status == 0)
            #expect(!FileManager.default.fileExists(atPath: dir + "/notes.txt"))
            #expect(try await run(["vault", "unlock", dir]).status == 0)
            #expect(try String(contentsOfFile: dir + "/notes.txt", encoding: .utf8) == text)
            #expect(try await run(["vault", "lock", dir]).status == 0)

            // An update measured into PCR 14 (sealed, not in the policy), with its event logged.
            let original = try Array(Data(contentsOf: URL(fileURLWithPath: log)))
            let update = try LogAppend.append(
                to: original, pcr: 14, type: 0x0000_000D, data: Array("MokListTrusted update 2026-12".utf8))
            let updatedLog = device.path("updated.bin")
            try Data(update.log).write(to: URL(fileURLWithPath: updatedLog))
            let tpm = try await device.open()
            try await tpm.pcrExtend(14, digests: update.digests)

            let denied = try await run(["vault", "unlock", dir])
            #expect(denied.status == 1)
            #expect(denied.stderr.contains("PCR 14"), "\(denied.stderr)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/notes.txt"))
            let status = try await run(["vault", "status", dir, "--eventlog", updatedLog, "--json"])
            let object = try #require(
                try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any], "\(status.stdout)")
            #expect(object["changed_pcrs"] as? [Int] == [14], "\(status.stdout)")
            let changes = try #require(object["changes"] as? [[String: Any]])
            let events = changes.first?["events"] as? [String] ?? []
            #expect(
                events.contains { $0.contains("added EV_IPL") && $0.contains("MokListTrusted update") },
                "\(status.stdout)")
            #expect(object["escrowed"] as? Bool == true)
            // Without the log entry (an extend nobody logged), status says the log does not explain it.
            let unexplained = try await run(["vault", "status", dir, "--eventlog", log])
            #expect(unexplained.stdout.contains("does not explain PCR 14"), "\(unexplained.stdout)")

            // A failing attestation (a PCR 9 event in the log that the TPM never saw) gets no escrow back.
            let forged = try LogAppend.append(to: update.log, pcr: 9, type: 0x0000_000D, data: Array("grub.cfg".utf8))
            try Data(forged.log).write(to: URL(fileURLWithPath: device.path("forged.bin")))
            let refused = try await run(
                ["vault", "recover", dir, "--eventlog", device.path("forged.bin")] + controller.connectionArguments)
            #expect(refused.status == 1)
            #expect(refused.stderr.contains("recovery refused"), "\(refused.stderr)")
            #expect(refused.stderr.contains("PCR 9"), "\(refused.stderr)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/notes.txt"))

            // A pass: the escrow comes back wrapped to this TPM, opens, is resealed to the PCRs now.
            let recover = try await run(
                ["vault", "recover", dir, "--eventlog", updatedLog] + controller.connectionArguments)
            #expect(recover.status == 0, "\(recover.stderr)")
            #expect(try String(contentsOfFile: dir + "/notes.txt", encoding: .utf8) == text)
            #expect(try await run(["vault", "lock", dir]).status == 0)

            // The pass that released the escrow is spent; a pass older than a minute releases none either (a
            // thief booting their own system cannot ride on the device's last periodic pass).
            let escrowName = try #require((object["escrow"] as? [String: Any])?["name"] as? String)
            let spent = try await run(
                ["device", "fetch-secret", escrowName, "--out", device.path("escrow.json")]
                    + controller.connectionArguments)
            #expect(spent.status == 1)
            #expect(spent.stderr.contains("attestation_spent"), "\(spent.stderr)")
            #expect(
                try await run(["device", "attest", "--eventlog", updatedLog] + controller.connectionArguments).status
                    == 0)
            controller.advanceClock(by: 120)
            let stale = try await run(
                ["device", "fetch-secret", escrowName, "--out", device.path("escrow.json")]
                    + controller.connectionArguments)
            #expect(stale.status == 1)
            #expect(stale.stderr.contains("attestation_expired"), "\(stale.stderr)")
            controller.advanceClock(by: -120)
            // Offline now: no controller.
            let offline = try await run(["vault", "unlock", dir])
            #expect(offline.status == 0, "\(offline.stderr)")
            #expect(try String(contentsOfFile: dir + "/notes.txt", encoding: .utf8) == text)
            let after = try await run(["vault", "status", dir, "--eventlog", updatedLog])
            #expect(after.stdout.contains("it unlocks offline"), "\(after.stdout)")

            // The key itself: nowhere but in the sealed blob and the escrow (both encrypted).
            let key = try await FSCryptVault(path: dir).read().sealing.unseal(tpm: tpm).unsafeCopy()
            #expect(try await run(["vault", "lock", dir]).status == 0)
            fs.unmount()
            let forms: [[UInt8]] = [
                key, Array(Hex.encode(key).utf8), Array(Data(key).base64EncodedString().utf8),
                Array(key[0..<24]),
            ]
            for output in outputs {
                for form in forms {
                    #expect(Data(output.utf8).range(of: Data(form)) == nil, "key bytes in a command's output")
                }
            }
            for root in [controller.directory, device.directory, fs.directory] {
                for file in Self.files(under: root) {
                    guard let bytes = try? Data(contentsOf: URL(fileURLWithPath: file)) else { continue }
                    for form in forms { #expect(bytes.range(of: Data(form)) == nil, "key bytes in \(file)") }
                }
            }
        } catch {
            await controller.stop()
            throw error
        }
        await controller.stop()
    }

    /// The same recovery for a LUKS2 image: the TPM keyslot's key comes back from the controller after a pass,
    /// is resealed, and unlocks offline up to the volume key (activation needs device-mapper: exit 3 without it).
    @Test func aLUKS2VolumeIsRecoveredThroughTheControllerAndUnlocksOffline() async throws {
        let controller = try await ControllerHarness.start(.sqlite)
        let device = try TestDevice()
        defer { device.stop() }
        let unlocked: Int32 = LUKS2Vault.deviceMapperAvailable ? 0 : 3
        do {
            try await controller.prepareFleet()
            _ = try await ControllerEndToEndTests.bootAndOnboard(device, controller, group: "lab")
            let log = ControllerFixtures.eventLog
            let image = device.path("volume.img")
            #expect(
                try await device.vigil(["device", "attest", "--eventlog", log] + controller.connectionArguments).status
                    == 0)
            let create = try await device.vigil(
                ["vault", "create", "--backend", "luks2", "--size", "32M", image, "--eventlog", log]
                    + controller.connectionArguments)
            #expect(create.status == 0, "\(create.stderr)")
            #expect(create.stdout.contains("escrowed at the controller"), "\(create.stdout)")
            #expect(try await device.vigil(["vault", "unlock", image]).status == unlocked)

            let updatedLog = try await LogAppend.bootAnUpdate(device)
            let denied = try await device.vigil(["vault", "unlock", image])
            #expect(denied.status == 1)
            #expect(denied.stderr.contains("PCR 14"), "\(denied.stderr)")

            let recover = try await device.vigil(
                ["vault", "recover", image, "--eventlog", updatedLog] + controller.connectionArguments)
            #expect(recover.status == unlocked, "\(recover.stderr)")
            let offline = try await device.vigil(["vault", "unlock", image])
            #expect(offline.status == unlocked, "\(offline.stderr)")
            if unlocked == 3 { #expect(offline.stderr.contains("volume key recovered"), "\(offline.stderr)") }
        } catch {
            await controller.stop()
            throw error
        }
        await controller.stop()
    }

    /// A recovery killed at any step (the escrow opened; the new sealing's temporary file written; renamed; before
    /// the key is installed) leaves a vault that opens: offline when the new sealing landed, else by recovering again.
    @Test(arguments: ["vault.recover.opened", "atomic-file.written", "atomic-file.renamed", "vault.recover.resealed"])
    func aRecoveryKilledAtAnyStepLeavesAVaultThatOpens(_ point: String) async throws {
        let controller = try await ControllerHarness.start(.sqlite)
        let device = try TestDevice()
        defer { device.stop() }
        let fs = try Ext4Image()
        do {
            try #require(fs.mounted, "\(fs.failure ?? "")")
            let dir = fs.mountPoint + "/vault"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
            try await controller.prepareFleet()
            _ = try await ControllerEndToEndTests.bootAndOnboard(device, controller, group: "lab")
            let log = ControllerFixtures.eventLog
            #expect(
                try await device.vigil(["device", "attest", "--eventlog", log] + controller.connectionArguments).status
                    == 0)
            #expect(
                try await device.vigil(["vault", "create", dir, "--eventlog", log] + controller.connectionArguments)
                    .status == 0)
            try Data("kept".utf8).write(to: URL(fileURLWithPath: dir + "/f"))
            sync()
            #expect(try await device.vigil(["vault", "lock", dir]).status == 0)
            let updatedLog = try await LogAppend.bootAnUpdate(device)

            let crashed = try await device.vigil(
                ["vault", "recover", dir, "--eventlog", updatedLog] + controller.connectionArguments,
                environment: [CrashPoint.variable: point])
            #expect(crashed.status == 128 + SIGKILL, "\(point): \(crashed.stderr)")
            let offline = try await device.vigil(["vault", "unlock", dir])
            if offline.status != 0 {
                // The new sealing did not land: the old one is intact, and recovering again opens the vault.
                #expect(offline.stderr.contains("PCR 14"), "\(point): \(offline.stderr)")
                let again = try await device.vigil(
                    ["vault", "recover", dir, "--eventlog", updatedLog] + controller.connectionArguments)
                #expect(again.status == 0, "\(point): \(again.stderr)")
            }
            #expect(try String(contentsOfFile: dir + "/f", encoding: .utf8) == "kept", "\(point)")
        } catch {
            await controller.stop()
            throw error
        }
        await controller.stop()
    }

    /// LUKS2 key rotation killed at every step (new keyslot added; token switched; escrow updated; or not at all):
    /// the volume opens locally, and after a PCR change the escrow still recovers it.
    @Test(arguments: ["luks2.rotate.keyslot-added", "luks2.rotate.token-switched", "luks2.rotate.escrowed", "none"])
    func aLUKS2RotationKilledAtAnyStepStillOpensLocallyAndThroughTheEscrow(_ point: String) async throws {
        let controller = try await ControllerHarness.start(.sqlite)
        let device = try TestDevice()
        defer { device.stop() }
        let unlocked: Int32 = LUKS2Vault.deviceMapperAvailable ? 0 : 3
        do {
            try await controller.prepareFleet()
            _ = try await ControllerEndToEndTests.bootAndOnboard(device, controller, group: "lab")
            let log = ControllerFixtures.eventLog
            let image = device.path("volume.img")
            #expect(
                try await device.vigil(["device", "attest", "--eventlog", log] + controller.connectionArguments).status
                    == 0)
            let create = try await device.vigil(
                ["vault", "create", "--backend", "luks2", "--size", "32M", image] + controller.connectionArguments)
            #expect(create.status == 0, "\(create.stderr)")
            let tpm = try await device.open()
            let vault = LUKS2Vault(path: image)
            let volumeKey = try vault.volumeKey(passphrase: try await vault.read().sealing.unseal(tpm: tpm))
                .unsafeCopy()
            // Rotation without the controller would strand the escrow: refused.
            let stranded = try await device.vigil(["vault", "rotate", image])
            #expect(stranded.status == 1)
            #expect(stranded.stderr.contains("escrowed"), "\(stranded.stderr)")

            #expect(
                try await device.vigil(["device", "attest", "--eventlog", log] + controller.connectionArguments).status
                    == 0)
            let rotate = try await device.vigil(
                ["vault", "rotate", image] + controller.connectionArguments, environment: [CrashPoint.variable: point])
            #expect(rotate.status == (point == "none" ? 0 : 128 + SIGKILL), "\(point): \(rotate.stderr)")
            let local = try await device.vigil(["vault", "unlock", image])
            #expect(local.status == unlocked, "\(point): \(local.stderr)")
            // The data key is the same whatever opened it.
            #expect(
                try vault.volumeKey(passphrase: try await vault.read().sealing.unseal(tpm: tpm)).unsafeCopy()
                    == volumeKey)

            // A PCR change, then recovery through the escrow: the escrowed key (old or new) still opens the volume.
            let updatedLog = try await LogAppend.bootAnUpdate(device)
            let recover = try await device.vigil(
                ["vault", "recover", image, "--eventlog", updatedLog] + controller.connectionArguments)
            #expect(recover.status == unlocked, "\(point): \(recover.stderr)")
            #expect(try await device.vigil(["vault", "unlock", image]).status == unlocked, "\(point)")
        } catch {
            await controller.stop()
            throw error
        }
        await controller.stop()
    }

    /// An escrow deposit killed after the controller stored it, before the metadata recorded it: the vault opens,
    /// and depositing again works.
    @Test func anEscrowUpdateKilledAfterTheDepositLeavesAVaultThatOpens() async throws {
        let controller = try await ControllerHarness.start(.sqlite)
        let device = try TestDevice()
        defer { device.stop() }
        let fs = try Ext4Image()
        do {
            try #require(fs.mounted, "\(fs.failure ?? "")")
            let dir = fs.mountPoint + "/vault"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
            try await controller.prepareFleet()
            _ = try await ControllerEndToEndTests.bootAndOnboard(device, controller, group: "lab")
            #expect(try await device.vigil(["vault", "create", dir]).status == 0)
            #expect(
                try await device.vigil(
                    ["device", "attest", "--eventlog", ControllerFixtures.eventLog] + controller.connectionArguments
                )
                .status == 0)
            let crashed = try await device.vigil(
                ["vault", "escrow", dir] + controller.connectionArguments,
                environment: [CrashPoint.variable: "vault.escrow.deposited"])
            #expect(crashed.status == 128 + SIGKILL, "\(crashed.stderr)")
            #expect(try await device.vigil(["vault", "lock", dir]).status == 0)
            #expect(try await device.vigil(["vault", "unlock", dir]).status == 0)
            let again = try await device.vigil(["vault", "escrow", dir] + controller.connectionArguments)
            #expect(again.status == 0, "\(again.stderr)")
            #expect(again.stdout.contains("v2"), "the controller keeps both deposits: \(again.stdout)")
        } catch {
            await controller.stop()
            throw error
        }
        await controller.stop()
    }

    static func files(under root: URL) -> [String] {
        guard let e = FileManager.default.enumerator(atPath: root.path) else { return [] }
        return e.compactMap { ($0 as? String).map { root.appendingPathComponent($0).path } }.filter {
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: $0, isDirectory: &isDirectory) && !isDirectory.boolValue
        }
    }
}

/// Appends one crypto-agile event (TCG PC Client PFP §10.2.2 TCG_PCR_EVENT2) to an event log, with a digest for
/// every bank the log declares, and returns the log and those digests (to extend the TPM with the same).
enum LogAppend {
    /// An update measured into PCR 14 with its event logged: writes the updated log beside the device, extends
    /// the device's TPM with the same digests, and returns the log's path.
    static func bootAnUpdate(_ device: TestDevice) async throws -> String {
        let update = try append(
            to: try Array(Data(contentsOf: URL(fileURLWithPath: ControllerFixtures.eventLog))), pcr: 14,
            type: 0x0000_000D, data: Array("MokListTrusted update".utf8))
        let path = device.path("updated.bin")
        try Data(update.log).write(to: URL(fileURLWithPath: path))
        try await device.open().pcrExtend(14, digests: update.digests)
        return path
    }

    static func append(to log: [UInt8], pcr: UInt32, type: UInt32, data: [UInt8]) throws -> (
        log: [UInt8], digests: [TPMAlgorithmID: [UInt8]]
    ) {
        let parsed = try UnverifiedEventLog(bytes: log)
        var digests: [TPMAlgorithmID: [UInt8]] = [:]
        var out = Array(log.prefix(log.count - parsed.trailingPadding))
        func le32(_ v: UInt32) { for i in 0..<4 { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(i)))) } }
        le32(pcr)
        le32(type)
        le32(UInt32(parsed.banks.count))
        for bank in parsed.banks {
            let d: [UInt8]
            switch bank {
            case .sha1: d = Array(Insecure.SHA1.hash(data: data))
            case .sha256: d = Array(SHA256.hash(data: data))
            case .sha384: d = Array(SHA384.hash(data: data))
            case .sha512: d = Array(SHA512.hash(data: data))
            default: throw CocoaError(.featureUnsupported, userInfo: [NSDebugDescriptionErrorKey: "bank \(bank)"])
            }
            digests[bank] = d
            out.append(UInt8(truncatingIfNeeded: bank.rawValue))
            out.append(UInt8(truncatingIfNeeded: bank.rawValue >> 8))
            out += d
        }
        le32(UInt32(data.count))
        out += data
        return (out, digests)
    }
}
