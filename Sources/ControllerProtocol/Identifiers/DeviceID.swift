import Attest
import Crypto

/// A device's identity at the controller: `vd-` and the first 96 bits (24 hex digits) of the SHA-256 of its
/// EK's SubjectPublicKeyInfo (``EKFingerprint``). It is derived, never chosen by the device: onboarding the same
/// TPM again yields the same id, and a second TPM cannot claim it without that EK (credential activation).
///
/// A device that attests through EVE's API (``init(eveDeviceKey:)``) has no EK at registration; its id comes from
/// its device certificate's key instead, in a separate hash domain so that it can never equal an EK-derived id.
public struct DeviceID: Hashable, Sendable, Codable, Comparable, CustomStringConvertible, LosslessStringConvertible {
    /// The text form, `vd-` and 24 lowercase hex digits.
    public let rawValue: String

    /// The id of the device whose EK has `fingerprint`.
    public init(ekFingerprint fingerprint: EKFingerprint) {
        rawValue = "vd-" + fingerprint.hex.prefix(24)
    }

    /// The id of an EVE device: SHA-256 over `"vigil eve device key\0"` and its device certificate's DER
    /// SubjectPublicKeyInfo (EVE's device identity, immutable for the device's life).
    public init(eveDeviceKey subjectPublicKeyInfo: [UInt8]) {
        let digest = SHA256.hash(data: Array("vigil eve device key\u{0}".utf8) + subjectPublicKeyInfo)
        rawValue = "vd-" + Hex.encode(digest).prefix(24)
    }

    /// Parses the text form; nil unless it is exactly `vd-` and 24 lowercase hex digits.
    public init?(_ description: String) {
        let u = Array(description.utf8)
        guard u.count == 27, description.hasPrefix("vd-"),
            u.dropFirst(3).allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) })
        else { return nil }
        rawValue = description
    }

    /// The text form.
    public var description: String { rawValue }

    /// Orders by the text form.
    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }

    /// Decodes the text form, refusing anything that is not valid.
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let id = DeviceID(text) else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "not a device id (vd- and 24 hex digits)"))
        }
        self = id
    }

    /// Encodes the text form.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }
}
