import Yams

/// A YAML document as a small tree that remembers where every value came from (file:line:column),
/// built from Yams' composer with limits: size, nesting depth, number of nodes (alias bombs), and no
/// duplicate mapping keys.
public indirect enum PolicyNode: Sendable {
    /// A scalar, as text, and where it was written.
    case scalar(String, Location)
    /// A mapping: keys in document order, each with its location, and where the mapping starts.
    case mapping([(key: String, keyLocation: Location, value: PolicyNode)], Location)
    /// A list and where it starts.
    case sequence([PolicyNode], Location)

    /// Where a value was written in the policy file.
    public struct Location: Hashable, Sendable, CustomStringConvertible {
        /// The file name as given to ``parse(_:file:)``.
        public let file: String
        /// The line, from 1.
        public let line: Int
        /// The column, from 1.
        public let column: Int
        /// "file:line:column".
        public var description: String { "\(file):\(line):\(column)" }
    }

    /// Where this node was written.
    public var location: Location {
        switch self {
        case .scalar(_, let l), .mapping(_, let l), .sequence(_, let l): l
        }
    }

    /// Largest policy file accepted.
    public static let maxSize = 1 << 20
    /// Deepest nesting accepted (flow brackets or block indentation levels).
    public static let maxDepth = 32
    /// Most nodes accepted (YAML aliases can multiply a small file).
    public static let maxNodes = 200_000

    /// Parses YAML text. Checks size and nesting before handing the text to the YAML parser.
    public static func parse(_ text: String, file: String) throws(PolicyError) -> PolicyNode {
        let size = text.utf8.count
        guard size <= maxSize else {
            throw PolicyError(.tooLarge, "\(file):1:1", "policy is \(size) bytes; the limit is \(maxSize)")
        }
        try checkNesting(text, file: file)
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let YamlError.duplicatedKeysInMapping(duplicates, context) {
            let key = duplicates.first ?? "?"
            let at =
                Self.secondOccurrence(of: key, in: text, from: context.mark.line)
                ?? "\(context.mark.line):\(context.mark.column)"
            throw PolicyError(.duplicate, "\(file):\(at)", "duplicate key \"\(key)\"")
        } catch let error as YamlError {
            throw PolicyError(
                .syntax, "\(file):\(Self.position(of: error))", "YAML syntax error: \(Self.describe(error))")
        } catch {
            throw PolicyError(.syntax, "\(file):1:1", "YAML syntax error: \(error)")
        }
        guard let root else { throw PolicyError(.missingKey, "\(file):1:1", "the policy is empty") }
        var count = 0
        return try convert(root, file: file, count: &count, depth: 0)
    }

    static func convert(_ node: Node, file: String, count: inout Int, depth: Int) throws(PolicyError) -> PolicyNode {
        count += 1
        let loc = Location(file: file, line: node.mark?.line ?? 1, column: node.mark?.column ?? 1)
        guard count <= maxNodes else {
            throw PolicyError(.tooLarge, "\(loc)", "policy has more than \(maxNodes) values (YAML aliases?)")
        }
        guard depth <= maxDepth else {
            throw PolicyError(.tooLarge, "\(loc)", "policy nests deeper than \(maxDepth) levels")
        }
        switch node {
        case .scalar(let s):
            return .scalar(s.string, loc)
        case .mapping(let m):
            var pairs: [(String, Location, PolicyNode)] = []
            var seen: [String: Location] = [:]
            for (k, v) in m {
                guard case .scalar(let key) = k else {
                    throw PolicyError(.wrongType, "\(loc)", "mapping keys must be plain strings")
                }
                let keyLoc = Location(file: file, line: k.mark?.line ?? loc.line, column: k.mark?.column ?? loc.column)
                if let first = seen[key.string] {
                    throw PolicyError(
                        .duplicate, "\(keyLoc)", "duplicate key \"\(key.string)\" (first at line \(first.line))")
                }
                seen[key.string] = keyLoc
                pairs.append((key.string, keyLoc, try convert(v, file: file, count: &count, depth: depth + 1)))
            }
            return .mapping(pairs, loc)
        case .sequence(let s):
            var items: [PolicyNode] = []
            for item in s { items.append(try convert(item, file: file, count: &count, depth: depth + 1)) }
            return .sequence(items, loc)
        case .alias:
            throw PolicyError(.invalidValue, "\(loc)", "YAML aliases are not allowed in policies; use reference_sets")
        }
    }

    /// Rejects flow-collection nesting and block indentation deeper than ``maxDepth`` before parsing,
    /// so a hostile file cannot exhaust the parser's stack.
    static func checkNesting(_ text: String, file: String) throws(PolicyError) {
        var depth = 0, line = 1, column = 0
        var quote: UInt8? = nil
        var lineStart = true, indent = 0
        for byte in text.utf8 {
            column += 1
            if byte == UInt8(ascii: "\n") {
                line += 1
                column = 0
                lineStart = true
                indent = 0
                if quote == UInt8(ascii: "\n") { quote = nil }
                continue
            }
            if lineStart {
                if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "-") {
                    indent += 1
                    if indent > maxDepth * 8 {
                        throw PolicyError(
                            .tooLarge, "\(file):\(line):\(column)",
                            "policy nests deeper than \(maxDepth) levels (indentation)")
                    }
                    continue
                }
                lineStart = false
            }
            if let q = quote {
                if byte == q { quote = nil }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "'"): quote = byte
            case UInt8(ascii: "#"): quote = UInt8(ascii: "\n")  // comment: skip to end of line
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
                if depth > maxDepth {
                    throw PolicyError(
                        .tooLarge, "\(file):\(line):\(column)", "policy nests deeper than \(maxDepth) levels")
                }
            case UInt8(ascii: "]"), UInt8(ascii: "}"): depth = max(0, depth - 1)
            default: break
            }
        }
    }

    /// "line:column" of the second `key:` at or after `line` (where Yams reports the mapping).
    static func secondOccurrence(of key: String, in text: String, from line: Int) -> String? {
        var seen = 0
        for (i, l) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where i + 1 >= line {
            let trimmed = l.drop { $0 == " " || $0 == "-" }
            guard trimmed.hasPrefix(key + ":") || trimmed.hasPrefix("\"\(key)\":") else { continue }
            seen += 1
            if seen == 2 { return "\(i + 1):\(l.count - trimmed.count + 1)" }
        }
        return nil
    }

    static func position(of error: YamlError) -> String {
        switch error {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _):
            return "\(mark.line):\(mark.column)"
        default:
            return "1:1"
        }
    }

    static func describe(_ error: YamlError) -> String {
        switch error {
        case .scanner(let context, let problem, _, _), .parser(let context, let problem, _, _),
            .composer(let context, let problem, _, _):
            return [context?.text, problem].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: ": ")
        default:
            return "\(error)"
        }
    }
}
