internal import CTSS2

#if canImport(Glibc)
    import Glibc
#endif

/// An owned ESAPI context and the TCTI under it (`Esys_Initialize` / `Tss2_TctiLdr_Initialize`),
/// freed exactly once in `deinit` (`Esys_Finalize`, then `Tss2_TctiLdr_Finalize`).
///
/// Not thread-safe: only the ``TPM`` actor holds one.
struct ESYSContext: ~Copyable {
    let raw: OpaquePointer
    private var tcti: OpaquePointer?
    /// Sits between ESAPI and `tcti`; see ``TCTIDeadline``.
    private let deadline: TCTIDeadline

    /// Connects to the TPM. For socket TCTIs the endpoint is probed first with a bounded
    /// non-blocking connect, so an address that points nowhere fails within `connectTimeout`.
    ///
    /// ESAPI's synchronous calls wait for a response without a limit; through ``TCTIDeadline`` every one of
    /// them is bounded by `commandTimeoutMilliseconds` (0: no bound).
    init(tcti config: TCTIConfiguration, connectTimeoutMilliseconds: Int32, commandTimeoutMilliseconds: Int32)
        throws(TPMError)
    {
        if let endpoint = config.socketEndpoint {
            // The TCTI's own initialization blocks without a timeout on both sockets (it talks to the
            // control/platform port at init), so probe both first with a bounded exchange.
            let fd = try Self.probe(
                host: endpoint.host, port: endpoint.port, timeoutMilliseconds: connectTimeoutMilliseconds, tcti: config)
            close(fd)
            let control = try Self.probe(
                host: endpoint.host, port: endpoint.port + 1, timeoutMilliseconds: connectTimeoutMilliseconds,
                tcti: config)
            defer { close(control) }
            // swtpm CMD_GET_CAPABILITY / mssim TPM_SIGNAL_POWER_ON: both are command 1 and answer 4+ bytes.
            try Self.exchange(
                control, request: [0, 0, 0, 1], timeoutMilliseconds: connectTimeoutMilliseconds,
                what: "control channel \(endpoint.host):\(endpoint.port + 1)", tcti: config)
        }
        if config.name == "device" {
            let path = config.configuration.isEmpty ? "/dev/tpmrm0" : config.configuration
            guard access(path, F_OK) == 0 else {
                throw TPMError(
                    code: .unavailable,
                    reason: "TCTI \(config): \(path) does not exist (no TPM device on this machine?)")
            }
        }
        var tcti: OpaquePointer? = nil
        let deadline: TCTIDeadline
        if config.name == "swtpm", let endpoint = config.socketEndpoint {
            // Vigil's own swtpm transport: its socket, its deadlines (no loader TCTI underneath).
            deadline = try TCTIDeadline(swtpm: endpoint, blockingTimeoutMilliseconds: commandTimeoutMilliseconds)
        } else {
            let rc = config.loaderString.withCString { Tss2_TctiLdr_Initialize($0, &tcti) }
            guard rc == 0, let loaded = tcti else {
                throw TPMError(
                    code: .unavailable, reason: "TCTI \(config): cannot connect: \(TSS2Error(rawValue: rc))",
                    tss2: TSS2Error(rawValue: rc))
            }
            deadline = TCTIDeadline(wrapping: loaded, blockingTimeoutMilliseconds: commandTimeoutMilliseconds)
        }
        var ctx: OpaquePointer? = nil
        var abi = TSS2_ABI_VERSION(tssCreator: 1, tssFamily: 2, tssLevel: 1, tssVersion: 108)
        let erc = Esys_Initialize(&ctx, deadline.context, &abi)
        guard erc == 0, let ctx else {
            var t: OpaquePointer? = tcti
            if t != nil { Tss2_TctiLdr_Finalize(&t) }
            throw TPMError(
                code: .unavailable, reason: "Esys_Initialize: \(TSS2Error(rawValue: erc))",
                tss2: TSS2Error(rawValue: erc))
        }
        self.raw = ctx
        self.tcti = tcti
        self.deadline = deadline
    }

    /// Whether a command went unanswered past the command timeout; the context is then unusable.
    var deadlineExpired: Bool { deadline.expired }
    var commandsSent: Int { deadline.commandsSent }
    var commandTimeoutMilliseconds: Int32 { deadline.blockingTimeoutMilliseconds }

    deinit {
        var ctx: OpaquePointer? = raw
        Esys_Finalize(&ctx)
        var t = tcti
        if t != nil { Tss2_TctiLdr_Finalize(&t) }
    }

    /// Sends `request` and waits (bounded) for at least 4 bytes of answer.
    private static func exchange(
        _ fd: Int32, request: [UInt8], timeoutMilliseconds: Int32, what: String, tcti: TCTIConfiguration
    ) throws(TPMError) {
        let sent = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard sent == request.count else {
            throw TPMError(
                code: .unavailable,
                reason: "TCTI \(tcti): cannot write to the \(what): \(String(cString: strerror(errno)))")
        }
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = poll(&pfd, 1, timeoutMilliseconds)
        guard ready > 0 else {
            throw TPMError(
                code: .timeout, reason: "TCTI \(tcti): the \(what) did not answer within \(timeoutMilliseconds) ms")
        }
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard n >= 4 else {
            throw TPMError(
                code: .unavailable, reason: "TCTI \(tcti): the \(what) closed the connection without an answer")
        }
    }

    /// A bounded TCP connect to see that something listens at the endpoint. Returns the connected socket.
    private static func probe(host: String, port: Int, timeoutMilliseconds: Int32, tcti: TCTIConfiguration)
        throws(TPMError) -> Int32
    {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>? = nil
        let gai = getaddrinfo(host, String(port), &hints, &result)
        guard gai == 0, let first = result else {
            throw TPMError(code: .unavailable, reason: "TCTI \(tcti): cannot resolve host \"\(host)\"")
        }
        defer { freeaddrinfo(result) }
        var lastError = "no address"
        var node: UnsafeMutablePointer<addrinfo>? = first
        while let ai = node {
            node = ai.pointee.ai_next
            let fd = socket(
                ai.pointee.ai_family,
                ai.pointee.ai_socktype | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue),
                ai.pointee.ai_protocol)
            guard fd >= 0 else { continue }
            if connect(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen) == 0 { return fd }
            guard errno == EINPROGRESS else {
                lastError = String(cString: strerror(errno))
                close(fd)
                continue
            }
            var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            let ready = poll(&pfd, 1, timeoutMilliseconds)
            if ready == 0 {
                lastError = "no answer within \(timeoutMilliseconds) ms"
                close(fd)
                continue
            }
            var soError: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &len)
            if ready > 0 && soError == 0 { return fd }
            lastError = String(cString: strerror(soError != 0 ? soError : errno))
            close(fd)
        }
        throw TPMError(code: .unavailable, reason: "TCTI \(tcti): nothing answers at \(host):\(port): \(lastError)")
    }
}
