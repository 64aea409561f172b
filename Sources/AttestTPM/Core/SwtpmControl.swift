#if canImport(Glibc)
    import Glibc
#endif

/// swtpm's control channel (the "ptm" protocol of swtpm_ioctl), for simulator-only operations a real TPM
/// gets from the platform: TPM_Init (a reboot) and the locality of subsequent commands.
/// Requests and responses are big-endian: UINT32 command, payload; UINT32 result (0 = success).
public struct SwtpmControl: Sendable {
    public let host: String
    public let port: Int

    /// The control channel of a `swtpm:` TCTI (its port + 1), or nil for other TCTIs.
    public init?(_ tcti: TCTIConfiguration) {
        guard tcti.name == "swtpm", let endpoint = tcti.socketEndpoint else { return nil }
        host = endpoint.host == "localhost" ? "127.0.0.1" : endpoint.host
        port = endpoint.port + 1
    }

    static let cmdInit: UInt32 = 2
    static let cmdSetLocality: UInt32 = 5

    /// CMD_INIT: TPM_Init, as at power-on; the TPM then needs TPM2_Startup.
    public func initialize() throws(TPMError) {
        try send(Self.cmdInit, payload: [0, 0, 0, 0])
    }

    /// CMD_SET_LOCALITY: the locality of subsequent TPM commands (0–4).
    public func setLocality(_ locality: UInt8) throws(TPMError) {
        guard locality <= 4 else { throw TPMError.invalidArgument("locality \(locality) is not 0–4") }
        try send(Self.cmdSetLocality, payload: [locality])
    }

    func send(_ command: UInt32, payload: [UInt8]) throws(TPMError) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TPMError(code: .unavailable, reason: "swtpm control: socket failed") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(truncatingIfNeeded: port).bigEndian)
        addr.sin_addr.s_addr = inet_addr(host)
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            throw TPMError(code: .unavailable, reason: "swtpm control: nothing answers at \(host):\(port)")
        }
        let request =
            [UInt8(command >> 24), UInt8((command >> 16) & 0xFF), UInt8((command >> 8) & 0xFF), UInt8(command & 0xFF)]
            + payload
        guard
            request.withUnsafeBytes({ Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count
        else {
            throw TPMError(code: .unavailable, reason: "swtpm control: cannot send command \(command)")
        }
        var response = [UInt8](repeating: 0, count: 64)
        let n = response.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard n >= 4 else { throw TPMError(code: .timeout, reason: "swtpm control: no answer to command \(command)") }
        let result =
            UInt32(response[0]) << 24 | UInt32(response[1]) << 16 | UInt32(response[2]) << 8 | UInt32(response[3])
        guard result == 0 else {
            throw TPMError(
                code: .tss2, reason: "swtpm control: command \(command) failed with 0x\(String(result, radix: 16))")
        }
    }
}
