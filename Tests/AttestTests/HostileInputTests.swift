import Attest
import Foundation
import Testing

/// Every decoder rejects truncation, trailing bytes, unknown algorithms, oversized sizes and bad magic
/// with a typed error, and never traps (the swift-asn1 drip-feed test, applied to TPM structures).
@Suite struct HostileInputTests {
    static let gce = "quotes/gce_cos85_nonce9009/gce_cos85_nonce9009"

    @Test(arguments: ["quote0_sha1", "quote1_sha256", "quote2_sha384"])
    func everyPrefixOfAnAttestIsRejectedAsTruncated(_ name: String) throws {
        let bytes = try Fixture.bytes("\(Self.gce).\(name).attest.bin")
        for n in 0..<bytes.count {
            let error = #expect(throws: AttestError.self) { try TPMSAttest(bytes: Array(bytes.prefix(n))) }
            #expect(error?.code == .truncated, "prefix \(n): \(String(describing: error))")
        }
        let trailing = #expect(throws: AttestError.self) { try TPMSAttest(bytes: bytes + [0]) }
        #expect(trailing?.code == .trailingBytes)
        #expect(trailing?.reason == "TPMS_ATTEST: 1 trailing byte(s) at byte \(bytes.count)")
    }

    @Test func everyPrefixOfAPublicAreaAndSignatureIsRejected() throws {
        let pub = try Fixture.bytes("\(Self.gce).ak_pub.tpmt_public.bin")
        for n in 0..<pub.count {
            #expect(throws: AttestError.self) { try TPMTPublic(tpmtPublicBytes: Array(pub.prefix(n))) }
        }
        #expect(throws: AttestError.self) { try TPMTPublic(tpmtPublicBytes: pub + [0]) }
        let sig = try Fixture.bytes("\(Self.gce).quote1_sha256.sig.bin")
        for n in 0..<sig.count {
            #expect(throws: AttestError.self) { try TPMTSignature(bytes: Array(sig.prefix(n))) }
        }
        #expect(throws: AttestError.self) { try TPMTSignature(bytes: sig + [0]) }
    }

    @Test func badMagicIsNamed() throws {
        var bytes = try Fixture.bytes("\(Self.gce).quote1_sha256.attest.bin")
        bytes[0] = 0xFE
        let error = #expect(throws: AttestError.self) { try TPMSAttest(bytes: bytes) }
        #expect(error?.code == .badMagic)
        #expect(error?.reason.contains("TPM_GENERATED_VALUE") == true)
    }

    @Test func unknownAlgorithmsAndUnionSelectorsAreRejected() throws {
        // TPMT_SIGNATURE with sigAlg 0x7777.
        let sig = #expect(throws: AttestError.self) { try TPMTSignature(bytes: [0x77, 0x77, 0x00, 0x0B, 0x00, 0x00]) }
        #expect(sig?.code == .unknownAlgorithm)
        #expect(sig?.reason == "TPMT_SIGNATURE.sigAlg: unknown or unsupported algorithm 0x7777 at byte 0")
        // ECDSA with a hash of 0x0099.
        #expect(throws: AttestError.self) {
            try TPMTSignature(bytes: [0x00, 0x18, 0x00, 0x99, 0x00, 0x00, 0x00, 0x00])
        }
        // TPMT_PUBLIC of type 0x0099.
        let pub = #expect(throws: AttestError.self) {
            try TPMTPublic(tpmtPublicBytes: [0x00, 0x99, 0x00, 0x0B, 0, 0, 0, 0, 0, 0])
        }
        #expect(pub?.code == .unknownAlgorithm)
        // TPMS_ATTEST of type TPM_ST_ATTEST_TIME (0x8019): well formed but not handled.
        var attest = try Fixture.bytes("\(Self.gce).quote1_sha256.attest.bin")
        attest[5] = 0x19
        #expect((#expect(throws: AttestError.self) { try TPMSAttest(bytes: attest) })?.code == .unsupportedStructure)
    }

    @Test func oversizedSizesAreRejectedBeforeAllocating() throws {
        // TPMT_PUBLIC with an authPolicy of 65535 bytes declared.
        let pub = #expect(throws: AttestError.self) {
            try TPMTPublic(tpmtPublicBytes: [0x00, 0x23, 0x00, 0x0B, 0, 0, 0, 0, 0xFF, 0xFF])
        }
        #expect(pub?.code == .sizeLimitExceeded)
        // TPML_PCR_SELECTION with 0xFFFFFFFF banks.
        var r = ByteReader([0xFF, 0xFF, 0xFF, 0xFF])
        #expect((#expect(throws: AttestError.self) { try TPMLPCRSelection(parsing: &r) })?.code == .sizeLimitExceeded)
        // A sizeofSelect of 200.
        var r2 = ByteReader([0, 0, 0, 1, 0x00, 0x0B, 200])
        #expect((#expect(throws: AttestError.self) { try TPMLPCRSelection(parsing: &r2) })?.code == .sizeLimitExceeded)
        // Whole inputs over the caps.
        #expect(throws: AttestError.self) { try TPMSAttest(bytes: [UInt8](repeating: 0, count: 100_000)) }
        #expect(throws: AttestError.self) { try TPMTSignature(bytes: [UInt8](repeating: 0, count: 100_000)) }
        #expect(throws: AttestError.self) { try EKCertificate(bytes: [UInt8](repeating: 0x30, count: 100_000)) }
    }

    @Test func tpm2ToolsPCRFilesAreBoundsChecked() throws {
        let good = try Fixture.bytes("quotes/keylime_checkquote/pcrs.tpm2tools.bin")
        for n in stride(from: 0, to: good.count, by: 7) {
            #expect(throws: AttestError.self) { try TPM2ToolsPCRFile.parse(Array(good.prefix(n))) }
        }
        var hugeCount = good
        hugeCount[0] = 0xFF
        #expect(throws: AttestError.self) { try TPM2ToolsPCRFile.parse(hugeCount) }
    }

    @Test func randomBytesNeverTrapAnyDecoder() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<5000 {
            let length = Int.random(in: 0..<300, using: &generator)
            var bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if length > 6, Bool.random() { bytes.replaceSubrange(0..<4, with: [0xFF, 0x54, 0x43, 0x47]) }
            _ = try? TPMSAttest(bytes: bytes)
            _ = try? TPMTSignature(bytes: bytes)
            _ = try? TPMTPublic(tpmPublicBytes: bytes)
            _ = try? TPMSCapabilityData(bytes: bytes)
            _ = try? TPMSNVPublic(tpm2bBytes: bytes)
            _ = try? TPM2ToolsPCRFile.parse(bytes)
            _ = try? EKCertificate(bytes: bytes)
        }
    }
}
