internal import CTSS2

#if canImport(Glibc)
    import Glibc
#endif

/// A TCTI that forwards every call to another TCTI and gives ESAPI's synchronous calls a deadline.
///
/// `Esys_<Command>` waits for the response with `TSS2_TCTI_TIMEOUT_BLOCK`: a TPM (or simulator) that accepts a
/// command and never answers hangs the caller for ever. This wrapper, placed between ESAPI and the real TCTI,
/// turns such a receive into one bounded by `blockingTimeoutMilliseconds`: the device TCTI honours a receive
/// timeout with `poll(2)`; the swtpm and mssim TCTIs of tpm2-tss 3.x ignore it and `read(2)` the socket they open
/// without a limit, so after each `transmit` the sockets connected to the TPM's port get
/// `SO_RCVTIMEO`/`SO_SNDTIMEO` and close-on-exec (a child process must never hold a TPM connection). When the
/// deadline passes the wrapper answers `TSS2_TCTI_RC_IO_ERROR` and refuses every later command: the TPM still
/// owes a response, so the connection cannot be trusted to pair the next command with its own answer.
/// An explicit receive timeout (the first-command probe of
/// ``TPM/open(_:timeoutMilliseconds:commandTimeoutMilliseconds:logger:)``, set with `Esys_SetTimeout`) is
/// honoured here for the socket TCTIs that ignore it: the wrapper polls the socket it found and answers
/// `TSS2_TCTI_RC_TRY_AGAIN` when nothing arrives in time, as a polling TCTI would.
///
/// TCG TSS 2.0 TCTI specification §4.3 (the function table every TCTI context starts with).
struct TCTIDeadline: ~Copyable {
    private let pointer: UnsafeMutablePointer<VIGIL_TCTI_DEADLINE>

    /// Wraps `inner` (owned by the caller, which finalizes it after this wrapper is gone).
    /// `socketPort`: the TPM's TCP port for the swtpm and mssim TCTIs, nil otherwise.
    init(wrapping inner: OpaquePointer, blockingTimeoutMilliseconds: Int32, socketPort: Int?) {
        pointer = .allocate(capacity: 1)
        let innerCommon = UnsafeMutableRawPointer(inner).assumingMemoryBound(to: TSS2_TCTI_CONTEXT_COMMON_V1.self)
        var common = TSS2_TCTI_CONTEXT_COMMON_V2()
        common.v1.magic = innerCommon.pointee.magic
        common.v1.version = 2
        common.v1.transmit = { context, size, command in
            guard let state = TCTIDeadline.state(context) else { return TCTIDeadline.badReference }
            guard state.pointee.expired == 0 else { return TCTIDeadline.ioError }
            guard let transmit = TCTIDeadline.innerCommon(state).pointee.transmit else {
                return TCTIDeadline.notImplemented
            }
            let port = state.pointee.socketPort
            guard port > 0 else { return transmit(state.pointee.inner, size, command) }
            let rc = transmit(state.pointee.inner, size, command)
            state.pointee.lastSocket =
                TCTIDeadline.bound(port: port, milliseconds: state.pointee.blockingTimeoutMilliseconds) ?? -1
            state.pointee.awaitingFirstByte = 1
            return rc
        }
        common.v1.receive = { context, size, response, timeout in
            guard let state = TCTIDeadline.state(context) else { return TCTIDeadline.badReference }
            guard state.pointee.expired == 0 else { return TCTIDeadline.ioError }
            guard let receive = TCTIDeadline.innerCommon(state).pointee.receive else {
                return TCTIDeadline.notImplemented
            }
            let limit = state.pointee.blockingTimeoutMilliseconds
            if timeout >= 0, state.pointee.lastSocket >= 0, state.pointee.awaitingFirstByte != 0 {
                // An explicit timeout, which the swtpm/mssim TCTIs would ignore: wait for the response's first
                // byte here. Only before the first receive of a response: ESAPI receives in two calls (the size,
                // then the rest), and the TCTI may already hold all of a short response.
                var pfd = pollfd(fd: state.pointee.lastSocket, events: Int16(POLLIN), revents: 0)
                if poll(&pfd, 1, timeout) == 0 { return TCTIDeadline.tryAgain }
            }
            state.pointee.awaitingFirstByte = 0
            guard timeout == -1, limit > 0 else { return receive(state.pointee.inner, size, response, timeout) }
            var start = timespec()
            clock_gettime(CLOCK_MONOTONIC, &start)
            let rc = receive(state.pointee.inner, size, response, limit)
            guard rc != 0 else { return rc }
            var now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &now)
            let elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1_000_000
            // TSS2_BASE_RC_TRY_AGAIN (a TCTI that polled), or a read that failed when SO_RCVTIMEO ran out.
            if rc & 0xFFFF == 9 || elapsed >= Int(limit) - 50 {
                state.pointee.expired = 1
                return TCTIDeadline.ioError
            }
            return rc
        }
        common.v1.finalize = { _ in }  // the inner TCTI is finalized by its owner
        common.v1.cancel = { context in
            guard let state = TCTIDeadline.state(context) else { return TCTIDeadline.badReference }
            guard let cancel = TCTIDeadline.innerCommon(state).pointee.cancel else {
                return TCTIDeadline.notImplemented
            }
            return cancel(state.pointee.inner)
        }
        common.v1.getPollHandles = { context, handles, count in
            guard let state = TCTIDeadline.state(context) else { return TCTIDeadline.badReference }
            guard let get = TCTIDeadline.innerCommon(state).pointee.getPollHandles else {
                return TCTIDeadline.notImplemented
            }
            return get(state.pointee.inner, handles, count)
        }
        common.v1.setLocality = { context, locality in
            guard let state = TCTIDeadline.state(context) else { return TCTIDeadline.badReference }
            guard let set = TCTIDeadline.innerCommon(state).pointee.setLocality else {
                return TCTIDeadline.notImplemented
            }
            return set(state.pointee.inner, locality)
        }
        common.makeSticky = { context, handle, sticky in
            guard let state = TCTIDeadline.state(context) else { return TCTIDeadline.badReference }
            let inner = TCTIDeadline.innerCommon(state)
            guard inner.pointee.version >= 2 else { return TCTIDeadline.notImplemented }
            let v2 = UnsafeMutableRawPointer(inner).assumingMemoryBound(to: TSS2_TCTI_CONTEXT_COMMON_V2.self)
            guard let makeSticky = v2.pointee.makeSticky else { return TCTIDeadline.notImplemented }
            return makeSticky(state.pointee.inner, handle, sticky)
        }
        pointer.initialize(
            to: VIGIL_TCTI_DEADLINE(
                common: common, inner: inner,
                blockingTimeoutMilliseconds: blockingTimeoutMilliseconds, expired: 0,
                socketPort: Int32(clamping: socketPort ?? 0), lastSocket: -1,
                awaitingFirstByte: 0))
    }

    deinit { pointer.deallocate() }

    /// The context to hand to `Esys_Initialize`.
    var context: OpaquePointer { OpaquePointer(pointer) }

    /// Whether a command went unanswered past the deadline (the connection is then unusable).
    var expired: Bool { pointer.pointee.expired != 0 }

    var blockingTimeoutMilliseconds: Int32 { pointer.pointee.blockingTimeoutMilliseconds }

    private static let badReference: TSS2_RC = 0x000A_0005  // TSS2_TCTI_RC_BAD_REFERENCE
    private static let notImplemented: TSS2_RC = 0x000A_0002  // TSS2_TCTI_RC_NOT_IMPLEMENTED
    private static let ioError: TSS2_RC = 0x000A_000A  // TSS2_TCTI_RC_IO_ERROR
    private static let tryAgain: TSS2_RC = 0x000A_0009  // TSS2_TCTI_RC_TRY_AGAIN

    /// Close-on-exec and send/receive timeouts for this process's sockets connected to `port`: each open
    /// descriptor (`/proc/self/fd`, names parsed in place) that `getpeername` accepts with that port.
    /// Returns the first such socket (the TCTI's, as a rule).
    @discardableResult
    private static func bound(port: Int32, milliseconds: Int32) -> Int32? {
        guard let dir = opendir("/proc/self/fd") else { return nil }
        defer { closedir(dir) }
        let own = dirfd(dir)
        var first: Int32?
        var timeout = timeval(tv_sec: Int(milliseconds / 1000), tv_usec: Int(milliseconds % 1000) * 1000)
        while let entry = readdir(dir) {
            let fd: Int32? = withUnsafeBytes(of: entry.pointee.d_name) { name in
                var value: Int32 = 0
                for byte in name {
                    if byte == 0 { break }
                    guard byte >= 0x30, byte <= 0x39, value < 100_000_000 else { return nil }
                    value = value * 10 + Int32(byte - 0x30)
                }
                return name.first == 0 ? nil : value
            }
            // getpeername fails (ENOTSOCK) on anything but a connected socket.
            guard let fd, fd > 2, fd != own, peerPort(fd) == port else { continue }
            first = first ?? fd
            _ = fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC)
            guard milliseconds > 0 else { continue }
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        }
        return first
    }

    private static func peerPort(_ fd: Int32) -> Int32? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        return withUnsafeMutablePointer(to: &storage) { pointer -> Int32? in
            guard pointer.withMemoryRebound(to: sockaddr.self, capacity: 1, { getpeername(fd, $0, &length) }) == 0
            else { return nil }
            switch Int32(pointer.pointee.ss_family) {
            case AF_INET:
                return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                    Int32(UInt16(bigEndian: $0.pointee.sin_port))
                }
            case AF_INET6:
                return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                    Int32(UInt16(bigEndian: $0.pointee.sin6_port))
                }
            default:
                return nil
            }
        }
    }

    private static func state(_ context: OpaquePointer?) -> UnsafeMutablePointer<VIGIL_TCTI_DEADLINE>? {
        context.map { UnsafeMutableRawPointer($0).assumingMemoryBound(to: VIGIL_TCTI_DEADLINE.self) }
    }

    private static func innerCommon(_ state: UnsafeMutablePointer<VIGIL_TCTI_DEADLINE>) -> UnsafeMutablePointer<
        TSS2_TCTI_CONTEXT_COMMON_V1
    > {
        UnsafeMutableRawPointer(state.pointee.inner).assumingMemoryBound(to: TSS2_TCTI_CONTEXT_COMMON_V1.self)
    }
}
