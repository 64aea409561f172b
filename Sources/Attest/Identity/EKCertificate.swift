import Foundation
public import SwiftASN1
public import X509

/// A TPM endorsement-key certificate (TCG EK Credential Profile for TPM 2.0), as read from NV or a
/// vendor's file: DER or PEM, with real-world quirks tolerated where they cannot hide anything —
/// padding after the DER (NV indices are often larger than the certificate, filled with 0xFF or 0x00)
/// and a missing trailing newline in PEM.
///
/// Decoding is not validation: use ``EKCertificateVerifier`` to build a chain to a vendor root.
public struct EKCertificate: Hashable, Sendable {
    /// Largest certificate accepted (NV EK certificates are at most a few KiB).
    public static let maxSize = 16 * 1024

    /// The parsed X.509 certificate (repaired from non-DER only when self-signed; see ``CACertificateFolder``).
    public let certificate: Certificate
    /// The certificate's exact DER encoding (padding removed).
    public let derBytes: [UInt8]

    /// TCG TPM attributes from the SubjectAltName directoryName (EK Credential Profile §3.2.9).
    public let tpmManufacturer: String?
    /// tcg-at-tpmModel (2.23.133.2.2) from the SubjectAltName, as the certificate states it.
    public let tpmModel: String?
    /// tcg-at-tpmVersion (2.23.133.2.3) from the SubjectAltName, as the certificate states it.
    public let tpmVersion: String?

    /// tcg-kp-EKCertificate — 2.23.133.8.1.
    public static let ekCertificateUsage: ASN1ObjectIdentifier = [2, 23, 133, 8, 1]
    static let tpmManufacturerOID: ASN1ObjectIdentifier = [2, 23, 133, 2, 1]
    static let tpmModelOID: ASN1ObjectIdentifier = [2, 23, 133, 2, 2]
    static let tpmVersionOID: ASN1ObjectIdentifier = [2, 23, 133, 2, 3]

    /// Decodes a DER or PEM EK certificate (at most ``maxSize`` bytes); only all-0xFF or all-0x00 padding may
    /// follow the DER. Nothing about the certificate is validated here.
    public init(bytes: [UInt8]) throws(AttestError) {
        guard bytes.count <= Self.maxSize else {
            throw .tooLarge("EK certificate", size: bytes.count, limit: Self.maxSize, at: 0)
        }
        var der = bytes
        if let text = String(validating: bytes, as: UTF8.self), text.contains("-----BEGIN") {
            do {
                der = try PEMDocument(pemString: text.hasSuffix("\n") ? text : text + "\n").derBytes
            } catch {
                throw AttestError(code: .invalidValue, reason: "EK certificate: PEM is not valid: \(error)")
            }
        }
        der = try Self.strippingPadding(der)
        do {
            certificate = try Certificate(derEncoded: der)
        } catch {
            // Only a self-signed certificate can be repaired (its signature is checked over the published bytes).
            guard let (repaired, _) = CACertificateFolder.repairedSelfSigned(der) else {
                throw AttestError(
                    code: .invalidValue, reason: "EK certificate: not a valid X.509 certificate: \(error)")
            }
            certificate = repaired
        }
        derBytes = der
        var manufacturer: String?, model: String?, version: String?
        if let san = try? certificate.extensions.subjectAlternativeNames {
            for name in san {
                guard case .directoryName(let dn) = name else { continue }
                for rdn in dn {
                    for attribute in rdn {
                        switch attribute.type {
                        case Self.tpmManufacturerOID:
                            manufacturer = String(attribute.value) ?? attribute.value.description
                        case Self.tpmModelOID: model = String(attribute.value) ?? attribute.value.description
                        case Self.tpmVersionOID: version = String(attribute.value) ?? attribute.value.description
                        default: break
                        }
                    }
                }
            }
        }
        tpmManufacturer = manufacturer
        tpmModel = model
        tpmVersion = version
    }

    /// The DER certificate without the padding that follows it when read from NV (all 0xFF or all 0x00).
    static func strippingPadding(_ bytes: [UInt8]) throws(AttestError) -> [UInt8] {
        let length = try derLength(bytes)
        let padding = bytes[length...]
        guard padding.allSatisfy({ $0 == 0xFF }) || padding.allSatisfy({ $0 == 0x00 }) else {
            throw .trailingBytes("EK certificate", count: padding.count, at: length)
        }
        return Array(bytes[..<length])
    }

    /// Length of the outer DER SEQUENCE (header + content), checked against the input.
    static func derLength(_ bytes: [UInt8]) throws(AttestError) -> Int {
        var reader = ByteReader(bytes)
        let tag = try reader.readUInt8("EK certificate: tag")
        guard tag == 0x30 else {
            throw AttestError.invalid(
                "EK certificate: does not start with a DER SEQUENCE (tag 0x\(String(tag, radix: 16)))")
        }
        let first = try reader.readUInt8("EK certificate: length")
        var length = 0
        if first < 0x80 {
            length = Int(first)
        } else {
            let count = Int(first & 0x7F)
            guard (1...3).contains(count) else {
                throw AttestError.invalid("EK certificate: unsupported DER length of \(count) bytes")
            }
            for _ in 0..<count { length = length << 8 | Int(try reader.readUInt8("EK certificate: length")) }
        }
        let total = reader.offset + length
        guard total <= bytes.count else {
            throw .truncated(
                "EK certificate", at: reader.offset, needed: length, available: bytes.count - reader.offset)
        }
        return total
    }

    /// Whether the certificate's key is the given TPM public key (same algorithm and key material).
    public func matches(_ publicArea: TPMTPublic) throws(AttestError) -> Bool {
        try publicArea.certificatePublicKey() == certificate.publicKey
    }

    /// Issuer distinguished name, RFC 4514 style.
    public var issuer: String { certificate.issuer.description }
    /// Subject distinguished name (often empty for EK certificates; the SAN names the TPM).
    public var subject: String { certificate.subject.description }
}
