public import Attest
import Crypto
public import Foundation
import SwiftASN1
public import X509

/// The device's X.509 identity certificate: self-signed inside the TPM by the device identity key.
///
/// Subject `CN=vigil-device-<first 16 hex digits of the device key Name digest>, O=Vigil`; valid from one hour
/// before creation to 9999-12-31 (RFC 5280 §4.1.2.5's "no well-defined expiration"); not a CA;
/// digitalSignature; client and server authentication.
public enum DeviceCertificate {
    /// Builds and TPM-signs the certificate for the device key at `handle`.
    public static func make(tpm: TPM, handle: TPMHandle, publicArea: TPMTPublic, name: TPMName, now: Date = Date())
        async throws(TPMError) -> Certificate
    {
        let publicKey: Certificate.PublicKey
        do { publicKey = try publicArea.certificatePublicKey() } catch {
            throw TPMError(code: .certificate, reason: "device key: \(error)")
        }
        let serial = try await tpm.getRandom(16)
        let commonName = "vigil-device-" + Hex.encode(name.bytes.dropFirst(2).prefix(8))
        do {
            let subject = try DistinguishedName {
                OrganizationName("Vigil")
                CommonName(commonName)
            }
            let extensions = try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.clientAuth, .serverAuth])
                SubjectKeyIdentifier(hash: publicKey)
            }
            let signer = TPMSigningKey(tpm: tpm, handle: handle, publicKey: publicKey)
            // Serial numbers are positive: clear the top bit.
            var serialBytes = serial
            serialBytes[0] &= 0x7F
            return try await Certificate(
                version: .v3, serialNumber: Certificate.SerialNumber(bytes: serialBytes), publicKey: publicKey,
                notValidBefore: now.addingTimeInterval(-3600),
                notValidAfter: Date(timeIntervalSince1970: 253_402_300_799),
                issuer: subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256, extensions: extensions,
                issuerAsyncPrivateKey: Certificate.PrivateKey(signer))
        } catch let error as TPMError {
            throw error
        } catch {
            throw TPMError(code: .certificate, reason: "device certificate: \(error)")
        }
    }

    /// DER encoding.
    public static func serialize(_ certificate: Certificate) throws(TPMError) -> [UInt8] {
        do {
            var serializer = DER.Serializer()
            try serializer.serialize(certificate)
            return serializer.serializedBytes
        } catch {
            throw TPMError(code: .certificate, reason: "device certificate: cannot encode: \(error)")
        }
    }

    /// Parses a stored certificate and checks it belongs to `publicArea` and carries a valid self-signature.
    /// Returns nil when it does not (it must then be rebuilt).
    public static func validStored(_ bytes: [UInt8], for publicArea: TPMTPublic) -> Certificate? {
        guard let certificate = try? Certificate(derEncoded: bytes),
            let key = try? publicArea.certificatePublicKey(),
            certificate.publicKey == key,
            key.isValidSignature(certificate.signature, for: certificate)
        else { return nil }
        return certificate
    }

    /// SHA-256 fingerprint of the DER encoding, lowercase hex.
    public static func fingerprint(_ der: [UInt8]) -> String { Hex.encode(SHA256.hash(data: der)) }
}
