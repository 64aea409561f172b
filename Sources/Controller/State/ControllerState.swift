import Attest
import Crypto
public import Foundation
import SwiftASN1
import SystemSupport
public import X509

/// The controller's own keys and certificates, in its state folder, created on first start:
///
/// | file | what | mode |
/// |---|---|---|
/// | `ca.pem`, `ca.key` | the controller CA (P-256), what devices and admins pass as `--ca` | 0644, 0600 |
/// | `tls.pem`, `tls.key` | the TLS server certificate, issued by the CA | 0644, 0600 |
/// | `result-signing.key`, `result-signing.pub.pem` | ES256 key signing attestation results | 0600, 0644 |
/// | `storage.key` | AES-256 key sealing secrets at rest in the database | 0600 |
/// | `eve-signing.pem`, `eve-signing.key` | the object-signing certificate (P-256, issued by the CA) that signs every `AuthContainer` the EVE API answers | 0644, 0600 |
/// | `admin-token` | the bootstrap admin token (its hash is in the database) | 0600 |
///
/// Each file is written with fsync and rename (never torn); keys are created before the certificates that
/// name them, and a start that finds some files missing creates only those (a killed first start resumes).
public struct ControllerState: Sendable {
    /// The folder.
    public let directory: URL
    /// The CA certificate.
    public let caCertificate: Certificate
    /// The CA certificate, PEM.
    public let caPEM: String
    /// The TLS certificate chain, PEM (leaf, then CA).
    public let tlsChainPEM: String
    /// The TLS private key, PEM.
    let tlsKeyPEM: String
    /// The result-signing key.
    let resultSigningKey: P256.Signing.PrivateKey
    /// The storage key.
    let storageKey: SymmetricKey
    /// The EVE API's object-signing certificate (`CERT_TYPE_CONTROLLER_SIGNING`), issued by the CA.
    public let eveSigningCertificate: Certificate
    /// Its key: signs the payload of every `AuthContainer` the EVE endpoints answer (OBJECT-SIGNING.md).
    let eveSigningKey: P256.Signing.PrivateKey

    /// SHA-256 of the CA certificate's DER, hex: what the controller prints at start for the team to compare.
    public var caFingerprint: String {
        var s = DER.Serializer()
        try? s.serialize(caCertificate)
        return Hex.encode(SHA256.hash(data: s.serializedBytes))
    }

    /// The public half of the result-signing key, PEM.
    public var resultSigningPublicKeyPEM: String { resultSigningKey.publicKey.pemRepresentation }

    /// Loads the state in `directory`, creating what is missing. `tlsNames` are extra DNS names or IP
    /// addresses for the TLS certificate (beyond localhost, 127.0.0.1, ::1 and the host name).
    public static func loadOrCreate(directory: URL, tlsNames: [String] = [], now: Date = Date())
        throws(ControllerError) -> ControllerState
    {
        do {
            try FileManager.default.createDirectory(
                at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let caKey = try loadOrCreateKey(directory.appendingPathComponent("ca.key"))
            let caCert = try loadOrCreateCertificate(directory.appendingPathComponent("ca.pem")) {
                try makeCA(key: caKey, now: now)
            }
            let tlsKey = try loadOrCreateKey(directory.appendingPathComponent("tls.key"))
            let tlsCert = try loadOrCreateCertificate(directory.appendingPathComponent("tls.pem")) {
                try makeTLSCertificate(key: tlsKey, caKey: caKey, ca: caCert, names: tlsNames, now: now)
            }
            let resultKey = try loadOrCreateKey(directory.appendingPathComponent("result-signing.key"))
            let pub = directory.appendingPathComponent("result-signing.pub.pem")
            if (try? String(contentsOf: pub, encoding: .utf8)) != resultKey.publicKey.pemRepresentation {
                try AtomicFile.write(resultKey.publicKey.pemRepresentation + "\n", to: pub, mode: 0o644)
            }
            let storageURL = directory.appendingPathComponent("storage.key")
            var storage = try? Array(Data(contentsOf: storageURL))
            if storage?.count != 32 {
                let fresh = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
                try AtomicFile.write(fresh, to: storageURL, mode: 0o600)
                storage = fresh
            }
            let eveKey = try loadOrCreateKey(directory.appendingPathComponent("eve-signing.key"))
            let eveCert = try loadOrCreateCertificate(directory.appendingPathComponent("eve-signing.pem")) {
                try makeObjectSigningCertificate(key: eveKey, caKey: caKey, ca: caCert, now: now)
            }
            let caPEM = try caCert.serializeAsPEM().pemString
            return ControllerState(
                directory: directory, caCertificate: caCert, caPEM: caPEM,
                tlsChainPEM: try tlsCert.serializeAsPEM().pemString + "\n" + caPEM,
                tlsKeyPEM: tlsKey.pemRepresentation, resultSigningKey: resultKey,
                storageKey: SymmetricKey(data: storage ?? []), eveSigningCertificate: eveCert, eveSigningKey: eveKey)
        } catch let e as ControllerError {
            throw e
        } catch {
            throw .internalFailure("controller state in \(directory.path): \(error)")
        }
    }

    /// The bootstrap admin token: read from `admin-token`, or created there (0600) when absent. The caller
    /// stores its hash.
    func bootstrapAdminToken() throws(ControllerError) -> (token: String, created: Bool) {
        let url = directory.appendingPathComponent("admin-token")
        if let text = try? String(contentsOf: url, encoding: .utf8) {
            let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if !token.isEmpty { return (token, false) }
        }
        let token = TokenHash.newToken(prefix: "vat")
        do { try AtomicFile.write(token + "\n", to: url, mode: 0o600) } catch {
            throw .internalFailure("cannot write \(url.path): \(error)")
        }
        return (token, true)
    }

    private static func loadOrCreateKey(_ url: URL) throws -> P256.Signing.PrivateKey {
        if let pem = try? String(contentsOf: url, encoding: .utf8) {
            return try P256.Signing.PrivateKey(pemRepresentation: pem)
        }
        let key = P256.Signing.PrivateKey()
        try AtomicFile.write(key.pemRepresentation + "\n", to: url, mode: 0o600)
        return key
    }

    private static func loadOrCreateCertificate(_ url: URL, make: () throws -> Certificate) throws -> Certificate {
        if let pem = try? String(contentsOf: url, encoding: .utf8) {
            return try Certificate(pemEncoded: pem)
        }
        let cert = try make()
        try AtomicFile.write(try cert.serializeAsPEM().pemString + "\n", to: url, mode: 0o644)
        return cert
    }

    private static func makeCA(key: P256.Signing.PrivateKey, now: Date) throws -> Certificate {
        let name = try DistinguishedName {
            OrganizationName("Vigil")
            CommonName(
                "Vigil controller CA \(Hex.encode(SHA256.hash(data: key.publicKey.derRepresentation).prefix(4)))")
        }
        return try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-3600), notValidAfter: now.addingTimeInterval(10 * 365 * 86400),
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: Certificate.PublicKey(key.publicKey))
            }, issuerPrivateKey: .init(key))
    }

    private static func makeTLSCertificate(
        key: P256.Signing.PrivateKey, caKey: P256.Signing.PrivateKey, ca: Certificate, names: [String], now: Date
    ) throws -> Certificate {
        var sans: [GeneralName] = [
            .dnsName("localhost"), .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1])),
            .ipAddress(ASN1OctetString(contentBytes: ArraySlice([UInt8](repeating: 0, count: 15) + [1]))),
        ]
        var hostName = [CChar](repeating: 0, count: 256)
        if gethostname(&hostName, 255) == 0 {
            let host = String(decoding: hostName.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if !host.isEmpty, host != "localhost" { sans.append(.dnsName(host)) }
        }
        for name in names {
            if let v4 = IPv4(name) {
                sans.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(v4))))
            } else {
                sans.append(.dnsName(name))
            }
        }
        return try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-3600), notValidAfter: now.addingTimeInterval(2 * 365 * 86400),
            issuer: ca.subject,
            subject: try DistinguishedName {
                OrganizationName("Vigil")
                CommonName("Vigil controller")
            }, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames(sans)
                AuthorityKeyIdentifier(
                    keyIdentifier: try ca.extensions.subjectKeyIdentifier?.keyIdentifier)
            }, issuerPrivateKey: .init(caKey))
    }

    /// The EVE API's object-signing certificate: digitalSignature only, no EKU for TLS (it signs payloads, not
    /// handshakes), chained to the CA a device is configured with at birth (EVE's `root-certificate.pem`).
    private static func makeObjectSigningCertificate(
        key: P256.Signing.PrivateKey, caKey: P256.Signing.PrivateKey, ca: Certificate, now: Date
    ) throws -> Certificate {
        try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-3600), notValidAfter: now.addingTimeInterval(2 * 365 * 86400),
            issuer: ca.subject,
            subject: try DistinguishedName {
                OrganizationName("Vigil")
                CommonName("Vigil controller object signing (EVE API)")
            }, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                SubjectKeyIdentifier(hash: Certificate.PublicKey(key.publicKey))
                AuthorityKeyIdentifier(keyIdentifier: try ca.extensions.subjectKeyIdentifier?.keyIdentifier)
            }, issuerPrivateKey: .init(caKey))
    }

    private static func IPv4(_ text: String) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        let bytes = parts.compactMap { UInt8($0) }
        return bytes.count == 4 ? bytes : nil
    }
}
