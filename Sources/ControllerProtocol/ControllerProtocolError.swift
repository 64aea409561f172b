/// The one error type of `ControllerProtocol`: a message between device, controller and security team that is
/// malformed, oversized, unsigned, or signed wrongly. The reason says what and where; it never carries a secret.
public struct ControllerProtocolError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of failure this is.
    public enum Code: String, Hashable, Sendable {
        /// A field is missing, of the wrong type or outside its allowed form.
        case invalid
        /// A size cap was exceeded.
        case tooLarge
        /// A request signature is missing, malformed or does not verify.
        case unauthenticated
        /// An envelope failed its AEAD check or names something other than what was asked for.
        case sealedDataRejected
    }

    /// What kind of failure this is (tests assert on it).
    public let code: Code
    /// What is wrong and where.
    public let reason: String

    /// An error of `code`, explained by `reason`.
    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    /// The reason, prefixed with the code.
    public var description: String { "\(code.rawValue): \(reason)" }

    /// Equal when the codes are equal.
    public static func == (a: Self, b: Self) -> Bool { a.code == b.code }
    /// Hashes the code (consistent with `==`).
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}
