/// The one error type of `Policy`: a policy document that is not acceptable, with where.
public struct PolicyError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        fileprivate enum Backing: Hashable, Sendable {
            case syntax, unknownKey, wrongType, invalidValue, missingKey, duplicate, cyclicExtends, tooLarge, notFound, emptyRules
        }
        fileprivate let backing: Backing
        public static let syntax = Code(backing: .syntax)
        public static let unknownKey = Code(backing: .unknownKey)
        public static let wrongType = Code(backing: .wrongType)
        public static let invalidValue = Code(backing: .invalidValue)
        public static let missingKey = Code(backing: .missingKey)
        public static let duplicate = Code(backing: .duplicate)
        public static let cyclicExtends = Code(backing: .cyclicExtends)
        public static let tooLarge = Code(backing: .tooLarge)
        public static let notFound = Code(backing: .notFound)
        public static let emptyRules = Code(backing: .emptyRules)
        public var description: String { "\(backing)" }
    }

    public let code: Code
    /// "policies/strict.yaml:12:5"
    public let location: String
    public let message: String

    public init(_ code: Code, _ location: String, _ message: String) {
        self.code = code
        self.location = location
        self.message = message
    }

    /// "file:line:column: message", like a compiler.
    public var description: String { "\(location): \(message)" }
    public static func == (a: PolicyError, b: PolicyError) -> Bool { a.code == b.code }
    public func hash(into h: inout Hasher) { h.combine(code) }
}
