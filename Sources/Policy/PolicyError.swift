/// The one error type of `Policy`: a policy document that is not acceptable, with where.
public struct PolicyError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of problem the policy has; tests compare on this.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Backing: Hashable, Sendable {
            case syntax, unknownKey, wrongType, invalidValue, missingKey, duplicate, cyclicExtends, tooLarge, notFound,
                emptyRules
        }
        fileprivate let backing: Backing
        /// The file is not valid YAML (or not UTF-8 text).
        public static let syntax = Code(backing: .syntax)
        /// A key the schema does not define, or an `enforce:` entry that names no rule of the policy.
        public static let unknownKey = Code(backing: .unknownKey)
        /// A value of the wrong YAML type (a list where a string belongs, …).
        public static let wrongType = Code(backing: .wrongType)
        /// A value the key does not allow (a bad id, a malformed digest, …).
        public static let invalidValue = Code(backing: .invalidValue)
        /// A required key is missing (`id`, `version`, …), or the document is empty.
        public static let missingKey = Code(backing: .missingKey)
        /// A duplicate mapping key or policy id.
        public static let duplicate = Code(backing: .duplicate)
        /// `extends:` chains back to itself.
        public static let cyclicExtends = Code(backing: .cyclicExtends)
        /// The policy exceeds a size, nesting or node limit.
        public static let tooLarge = Code(backing: .tooLarge)
        /// A policy file, or the policy an `extends:` names, cannot be found.
        public static let notFound = Code(backing: .notFound)
        /// A section with no rules, or a policy with no rules that does not say `accept: any`.
        public static let emptyRules = Code(backing: .emptyRules)
        /// The code's name ("unknownKey").
        public var description: String { "\(backing)" }
    }

    /// What kind of problem this is; equality compares only this.
    public let code: Code
    /// "policies/strict.yaml:12:5"
    public let location: String
    /// What is wrong, in words for the policy's author.
    public let message: String

    /// Creates an error at `location` ("file:line:column").
    public init(_ code: Code, _ location: String, _ message: String) {
        self.code = code
        self.location = location
        self.message = message
    }

    /// "file:line:column: message", like a compiler.
    public var description: String { "\(location): \(message)" }
    /// Compares codes only.
    public static func == (a: PolicyError, b: PolicyError) -> Bool { a.code == b.code }
    /// Hashes the code only, consistent with `==`.
    public func hash(into h: inout Hasher) { h.combine(code) }
}
