public import X509
import SwiftASN1
import Foundation

/// CA certificates as TPM vendors publish them: a folder of PEM and DER files (`.pem`, `.cer`, `.crt`,
/// `.der`), roots and intermediates mixed, some with several certificates per PEM file, some with
/// padding after the DER or without a trailing newline. Files that are not certificates are reported,
/// not fatal.
public struct CACertificateFolder: Sendable {
    public let certificates: [Certificate]
    /// Files that could not be read as certificates, with the reason.
    public let skipped: [(file: String, reason: String)]
    /// Largest file read (vendor bundles are a few KiB per certificate).
    public static let maxFileSize = 1 << 20

    public init(path: String) throws(AttestError) {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: path).sorted()
        } catch {
            throw AttestError(code: .invalidValue, reason: "CA folder \(path): cannot list: \(error.localizedDescription)")
        }
        var certificates: [Certificate] = []
        var skipped: [(String, String)] = []
        for name in names where !name.hasPrefix(".") {
            let url = URL(fileURLWithPath: path).appendingPathComponent(name)
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            let size = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0
            guard size <= Self.maxFileSize, let data = try? Data(contentsOf: url) else {
                skipped.append((name, "unreadable or over \(Self.maxFileSize) bytes"))
                continue
            }
            do {
                certificates.append(contentsOf: try Self.parse(Array(data)))
            } catch {
                skipped.append((name, error.reason))
            }
        }
        self.certificates = certificates
        self.skipped = skipped
    }

    /// Every certificate in a PEM bundle, or the one DER certificate (padding tolerated).
    public static func parse(_ bytes: [UInt8]) throws(AttestError) -> [Certificate] {
        if let text = String(validating: bytes, as: UTF8.self), text.contains("-----BEGIN CERTIFICATE-----") {
            var out: [Certificate] = []
            var rest = Substring(text)
            while let begin = rest.range(of: "-----BEGIN CERTIFICATE-----"), let end = rest.range(of: "-----END CERTIFICATE-----", range: begin.upperBound..<rest.endIndex) {
                let block = String(rest[begin.lowerBound..<end.upperBound]) + "\n"
                do {
                    out.append(try Certificate(pemEncoded: block))
                } catch {
                    throw AttestError(code: .invalidValue, reason: "not a valid X.509 certificate: \(error)")
                }
                rest = rest[end.upperBound...]
            }
            return out
        }
        return [try EKCertificate(bytes: bytes).certificate]
    }
}
