import Crypto
public import Foundation
import SwiftASN1
public import X509

/// What credential activation proved (TPM 2.0 Part 1 §24 "Credential Protection"; TPM2_MakeCredential and
/// TPM2_ActivateCredential, Part 3 §12.6 and §12.5): the TPM holding the EK with this public key also holds
/// the key with this Name, because only that TPM could unwrap a secret bound to both.
///
/// The verifier records it at onboarding (the controller's device record) and supplies it; it is never taken
/// from evidence. Without it, nothing ties a quote's AK to the EK certificate sent next to it: anyone can
/// copy a genuine (public) EK certificate beside a software key.
public struct AKBinding: Hashable, Sendable, Codable {
    /// The Name of the attestation key the credential was made for.
    public let akName: TPMName
    /// SHA-256 (hex) of the DER SubjectPublicKeyInfo of the EK the credential was encrypted to.
    public let ekPublicKeySHA256: String
    /// When the activation succeeded (informational).
    public let activatedAt: Date?

    /// Builds a binding; the EK fingerprint is stored lowercased.
    public init(akName: TPMName, ekPublicKeySHA256: String, activatedAt: Date?) {
        self.akName = akName
        self.ekPublicKeySHA256 = ekPublicKeySHA256.lowercased()
        self.activatedAt = activatedAt
    }

    enum CodingKeys: String, CodingKey {
        case akName = "ak_name", ekPublicKeySHA256 = "ek_public_key_sha256", activatedAt = "activated_at"
    }

    /// The binding as the verifier stores it (JSON, dates in RFC 3339).
    public func json() throws(AttestError) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        do { return Array(try encoder.encode(self)) } catch { throw AttestError.invalid("AK binding: \(error)") }
    }

    /// Reads a stored binding (bounded; the Name must be a TPM object name and the fingerprint 32 bytes of hex).
    public init(json: [UInt8]) throws(AttestError) {
        guard json.count <= 16 * 1024 else { throw .tooLarge("AK binding", size: json.count, limit: 16 * 1024, at: 0) }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let b: AKBinding
        do { b = try decoder.decode(AKBinding.self, from: Data(json)) } catch {
            throw AttestError.invalid("AK binding: not a binding record: \(error)")
        }
        guard b.akName.bytes.count >= 2 + 20, Hex.decode(b.ekPublicKeySHA256)?.count == 32 else {
            throw AttestError.invalid(
                "AK binding: ak_name is not an object Name or ek_public_key_sha256 is not a SHA-256")
        }
        self = b
    }

    /// SHA-256 (hex) of a certificate's DER SubjectPublicKeyInfo: how a binding names its EK.
    public static func fingerprint(of key: Certificate.PublicKey) throws(AttestError) -> String {
        var serializer = DER.Serializer()
        do {
            try serializer.serialize(key)
        } catch {
            throw AttestError(
                code: .cryptography, reason: "EK public key: cannot encode its SubjectPublicKeyInfo: \(error)")
        }
        return Hex.encode(SHA256.hash(data: serializer.serializedBytes))
    }

    /// SHA-256 (hex) of an EK's DER SubjectPublicKeyInfo, from its TPM public area: the same value as
    /// ``fingerprint(of:)`` of the EK certificate's key when the certificate is for this EK.
    public static func fingerprint(ofEK ek: TPMTPublic) throws(AttestError) -> String {
        try fingerprint(of: try ek.certificatePublicKey())
    }
}

/// Whether the verifier could tie the attestation key to the EK.
public enum AKBindingStatus: Hashable, Sendable, CustomStringConvertible {
    /// The quote's AK and the evidence's EK are those of the verifier's credential-activation record.
    case bound(AKBinding)
    /// No record was supplied: identity rules fail, and the verdict says so.
    case notBound(reason: String)

    /// True for ``bound(_:)``.
    public var isBound: Bool { if case .bound = self { true } else { false } }

    /// One line for reports.
    public var description: String {
        switch self {
        case .bound(let b): "AK \(b.akName) bound to EK key \(b.ekPublicKeySHA256.prefix(16))… by credential activation"
        case .notBound(let reason): "AK not bound to the EK: \(reason)"
        }
    }
}
