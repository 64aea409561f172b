internal import CTSS2

#if canImport(Glibc)
    import Glibc
#endif

/// The TCTI ESAPI talks to: every wait for the TPM has a deadline.
///
/// `Esys_<Command>` waits for the response with `TSS2_TCTI_TIMEOUT_BLOCK`: a TPM (or simulator) that accepts a
/// command and never answers would hang the caller for ever. Two modes:
///
/// - **swtpm** (``init(swtpm:blockingTimeoutMilliseconds:)``): Vigil speaks swtpm's TCP protocol itself, over a
///   socket it owns (close-on-exec, non-blocking): one connection per command, the command written raw, the
///   response read as its 10-byte header and then the rest, locality set on the control channel (CMD_SET_LOCALITY),
///   as libtss2's swtpm TCTI does. Every connect, write and read is bounded by `poll(2)`. No other descriptor of
///   the process is ever looked at.
/// - **forwarding** (``init(wrapping:blockingTimeoutMilliseconds:)``, the device, tabrmd, mssim and cmd TCTIs):
///   calls go to the loader's TCTI, and a blocking receive is made one bounded by `blockingTimeoutMilliseconds`,
///   which the device TCTI honours with `poll(2)`.
///
/// When the deadline passes the TCTI answers `TSS2_TCTI_RC_IO_ERROR` and refuses every later command: the TPM
/// still owes a response, so the connection cannot be trusted to pair the next command with its own answer. An
/// explicit receive timeout (the first-command probe of
/// ``TPM/open(_:timeoutMilliseconds:commandTimeoutMilliseconds:logger:)``, set with `Esys_SetTimeout`) answers
/// `TSS2_TCTI_RC_TRY_AGAIN` when nothing arrives in time, as a polling TCTI does.
///
/// TCG TSS 2.0 TCTI specification §4.3 (the function table every TCTI context starts with).
struct TCTIDeadline: ~Copyable {
    private let pointer: UnsafeMutablePointer<VIGIL_TCTI_DEADLINE>

    /// Wraps `inner` (owned by the caller, which finalizes it after this wrapper is gone).
    init(wrapping inner: OpaquePointer, blockingTimeoutMilliseconds: Int32) {
        pointer = .allocate(capacity: 1)
        let innerCommon = UnsafeMutableRawPointer(inner).assumingMemoryBound(to: TSS2_TCTI_CONTEXT_COMMON_V1.self)
        var common = TSS2_TCTI_CONTEXT_COMMON_V2()
        common.v1.magic = innerCommon.pointee.magic
        common.v1.version = 2
        common.v1.transmit = { context, size, command in
            guard let state = TCTIDeadline.state(context), let inner = state.pointee.inner else {
                return TCTIDeadline.badReference
            }
            guard state.pointee.expired == 0 else { return TCTIDeadline.ioError }
            guard let transmit = TCTIDeadline.innerCommon(state).pointee.transmit else {
                return TCTIDeadline.notImplemented
            }
            state.pointee.commandsSent &+= 1
            return transmit(inner, size, command)
        }
        common.v1.receive = { context, size, response, timeout in
            guard let state = TCTIDeadline.state(context), let inner = state.pointee.inner else {
                return TCTIDeadline.badReference
            }
            guard state.pointee.expired == 0 else { return TCTIDeadline.ioError }
            guard let receive = TCTIDeadline.innerCommon(state).pointee.receive else {
                return TCTIDeadline.notImplemented
            }
            let limit = state.pointee.blockingTimeoutMilliseconds
            guard timeout == -1, limit > 0 else { return receive(inner, size, response, timeout) }
            let start = TCTIDeadline.milliseconds()
            let rc = receive(inner, size, response, limit)
            guard rc != 0 else { return rc }
            // TSS2_BASE_RC_TRY_AGAIN (a TCTI that polled), or a read that failed when its time ran out.
            if rc & 0xFFFF == 9 || TCTIDeadline.milliseconds() - start >= Int(limit) - 50 {
                state.pointee.expired = 1
                return TCTIDeadline.ioError
            }
            return rc
        }
        common.v1.finalize = { _ in }  // the inner TCTI is finalized by its owner
        common.v1.cancel = { context in
            guard let state = TCTIDeadline.state(context), let inner = state.pointee.inner else {
                return TCTIDeadline.badReference
            }
            guard let cancel = TCTIDeadline.innerCommon(state).pointee.cancel else {
                return TCTIDeadline.notImplemented
            }
            return cancel(inner)
        }
        common.v1.getPollHandles = { context, handles, count in
            guard let state = TCTIDeadline.state(context), let inner = state.pointee.inner else {
                return TCTIDeadline.badReference
            }
            guard let get = TCTIDeadline.innerCommon(state).pointee.getPollHandles else {
                return TCTIDeadline.notImplemented
            }
            return get(inner, handles, count)
        }
        common.v1.setLocality = { context, locality in
            guard let state = TCTIDeadline.state(context), let inner = state.pointee.inner else {
                return TCTIDeadline.badReference
            }
            guard let set = TCTIDeadline.innerCommon(state).pointee.setLocality else {
                return TCTIDeadline.notImplemented
            }
            return set(inner, locality)
        }
        common.makeSticky = { context, handle, sticky in
            guard let state = TCTIDeadline.state(context), let inner = state.pointee.inner else {
                return TCTIDeadline.badReference
            }
            let innerCommon = TCTIDeadline.innerCommon(state)
            guard innerCommon.pointee.version >= 2 else { return TCTIDeadline.notImplemented }
            let v2 = UnsafeMutableRawPointer(innerCommon).assumingMemoryBound(to: TSS2_TCTI_CONTEXT_COMMON_V2.self)
            guard let makeSticky = v2.pointee.makeSticky else { return TCTIDeadline.notImplemented }
            return makeSticky(inner, handle, sticky)
        }
        pointer.initialize(
            to: Self.emptyState(common: common, inner: inner, blockingTimeoutMilliseconds: blockingTimeoutMilliseconds))
    }

    /// Vigil's own swtpm transport to `endpoint` (its control channel at port + 1).
    init(swtpm endpoint: (host: String, port: Int), blockingTimeoutMilliseconds: Int32) throws(TPMError) {
        var tpm = sockaddr_storage(), control = sockaddr_storage()
        let tpmLength = try Self.resolve(endpoint.host, endpoint.port, into: &tpm)
        let controlLength = try Self.resolve(endpoint.host, endpoint.port + 1, into: &control)
        pointer = .allocate(capacity: 1)
        var common = TSS2_TCTI_CONTEXT_COMMON_V2()
        common.v1.magic = Self.swtpmMagic
        common.v1.version = 2
        common.v1.transmit = { context, size, command in
            guard let state = TCTIDeadline.state(context), let command else { return TCTIDeadline.badReference }
            state.pointee.commandsSent &+= 1
            return TCTIDeadline.swtpmTransmit(state, UnsafeRawBufferPointer(start: command, count: size))
        }
        common.v1.receive = { context, size, response, timeout in
            guard let state = TCTIDeadline.state(context), let size else { return TCTIDeadline.badReference }
            return TCTIDeadline.swtpmReceive(state, size, response, timeout)
        }
        common.v1.finalize = { context in
            guard let state = TCTIDeadline.state(context) else { return }
            TCTIDeadline.closeConnection(state)
        }
        common.v1.cancel = { _ in TCTIDeadline.notImplemented }  // swtpm implements no cancellation
        common.v1.getPollHandles = { _, _, _ in TCTIDeadline.notImplemented }
        common.v1.setLocality = { context, locality in
            guard let state = TCTIDeadline.state(context) else { return TCTIDeadline.badReference }
            return TCTIDeadline.swtpmSetLocality(state, locality)
        }
        common.makeSticky = { _, _, _ in TCTIDeadline.notImplemented }
        var state = Self.emptyState(
            common: common, inner: nil, blockingTimeoutMilliseconds: blockingTimeoutMilliseconds)
        withUnsafeBytes(of: &tpm) { source in
            withUnsafeMutableBytes(of: &state.tpmAddress) { $0.copyMemory(from: source) }
        }
        withUnsafeBytes(of: &control) { source in
            withUnsafeMutableBytes(of: &state.controlAddress) { $0.copyMemory(from: source) }
        }
        state.tpmAddressLength = UInt32(tpmLength)
        state.controlAddressLength = UInt32(controlLength)
        pointer.initialize(to: state)
    }

    deinit {
        Self.closeConnection(pointer)
        pointer.deallocate()
    }

    /// The context to hand to `Esys_Initialize`.
    var context: OpaquePointer { OpaquePointer(pointer) }

    /// The TPM commands transmitted so far.
    var commandsSent: Int { Int(pointer.pointee.commandsSent) }

    /// Whether a command went unanswered past the deadline (the connection is then unusable).
    var expired: Bool { pointer.pointee.expired != 0 }

    var blockingTimeoutMilliseconds: Int32 { pointer.pointee.blockingTimeoutMilliseconds }

    private static let badReference: TSS2_RC = 0x000A_0005  // TSS2_TCTI_RC_BAD_REFERENCE
    private static let notImplemented: TSS2_RC = 0x000A_0002  // TSS2_TCTI_RC_NOT_IMPLEMENTED
    private static let insufficientBuffer: TSS2_RC = 0x000A_0006  // TSS2_TCTI_RC_INSUFFICIENT_BUFFER
    private static let badSequence: TSS2_RC = 0x000A_0007  // TSS2_TCTI_RC_BAD_SEQUENCE
    private static let noConnection: TSS2_RC = 0x000A_0008  // TSS2_TCTI_RC_NO_CONNECTION
    private static let tryAgain: TSS2_RC = 0x000A_0009  // TSS2_TCTI_RC_TRY_AGAIN
    private static let ioError: TSS2_RC = 0x000A_000A  // TSS2_TCTI_RC_IO_ERROR
    private static let malformedResponse: TSS2_RC = 0x000A_000D  // TSS2_TCTI_RC_MALFORMED_RESPONSE
    /// "VIGLSWTP": the magic of Vigil's swtpm transport.
    private static let swtpmMagic: UInt64 = 0x5649_474C_5357_5450
    /// The largest response accepted (TPM 2.0 responses are at most a few KiB; swtpm's buffer is 4 KiB).
    private static let maxResponseSize: UInt32 = 64 * 1024
    /// How long a connection to the simulator may take when the command deadline is unbounded.
    private static let connectMilliseconds: Int32 = 5000

    private static func emptyState(
        common: TSS2_TCTI_CONTEXT_COMMON_V2, inner: OpaquePointer?, blockingTimeoutMilliseconds: Int32
    )
        -> VIGIL_TCTI_DEADLINE
    {
        VIGIL_TCTI_DEADLINE(
            common: common, inner: inner, blockingTimeoutMilliseconds: blockingTimeoutMilliseconds, expired: 0,
            commandsSent: 0,
            tpmAddress: Self.zeroAddress, tpmAddressLength: 0, controlAddress: Self.zeroAddress,
            controlAddressLength: 0,
            socket: -1, headerRead: 0, responseSize: 0, header: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0), locality: 0)
    }

    private static var zeroAddress: VIGILAddressBytes {
        (
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
        )
    }

    // MARK: swtpm transport

    /// TPM2 command bytes, raw, on a new connection (libtss2 `tcti_swtpm_transmit`).
    private static func swtpmTransmit(
        _ state: UnsafeMutablePointer<VIGIL_TCTI_DEADLINE>, _ command: UnsafeRawBufferPointer
    )
        -> TSS2_RC
    {
        guard state.pointee.expired == 0 else { return ioError }
        closeConnection(state)
        let deadline = deadline(state.pointee.blockingTimeoutMilliseconds)
        guard let fd = connect(state, control: false, deadline: deadline) else { return noConnection }
        state.pointee.socket = fd
        state.pointee.headerRead = 0
        guard writeAll(fd, command, deadline: deadline) else {
            closeConnection(state)
            state.pointee.expired = 1
            return ioError
        }
        return 0
    }

    /// The response: its header (to learn its size), then the rest (libtss2 `tcti_swtpm_receive`, with deadlines).
    private static func swtpmReceive(
        _ state: UnsafeMutablePointer<VIGIL_TCTI_DEADLINE>, _ size: UnsafeMutablePointer<Int>,
        _ response: UnsafeMutablePointer<UInt8>?, _ timeout: Int32
    ) -> TSS2_RC {
        guard state.pointee.expired == 0 else { return ioError }
        let fd = state.pointee.socket
        guard fd >= 0 else { return badSequence }
        let limit = state.pointee.blockingTimeoutMilliseconds
        if state.pointee.headerRead == 0 {
            // An explicit timeout (a probe) waits only that long for the first byte and asks to be called again.
            if timeout >= 0 {
                var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                if poll(&pfd, 1, timeout) == 0 { return tryAgain }
            }
            var header = [UInt8](repeating: 0, count: 10)
            let ok = header.withUnsafeMutableBytes { readAll(fd, $0, deadline: deadline(limit)) }
            guard ok else { return expire(state) }
            let responseSize =
                UInt32(header[2]) << 24 | UInt32(header[3]) << 16 | UInt32(header[4]) << 8 | UInt32(header[5])
            guard responseSize >= 10, responseSize <= maxResponseSize else {
                closeConnection(state)
                return malformedResponse
            }
            withUnsafeMutableBytes(of: &state.pointee.header) { $0.copyBytes(from: header) }
            state.pointee.responseSize = responseSize
            state.pointee.headerRead = 1
        }
        let total = Int(state.pointee.responseSize)
        guard let response else {
            size.pointee = total
            return 0
        }
        guard size.pointee >= total else {
            size.pointee = total
            return insufficientBuffer
        }
        withUnsafeBytes(of: state.pointee.header) { header in
            for i in 0..<10 { response[i] = header[i] }
        }
        if total > 10 {
            let rest = UnsafeMutableRawBufferPointer(start: response + 10, count: total - 10)
            guard readAll(fd, rest, deadline: deadline(limit)) else { return expire(state) }
        }
        size.pointee = total
        closeConnection(state)
        return 0
    }

    /// CMD_SET_LOCALITY on the control channel (swtpm's ptm protocol: UINT32 command, UINT8 locality; UINT32 result).
    private static func swtpmSetLocality(_ state: UnsafeMutablePointer<VIGIL_TCTI_DEADLINE>, _ locality: UInt8)
        -> TSS2_RC
    {
        let deadline = deadline(state.pointee.blockingTimeoutMilliseconds)
        guard let fd = connect(state, control: true, deadline: deadline) else { return noConnection }
        defer { close(fd) }
        let request: [UInt8] = [0, 0, 0, 5, locality]
        var answer = [UInt8](repeating: 0, count: 4)
        guard request.withUnsafeBytes({ writeAll(fd, $0, deadline: deadline) }),
            answer.withUnsafeMutableBytes({ readAll(fd, $0, deadline: deadline) }), answer == [0, 0, 0, 0]
        else { return ioError }
        state.pointee.locality = locality
        return 0
    }

    private static func expire(_ state: UnsafeMutablePointer<VIGIL_TCTI_DEADLINE>) -> TSS2_RC {
        closeConnection(state)
        state.pointee.expired = 1
        return ioError
    }

    private static func closeConnection(_ state: UnsafeMutablePointer<VIGIL_TCTI_DEADLINE>) {
        if state.pointee.socket >= 0 { close(state.pointee.socket) }
        state.pointee.socket = -1
        state.pointee.headerRead = 0
        state.pointee.responseSize = 0
    }

    /// An absolute deadline in milliseconds of the monotonic clock, or nil for none (a 0 limit).
    private static func deadline(_ limit: Int32) -> Int? { limit > 0 ? milliseconds() + Int(limit) : nil }

    private static func remaining(_ deadline: Int?) -> Int32 {
        guard let deadline else { return -1 }
        return Int32(clamping: max(0, deadline - milliseconds()))
    }

    private static func milliseconds() -> Int {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return now.tv_sec * 1000 + now.tv_nsec / 1_000_000
    }

    /// A non-blocking, close-on-exec connection to the TPM (or control) endpoint, within the deadline (or 5 s).
    private static func connect(_ state: UnsafeMutablePointer<VIGIL_TCTI_DEADLINE>, control: Bool, deadline: Int?)
        -> Int32?
    {
        let length = socklen_t(control ? state.pointee.controlAddressLength : state.pointee.tpmAddressLength)
        var address = sockaddr_storage()
        let bytes = control ? state.pointee.controlAddress : state.pointee.tpmAddress
        withUnsafeBytes(of: bytes) { source in withUnsafeMutableBytes(of: &address) { $0.copyMemory(from: source) } }
        let fd = socket(
            Int32(address.ss_family),
            Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { return nil }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, length) }
        }
        if rc != 0 {
            guard errno == EINPROGRESS else {
                close(fd)
                return nil
            }
            var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            let wait = deadline == nil ? connectMilliseconds : min(remaining(deadline), connectMilliseconds)
            var error: Int32 = 0
            var errorLength = socklen_t(MemoryLayout<Int32>.size)
            guard poll(&pfd, 1, wait) == 1, getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &errorLength) == 0, error == 0
            else {
                close(fd)
                return nil
            }
        }
        return fd
    }

    private static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, deadline: Int?) -> Bool {
        var done = 0
        while done < bytes.count {
            let n = send(fd, bytes.baseAddress.map { $0 + done }, bytes.count - done, Int32(MSG_NOSIGNAL))
            if n > 0 {
                done += n
                continue
            }
            guard n < 0, errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR else { return false }
            var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            guard poll(&pfd, 1, remaining(deadline)) == 1 else { return false }
        }
        return true
    }

    private static func readAll(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer, deadline: Int?) -> Bool {
        var done = 0
        while done < buffer.count {
            let n = recv(fd, buffer.baseAddress.map { $0 + done }, buffer.count - done, 0)
            if n > 0 {
                done += n
                continue
            }
            guard n < 0, errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR else { return false }  // 0: closed
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, remaining(deadline)) == 1 else { return false }
        }
        return true
    }

    /// Resolves `host`:`port` (numeric or by name, IPv4 or IPv6) into `storage`; its length.
    private static func resolve(_ host: String, _ port: Int, into storage: inout sockaddr_storage) throws(TPMError)
        -> socklen_t
    {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &result)
        defer { if let result { freeaddrinfo(result) } }
        guard rc == 0, let first = result, let address = first.pointee.ai_addr,
            Int(first.pointee.ai_addrlen) <= MemoryLayout<sockaddr_storage>.size
        else {
            throw TPMError(code: .unavailable, reason: "TCTI swtpm: cannot resolve \(host):\(port)")
        }
        withUnsafeMutableBytes(of: &storage) {
            $0.copyMemory(from: UnsafeRawBufferPointer(start: address, count: Int(first.pointee.ai_addrlen)))
        }
        return first.pointee.ai_addrlen
    }

    private static func state(_ context: OpaquePointer?) -> UnsafeMutablePointer<VIGIL_TCTI_DEADLINE>? {
        context.map { UnsafeMutableRawPointer($0).assumingMemoryBound(to: VIGIL_TCTI_DEADLINE.self) }
    }

    /// The forwarded-to TCTI's function table (forwarding mode only: callers check `inner` first).
    private static func innerCommon(_ state: UnsafeMutablePointer<VIGIL_TCTI_DEADLINE>) -> UnsafeMutablePointer<
        TSS2_TCTI_CONTEXT_COMMON_V1
    > {
        UnsafeMutableRawPointer(state.pointee.inner.unsafelyUnwrapped).assumingMemoryBound(
            to: TSS2_TCTI_CONTEXT_COMMON_V1.self)
    }
}

/// The 128 bytes of a `struct sockaddr_storage`, as the C context stores an address.
typealias VIGILAddressBytes = (
    UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
    UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
    UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
    UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
    UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
    UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
    UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
    UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8
)
