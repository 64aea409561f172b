import Attest
import AttestTPM
import Crypto
import Foundation
import ProcessSupport
import Testing
import VigilTestSupport

/// `vigil vault predict` and the Authenticode digest behind it, against peers: pesign computes the same digests of
/// Debian's real EFI binaries (shim, systemd-boot, the systemd stub) and of one signed with sbsign (the
/// certificate table is excluded), and the PCRs predicted for a boot chain with an application
/// replaced are the PCRs swtpm reaches when that chain is measured into it.
@Suite(.enabled(if: SoftwareTPM.canRun, "swtpm is not installed"))
struct PredictTests {
    static let images = [
        "/usr/lib/shim/shimx64.efi", "/usr/lib/shim/mmx64.efi", "/usr/lib/systemd/boot/efi/systemd-bootx64.efi",
        "/usr/lib/systemd/boot/efi/linuxx64.efi.stub",
    ]
    static let peersInstalled =
        SoftwareTPM.isCI
        || (FileManager.default.fileExists(atPath: images[0]) && FileManager.default.fileExists(atPath: images[2])
            && FileManager.default.isExecutableFile(atPath: "/usr/bin/pesign"))

    static func pesign(_ path: String, _ digest: String) throws -> String {
        let r = try ProcessRunner.run("pesign", ["-h", "-d", digest, "-i", path])
        #expect(r.status == 0, "\(r.stderr)")
        return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "hash: ", with: "")
    }

    @Test(.enabled(if: peersInstalled, "pesign, shim-unsigned and systemd-boot-efi are not installed"))
    func authenticodeDigestsEqualPesignsOnRealAndSignedImages() throws {
        for path in Self.images where FileManager.default.fileExists(atPath: path) {
            let image = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
            #expect(
                Hex.encode(try AuthenticodeDigest(image: image).digest) == (try Self.pesign(path, "sha256")), "\(path)")
            #expect(
                Hex.encode(try AuthenticodeDigest(image: image, hashAlg: .sha1).digest)
                    == (try Self.pesign(path, "sha1")),
                "\(path)")
        }
        // Signed with sbsign: the signature lands in the certificate table, which the digest leaves out (sbsign also
        // pads the image to 8 bytes first, which is hashed: the digest is pesign's, not the unsigned image's).
        let work = try ProcessRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: work) }
        let key = work.appendingPathComponent("db.key").path
        let cert = work.appendingPathComponent("db.crt").path
        let signed = work.appendingPathComponent("signed.efi").path
        #expect(
            try ProcessRunner.run(
                "openssl",
                [
                    "req", "-new", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=Vigil test db/", "-days",
                    "1",
                    "-keyout", key, "-out", cert,
                ]
            ).status == 0)
        let sign = try ProcessRunner.run("sbsign", ["--key", key, "--cert", cert, "--output", signed, Self.images[2]])
        #expect(sign.status == 0, "\(sign.stderr)")
        let afterSigning = try AuthenticodeDigest(image: Array(try Data(contentsOf: URL(fileURLWithPath: signed))))
        #expect(Hex.encode(afterSigning.digest) == (try Self.pesign(signed, "sha256")))
        // Not a PE image: an error naming what is wrong, not a crash.
        #expect(throws: AttestError.self) {
            try AuthenticodeDigest(image: Array("MZ".utf8) + [UInt8](repeating: 0xFF, count: 200))
        }
    }

    @Test(.enabled(if: peersInstalled, "pesign, shim-unsigned and systemd-boot-efi are not installed"))
    func predictedPCRsEqualWhatSwtpmReachesWithTheUpdatedChain() async throws {
        let logPath = SoftwareTPM.repositoryRoot.appendingPathComponent(
            "Tests/AttestTests/Fixtures/eventlogs/gce-rhel8-sb.bin"
        ).path
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: logPath)))
        let log = try UnverifiedEventLog(bytes: bytes)
        // Replace the second boot application (GRUB on this machine) with systemd-boot.
        let apps = log.events.filter { $0.type == .efiBootServicesApplication }
        let grub = try #require(apps.dropFirst().first)
        let old = Hex.encode(try #require(grub.digest(.sha256)))
        let newImage = Self.images[2]

        let session = try VigilCLISession()
        defer { session.close() }
        let predict = try session.vigil([
            "vault", "predict", "--eventlog", logPath, "--replace-app", "\(old)=\(newImage)", "--json",
        ])
        #expect(predict.status == 0, "\(predict.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(predict.stdout.utf8)) as? [String: Any])
        let predicted = try #require((object["pcrs"] as? [String: [String: String]])?["sha256"])
        // A digest no application in the log has is refused, not silently ignored.
        let unknown = try session.vigil([
            "vault", "predict", "--eventlog", logPath, "--replace-app",
            "\(String(repeating: "00", count: 32))=\(newImage)",
        ])
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("no EV_EFI_BOOT_SERVICES_APPLICATION"), "\(unknown.stderr)")

        // The peer path: swtpm measures the chain event by event, with pesign's digests for the new image.
        let peer: [TPMAlgorithmID: [UInt8]] = [
            .sha256: try #require(Hex.decode(try Self.pesign(newImage, "sha256"))),
            .sha1: try #require(Hex.decode(try Self.pesign(newImage, "sha1"))),
        ]
        let tpm = try await session.simulator.open()
        for event in log.events where event.isExtended {
            guard let pcr = event.pcr else { continue }
            var digests: [TPMAlgorithmID: [UInt8]] = [:]
            for d in event.digests { digests[d.algorithm] = d.value }
            if event.index == grub.index { digests = digests.mapValues { _ in [] }.merging(peer) { $1 } }
            digests = digests.filter { !$0.value.isEmpty }
            try await tpm.pcrExtend(pcr, digests: digests)
        }
        let (values, _) = try await tpm.pcrRead(
            TPMLPCRSelection([TPMSPCRSelection(hash: .sha256, pcrs: Array(0...14))]))
        for pcr in 0...14 {
            #expect(predicted[String(pcr)] == Hex.encode(values[.sha256, pcr] ?? []), "PCR \(pcr)")
        }
        // And the prediction differs from today's boot exactly where the application is measured.
        let today = EventLogReplay(log)
        #expect(predicted["4"] != Hex.encode(today.value(.sha256, 4) ?? []))
        #expect(predicted["7"] == Hex.encode(today.value(.sha256, 7) ?? []))
    }
}
