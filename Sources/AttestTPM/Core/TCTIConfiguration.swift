#if canImport(Glibc)
    import Glibc
#endif

/// Where the TPM is: a TCTI (TPM Command Transmission Interface) name and its configuration, in the
/// syntax of libtss2's TCTI loader (`Tss2_TctiLdr_Initialize`):
/// `swtpm:host=127.0.0.1,port=2321`, `device:/dev/tpmrm0`, `mssim:host=localhost,port=2321`.
public struct TCTIConfiguration: Hashable, Sendable, CustomStringConvertible {
    /// The environment variable read when no `--tcti` is given.
    public static let environmentVariable = "VIGIL_TCTI"
    /// The kernel resource manager, used when nothing else is configured.
    public static let defaultDevice = TCTIConfiguration(name: "device", configuration: "/dev/tpmrm0")

    public static let supportedNames: Set<String> = ["device", "swtpm", "mssim", "tabrmd", "cmd"]

    public let name: String
    public let configuration: String

    public init(name: String, configuration: String) {
        self.name = name
        self.configuration = configuration
    }

    /// Parses `name[:configuration]`. Unknown TCTI names are rejected here rather than by the loader,
    /// so the error says which are supported.
    public init(parsing text: String) throws(TPMError) {
        let trimmed = text.trimmingWhitespace()
        guard !trimmed.isEmpty else { throw TPMError.invalidArgument("TCTI: empty configuration string") }
        let parts = trimmed.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        let name = String(parts[0])
        guard Self.supportedNames.contains(name) else {
            throw TPMError.invalidArgument(
                "TCTI: unknown TCTI \"\(name)\" (supported: \(Self.supportedNames.sorted().joined(separator: ", ")))")
        }
        self.name = name
        self.configuration = parts.count > 1 ? String(parts[1]) : ""
        if name == "swtpm" || name == "mssim" {
            for item in configuration.split(separator: ",") where item.hasPrefix("port=") {
                guard let port = Int(item.dropFirst(5)), (1...65535).contains(port) else {
                    throw TPMError.invalidArgument("TCTI: \"\(item)\" is not a valid port")
                }
            }
        }
    }

    /// `--tcti` if given, else `$VIGIL_TCTI`, else `device:/dev/tpmrm0`.
    public static func resolve(_ option: String?) throws(TPMError) -> TCTIConfiguration {
        if let option, !option.isEmpty { return try TCTIConfiguration(parsing: option) }
        if let env = getenv(environmentVariable), let value = String(validatingCString: env), !value.isEmpty {
            return try TCTIConfiguration(parsing: value)
        }
        return defaultDevice
    }

    /// The string handed to `Tss2_TctiLdr_Initialize`.
    public var loaderString: String { configuration.isEmpty ? name : "\(name):\(configuration)" }
    public var description: String { loaderString }

    /// For socket TCTIs: the host and port the loader will connect to.
    var socketEndpoint: (host: String, port: Int)? {
        guard name == "swtpm" || name == "mssim" else { return nil }
        var host = "localhost"
        var port = 2321
        for item in configuration.split(separator: ",") {
            if item.hasPrefix("host=") { host = String(item.dropFirst(5)) }
            if item.hasPrefix("port="), let p = Int(item.dropFirst(5)) { port = p }
        }
        return (host, port)
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s = s.dropFirst() }
        while let l = s.last, l.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}
