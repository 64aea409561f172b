import Foundation
import SwiftASN1
public import X509

/// CA certificates as TPM vendors publish them: a folder of PEM and DER files (`.pem`, `.cer`, `.crt`,
/// `.der`), roots and intermediates mixed, some with several certificates per PEM file, some with
/// padding after the DER or without a trailing newline. Files that are not certificates are reported,
/// not fatal.
public struct CACertificateFolder: Sendable {
    /// Every certificate read, in file-name order.
    public let certificates: [Certificate]
    /// Files that could not be read as certificates, with the reason.
    public let skipped: [(file: String, reason: String)]
    /// Files read only after repairing a departure from DER, with what was repaired (see ``parse(_:)``).
    public let repaired: [(file: String, reason: String)]
    /// Largest file read (vendor bundles are a few KiB per certificate).
    public static let maxFileSize = 1 << 20

    /// Reads every regular, non-hidden file in the folder at `path`; throws only when the folder cannot be listed.
    public init(path: String) throws(AttestError) {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: path).sorted()
        } catch {
            throw AttestError(
                code: .invalidValue, reason: "CA folder \(path): cannot list: \(error.localizedDescription)")
        }
        var certificates: [Certificate] = []
        var skipped: [(String, String)] = []
        var repaired: [(String, String)] = []
        for name in names where !name.hasPrefix(".") {
            let url = URL(fileURLWithPath: path).appendingPathComponent(name)
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue
            else { continue }
            let size = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0
            guard size <= Self.maxFileSize, let data = try? Data(contentsOf: url) else {
                skipped.append((name, "unreadable or over \(Self.maxFileSize) bytes"))
                continue
            }
            do {
                for (certificate, repair) in try Self.parseReportingRepairs(Array(data)) {
                    certificates.append(certificate)
                    if let repair { repaired.append((name, repair)) }
                }
            } catch {
                skipped.append((name, error.reason))
            }
        }
        self.certificates = certificates
        self.skipped = skipped
        self.repaired = repaired
    }

    /// Every certificate in a PEM bundle, or the one DER certificate (padding tolerated).
    ///
    /// A self-signed CA certificate whose only fault is SET OF elements out of DER order (``DERSetOrder``) is
    /// accepted after repair, and only if its self-signature verifies over the bytes as published; every
    /// other non-DER certificate is refused.
    public static func parse(_ bytes: [UInt8]) throws(AttestError) -> [Certificate] {
        try parseReportingRepairs(bytes).map(\.0)
    }

    static func parseReportingRepairs(_ bytes: [UInt8]) throws(AttestError) -> [(Certificate, String?)] {
        if let text = String(validating: bytes, as: UTF8.self), text.contains("-----BEGIN CERTIFICATE-----") {
            var out: [(Certificate, String?)] = []
            var rest = Substring(text)
            while let begin = rest.range(of: "-----BEGIN CERTIFICATE-----"),
                let end = rest.range(of: "-----END CERTIFICATE-----", range: begin.upperBound..<rest.endIndex)
            {
                let block = String(rest[begin.lowerBound..<end.upperBound]) + "\n"
                let der: [UInt8]
                do {
                    der = try PEMDocument(pemString: block).derBytes
                } catch {
                    throw AttestError(code: .invalidValue, reason: "not a valid PEM certificate: \(error)")
                }
                out.append(try certificate(der: der))
                rest = rest[end.upperBound...]
            }
            return out
        }
        guard bytes.count <= EKCertificate.maxSize else {
            throw .tooLarge("certificate", size: bytes.count, limit: EKCertificate.maxSize, at: 0)
        }
        // Padding after the DER is tolerated as for EK certificates read from NV.
        return [try certificate(der: try EKCertificate.strippingPadding(bytes))]
    }

    private static func certificate(der: [UInt8]) throws(AttestError) -> (Certificate, String?) {
        do {
            return (try Certificate(derEncoded: der), nil)
        } catch {
            if let repaired = repairedSelfSigned(der) { return repaired }
            throw AttestError(code: .invalidValue, reason: "not a valid X.509 certificate: \(error)")
        }
    }

    /// The certificate with its SETs put in DER order, if that makes it parse, it is self-issued, and its
    /// signature verifies over the `tbsCertificate` bytes as published.
    static func repairedSelfSigned(_ der: [UInt8]) -> (Certificate, String)? {
        guard let canonical = DERSetOrder.canonicalized(der), canonical != der,
            let certificate = try? Certificate(derEncoded: canonical),
            certificate.subject == certificate.issuer,
            let signedBytes = DERSetOrder.signedPortion(ofCertificate: der),
            let signature = DERSetOrder.signatureValue(ofCertificate: der),
            certificate.publicKey.isValidSignature(
                signature, for: signedBytes, signatureAlgorithm: certificate.signatureAlgorithm)
        else { return nil }
        return (
            certificate,
            "SET OF elements not in DER order (X.690 §11.6); accepted as a self-signed anchor after its signature verified over the bytes as published"
        )
    }
}
