/// A Linux kernel command line split the way the kernel reads it (`next_arg()` in lib/cmdline.c and
/// `parameq()` in kernel/params.c): arguments are separated by any whitespace; double quotes group
/// (`"a b"` or `key="a b"`) and are removed; a parameter name compares with `-` and `_` as the same
/// character. GRUB and systemd-boot measure the string the kernel receives, so rules judge what the kernel
/// will act on, not a split on single spaces. Tokenized once, when boot facts are decoded.
public struct KernelCommandLine: Hashable, Sendable {
    /// One argument: a bare flag or `key=value`.
    public struct Argument: Hashable, Sendable {
        /// The parameter name, as written.
        public let key: String
        /// The value after the first `=`, quotes removed; nil for a bare flag.
        public let value: String?
        /// The name with `-` folded to `_` (kernel `parameq`).
        public let normalizedKey: String

        /// Builds an argument from a name and optional value (quotes already removed).
        public init(key: String, value: String?) {
            self.key = key
            self.value = value
            normalizedKey = Self.normalize(key)
        }

        static func normalize(_ key: String) -> String {
            key.utf8.contains(UInt8(ascii: "-"))
                ? String(decoding: key.utf8.map { $0 == UInt8(ascii: "-") ? UInt8(ascii: "_") : $0 }, as: UTF8.self)
                : key
        }

        /// "key=value" or "key", as the kernel sees it (quotes removed).
        public var text: String { value.map { "\(key)=\($0)" } ?? key }

        /// A policy entry as one argument, even when its value holds spaces (as captured from a quoted value).
        public init(entry: String) {
            let unquoted = Array(entry.utf8.filter { $0 != UInt8(ascii: "\"") })
            if let eq = unquoted.firstIndex(of: UInt8(ascii: "=")) {
                self.init(
                    key: String(decoding: unquoted[..<eq], as: UTF8.self),
                    value: String(decoding: unquoted[(eq + 1)...], as: UTF8.self))
            } else {
                self.init(key: String(decoding: unquoted, as: UTF8.self), value: nil)
            }
        }
    }

    /// The line as measured.
    public let text: String
    /// The arguments in order, as the kernel splits them.
    public let arguments: [Argument]

    /// Tokenizes `line` as the kernel does: whitespace and NUL separate, double quotes group and are removed.
    public init(_ line: String) {
        text = line
        var args: [Argument] = []
        var current: [UInt8] = []
        var inQuotes = false, started = false
        func flush() {
            guard started else { return }
            if let eq = current.firstIndex(of: UInt8(ascii: "=")) {
                args.append(
                    Argument(
                        key: String(decoding: current[..<eq], as: UTF8.self),
                        value: String(decoding: current[(eq + 1)...], as: UTF8.self)))
            } else {
                args.append(Argument(key: String(decoding: current, as: UTF8.self), value: nil))
            }
            current.removeAll(keepingCapacity: true)
            started = false
        }
        for byte in line.utf8 {
            if byte == UInt8(ascii: "\"") {
                inQuotes.toggle()
                started = true
            } else if !inQuotes, byte == 0x20 || (0x09...0x0D).contains(byte) || byte == 0 {
                flush()
            } else {
                current.append(byte)
                started = true
            }
        }
        flush()
        arguments = args
    }

    /// Whether an argument matches `wanted`: a bare name matches the flag and, with `anyValue`, any value of it;
    /// "key=value" matches that value exactly. Names compare with `-`/`_` folded.
    public func contains(_ wanted: Argument, anyValue: Bool) -> Bool {
        arguments.contains { a in
            guard a.normalizedKey == wanted.normalizedKey else { return false }
            if let v = wanted.value { return a.value == v }
            return anyValue || a.value == nil
        }
    }

    /// ``contains(_:anyValue:)`` for a policy entry written as text.
    public func contains(_ entry: String, anyValue: Bool) -> Bool {
        contains(Argument(entry: entry), anyValue: anyValue)
    }
}
