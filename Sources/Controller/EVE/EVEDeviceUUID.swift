import Foundation

/// The UUID the controller assigns an EVE device at registration (APIv2.md: "A Device MUST NOT generate its own
/// UUID"): a random version-4 UUID, written in lowercase, that the device puts in `/api/v2/edgedevice/id/{uuid}/…`.
public struct EVEDeviceUUID: Hashable, Sendable, CustomStringConvertible {
    /// Lowercase canonical text (8-4-4-4-12 hex digits).
    public let rawValue: String

    /// A fresh random UUID.
    static func make() -> EVEDeviceUUID { EVEDeviceUUID(rawValue: UUID().uuidString.lowercased()) }

    private init(rawValue: String) { self.rawValue = rawValue }

    /// Parses a path component; nil unless it is a UUID (any case; stored and compared in lowercase).
    public init?(_ text: String) {
        guard text.utf8.count == 36, let uuid = UUID(uuidString: text) else { return nil }
        rawValue = uuid.uuidString.lowercased()
    }

    /// The text.
    public var description: String { rawValue }
}
