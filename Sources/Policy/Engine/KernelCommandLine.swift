/// A Linux kernel command line split the way the kernel reads it (`next_arg()` in lib/cmdline.c and
/// `parameq()` in kernel/params.c): arguments are separated by any whitespace; double quotes group
/// (`"a b"` or `key="a b"`) and are removed; a parameter name compares with `-` and `_` as the same
/// character. GRUB and systemd-boot measure the string the kernel receives, so rules judge what the kernel
/// will act on, not a split on single spaces.
struct KernelCommandLine: Hashable, Sendable {
    struct Argument: Hashable, Sendable {
        /// The parameter name, as written.
        let key: String
        /// The value after the first `=`, quotes removed; nil for a bare flag.
        let value: String?

        /// The name with `-` folded to `_` (kernel `parameq`).
        var normalizedKey: String { Self.normalize(key) }

        static func normalize(_ key: String) -> String { String(key.map { $0 == "-" ? "_" : $0 }) }

        var text: String { value.map { "\(key)=\($0)" } ?? key }
    }

    let arguments: [Argument]

    init(_ line: String) {
        var args: [Argument] = []
        var current: [Character] = []
        var inQuotes = false
        var started = false
        func flush() {
            guard started else { return }
            let text = String(current)
            if let eq = text.firstIndex(of: "=") {
                args.append(Argument(key: String(text[..<eq]), value: String(text[text.index(after: eq)...])))
            } else {
                args.append(Argument(key: text, value: nil))
            }
            current = []
            started = false
        }
        for c in line {
            if c == "\"" { inQuotes.toggle(); started = true; continue }
            if !inQuotes, c.isWhitespace || c == "\0" { flush(); continue }
            current.append(c)
            started = true
        }
        flush()
        arguments = args
    }

    /// Whether an argument matches a policy's entry: "key" matches the flag and any value of it; "key=value"
    /// matches that value exactly. Names compare with `-`/`_` folded.
    func contains(_ entry: String, anyValue: Bool) -> Bool {
        // A policy entry is one argument, even when its value holds spaces (as captured from a quoted value).
        let unquoted = entry.filter { $0 != "\"" }
        let wanted: Argument
        if let eq = unquoted.firstIndex(of: "=") {
            wanted = Argument(key: String(unquoted[..<eq]), value: String(unquoted[unquoted.index(after: eq)...]))
        } else {
            wanted = Argument(key: unquoted, value: nil)
        }
        return arguments.contains { a in
            guard a.normalizedKey == wanted.normalizedKey else { return false }
            if let v = wanted.value { return a.value == v }
            return anyValue || a.value == nil
        }
    }
}
