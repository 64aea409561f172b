public import Attest
import X509

/// SHA-256 (lowercase hex) of an EK's DER SubjectPublicKeyInfo: the key the TPM manufacturer certified.
/// The same value as ``AKBinding/ekPublicKeySHA256`` and as `openssl x509 -pubkey | openssl pkey -pubin
/// -outform DER | sha256sum` on the EK certificate, so a security team can allow a device before it ever connects.
public struct EKFingerprint: Hashable, Sendable, Codable, CustomStringConvertible, LosslessStringConvertible {
    /// 64 lowercase hex digits.
    public let hex: String

    /// Parses 64 hex digits (either case; stored lowercase); nil otherwise.
    public init?(_ description: String) {
        guard description.utf8.count == 64, let bytes = Hex.decode(description), bytes.count == 32 else { return nil }
        hex = Hex.encode(bytes)
    }

    /// The fingerprint of an EK given as its TPM public area.
    public init(ek: TPMTPublic) throws(AttestError) {
        hex = try AKBinding.fingerprint(ofEK: ek)
    }

    /// The text form.
    public var description: String { hex }

    /// Decodes the text form, refusing anything that is not valid.
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let f = EKFingerprint(text) else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "not an EK fingerprint (64 hex digits)"))
        }
        self = f
    }

    /// Encodes the text form.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(hex)
    }
}
