import Attest
import Foundation
import SwiftASN1
import Testing
import X509

/// TPM wire structures: decoding real data, re-encoding, Names, and hostile input.
@Suite struct WireTests {
    static let gce = "quotes/gce_cos85_nonce9009/gce_cos85_nonce9009"

    @Test func ekTemplateWithTheCertificatesModulusHasTheNameTheTPMReports() throws {
        // The swtpm fixture's RSA EK: its public area is the TCG L-1 template with the modulus from its certificate.
        let cert = try EKCertificate(bytes: Fixture.bytes("ekcerts/swtpm-ek-rsa2048.der"))
        let key = try #require(_RSAKey(cert.certificate.publicKey))
        var template = TPMTPublic(
            nameAlg: .sha256,
            objectAttributes: [.fixedTPM, .fixedParent, .sensitiveDataOrigin, .adminWithPolicy, .restricted, .decrypt],
            authPolicy: Hex.decode("837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa") ?? [],
            parameters: .rsa(.init(symmetric: .aes128CFB, scheme: .null, keyBits: 2048, exponent: 0, modulus: key)))
        #expect(
            try template.name().description == "000b3c93e3d22cdeb74f009a6c06325b601c4540ce883c9b08923a94862fba79ea35")
        #expect(try cert.matches(template))
        template.objectAttributes.insert(.userWithAuth)
        #expect(
            try template.name().description != "000b3c93e3d22cdeb74f009a6c06325b601c4540ce883c9b08923a94862fba79ea35")
    }

    @Test func publicAreaRoundTripsThroughBothEncodings() throws {
        let bytes = try Fixture.bytes("\(Self.gce).ak_pub.tpmt_public.bin")
        let ak = try TPMTPublic(tpmtPublicBytes: bytes)
        #expect(ak.marshal() == bytes)
        #expect(try TPMTPublic(tpm2bPublicBytes: ak.marshalTPM2B()) == ak)
        #expect(try TPMTPublic(tpmPublicBytes: ak.marshalTPM2B()) == ak)
        #expect(
            ak.objectAttributes.isSuperset(of: [.fixedTPM, .fixedParent, .sensitiveDataOrigin, .restricted, .sign]))
        // The PEM shipped with the fixture is the same key.
        let pem = try TPMTPublic(signingKeyPEM: Fixture.text("quotes/gce_cos85_nonce9009/ak.pem"))
        #expect(try pem.certificatePublicKey() == ak.certificatePublicKey())
    }

    @Test(arguments: ["quote0_sha1", "quote1_sha256", "quote2_sha384"])
    func gceQuotesVerifyWithTheirAKAndNonce(_ name: String) throws {
        let ak = try TPMTPublic(tpmtPublicBytes: Fixture.bytes("\(Self.gce).ak_pub.tpmt_public.bin"))
        let attestBytes = try Fixture.bytes("\(Self.gce).\(name).attest.bin")
        let attest = try TPMSAttest(bytes: attestBytes)
        let signature = try TPMTSignature(bytes: Fixture.bytes("\(Self.gce).\(name).sig.bin"))
        #expect(attest.rawBytes == attestBytes)
        #expect(ak.isValidSignature(signature, for: attest.rawBytes))
        #expect(attest.extraData == [0x90, 0x09])
        var flipped = attestBytes
        flipped[flipped.count / 2] ^= 0x01
        #expect(!ak.isValidSignature(signature, for: flipped))
    }

    @Test func keylimeSwtpmQuoteInTPM2ToolsFormatsVerifies() throws {
        let ak = try TPMTPublic(signingKeyPEM: Fixture.text("quotes/keylime_checkquote/ak.pem"))
        let attest = try TPMSAttest(bytes: Fixture.bytes("quotes/keylime_checkquote/quote.attest.bin"))
        let signature = try TPMTSignature(bytes: Fixture.bytes("quotes/keylime_checkquote/quote.sig.bin"))
        let (selection, values) = try TPM2ToolsPCRFile.parse(
            Fixture.bytes("quotes/keylime_checkquote/pcrs.tpm2tools.bin"))
        #expect(ak.isValidSignature(signature, for: attest.rawBytes))
        #expect(String(decoding: attest.extraData, as: UTF8.self) == "Ai5M5SjYjnkyv4P7itH1")
        guard case .quote(let signed, let digest) = attest.attested else {
            Issue.record("not a quote")
            return
        }
        #expect(signed.selectsSamePCRs(as: selection))
        #expect(try values.digest(for: signed, hashAlg: .sha256) == digest)
        // The file round-trips through Vigil's writer.
        #expect(
            try TPM2ToolsPCRFile.serialize(selection: selection, values: values)
                == Fixture.bytes("quotes/keylime_checkquote/pcrs.tpm2tools.bin"))
    }

    @Test func pcrSelectionSpecsParseLikeTPM2Tools() throws {
        let s = try #require(TPMLPCRSelection(parsingSpec: "sha256:0,1,2,3+sha1:0-7+sha384:all"))
        #expect(s.selections.map(\.hash) == [.sha256, .sha1, .sha384])
        #expect(s.selections[1].pcrs == Array(0...7))
        #expect(s.selections[2].pcrs.count == 24)
        #expect(
            s.description == "sha256:0,1,2,3+sha1:0,1,2,3,4,5,6,7+sha384:"
                + (0..<24).map(String.init).joined(separator: ","))
        for bad in ["", "sha256", "sha256:", "md5:0", "sha256:0-", "sha256:32", "sha256:a", "sha256:3-1"] {
            #expect(TPMLPCRSelection(parsingSpec: bad) == nil, "\(bad)")
        }
    }

    @Test func ekCertificateWithFFPaddingFromNVParses() throws {
        let bytes = try Fixture.bytes("ekcerts/stm-rsa-ek-ca05-ffpadded.der")
        let cert = try EKCertificate(bytes: bytes)
        #expect(cert.derBytes.count < bytes.count)
        #expect(cert.issuer.contains("STM TPM EK Intermediate CA 05"))
        // Padding of anything but 0xFF/0x00 is trailing garbage.
        var garbage = cert.derBytes
        garbage.append(contentsOf: [0xFF, 0x01])
        #expect(throws: AttestError.self) { try EKCertificate(bytes: garbage) }
    }

    @Test func pemEKCertificateWithoutTrailingNewlineParses() throws {
        let der = try Fixture.bytes("ekcerts/swtpm-ek-rsa2048.der")
        let pem =
            "-----BEGIN CERTIFICATE-----\n" + Data(der).base64EncodedString(options: .lineLength64Characters)
            + "\n-----END CERTIFICATE-----"
        #expect(try EKCertificate(bytes: Array(pem.utf8)).derBytes == der)
    }
}

/// The RSA modulus of a certificate key, without leading zero.
func _RSAKey(_ key: Certificate.PublicKey) -> [UInt8]? {
    guard let pem = try? key.serializeAsPEM().pemString, let t = try? TPMTPublic(signingKeyPEM: pem),
        case .rsa(let p) = t.parameters
    else { return nil }
    return p.modulus
}
