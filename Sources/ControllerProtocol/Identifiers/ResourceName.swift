/// The name of something a security team creates at the controller: a policy, a group, a secret, an EK CA
/// bundle. One to 64 characters of `A–Z a–z 0–9 . _ -`, starting with a letter or digit: safe in a URL path,
/// a log line, a SQL parameter and a file name, so no identifier ever needs escaping or can smuggle a separator.
public struct ResourceName<Kind: ResourceKind>: Hashable, Sendable, Codable, Comparable, CustomStringConvertible,
    LosslessStringConvertible
{
    /// The name.
    public let rawValue: String

    /// Validates `description`; nil when it is not a name of this form.
    public init?(_ description: String) {
        let u = Array(description.utf8)
        guard (1...64).contains(u.count), let first = u.first, Self.isAlphanumeric(first),
            u.allSatisfy({ Self.isAlphanumeric($0) || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D })
        else { return nil }
        rawValue = description
    }

    /// Validates `text` and says what is wrong, naming the kind of resource.
    public static func parse(_ text: String) throws(ControllerProtocolError) -> Self {
        guard let name = Self(text) else {
            throw ControllerProtocolError(
                .invalid,
                "\(Kind.label) name \(text.debugDescription.prefix(80)) must be 1 to 64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit"
            )
        }
        return name
    }

    private static func isAlphanumeric(_ c: UInt8) -> Bool {
        (0x30...0x39).contains(c) || (0x41...0x5A).contains(c) || (0x61...0x7A).contains(c)
    }

    /// The name.
    public var description: String { rawValue }

    /// Orders by the text form.
    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }

    /// Decodes the text form, refusing anything that is not valid.
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let name = Self(text) else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "not a valid \(Kind.label) name"))
        }
        self = name
    }

    /// Encodes the text form.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }
}

/// What a ``ResourceName`` names; only its label (for messages) differs.
public protocol ResourceKind: Sendable {
    /// How messages call it: "policy", "group", …
    static var label: String { get }
}

/// An attestation policy's name (its versions share it).
public enum PolicyKind: ResourceKind { public static let label = "policy" }
/// A group of devices (policies are assigned to groups or devices).
public enum GroupKind: ResourceKind { public static let label = "group" }
/// A secret the controller releases to devices that pass.
public enum SecretKind: ResourceKind { public static let label = "secret" }
/// A named bundle of EK CA certificates (`identity.ek_ca` names one at the controller).
public enum EKCABundleKind: ResourceKind { public static let label = "EK CA bundle" }

/// A policy's name.
public typealias PolicyName = ResourceName<PolicyKind>
/// A device group's name.
public typealias GroupName = ResourceName<GroupKind>
/// A secret's name.
public typealias SecretName = ResourceName<SecretKind>
/// An EK CA bundle's name.
public typealias EKCABundleName = ResourceName<EKCABundleKind>

extension GroupName {
    /// The group a device joins when its enrollment names none.
    public static let `default` = GroupName(unchecked: "default")

    init(unchecked: String) { rawValue = unchecked }
}
