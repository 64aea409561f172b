public import ControllerProtocol

/// The one error type of the `Controller` module: a refusal the controller explains to whoever asked.
///
/// ``status`` is the HTTP status the API answers with, ``code`` a stable machine-readable name
/// (`nonce_used`, `device_revoked`, …) and ``reason`` what was refused and why, naming the field, the rule or
/// the forgery. Reasons never carry secrets, tokens or nonces' secret material.
public struct ControllerError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The HTTP status.
    public let status: Int
    /// A stable name for the refusal.
    public let code: String
    /// What was refused and why.
    public let reason: String
    /// For a 429 or 503: after how many seconds the caller may try again (the `Retry-After` header).
    public let retryAfter: Int?

    /// A refusal.
    public init(status: Int, code: String, reason: String, retryAfter: Int? = nil) {
        self.status = status
        self.code = code
        self.reason = reason
        self.retryAfter = retryAfter
    }

    /// `code: reason`.
    public var description: String { "\(code): \(reason)" }

    /// What the caller is told: the reason, except for the controller's own failures (database, keys: 5xx other
    /// than 503), which are for its log.
    public var callerReason: String {
        status >= 500 && status != 503 ? "internal error: see the controller's log" : reason
    }

    /// 400: the request is malformed.
    public static func invalid(_ reason: String) -> Self { Self(status: 400, code: "invalid_request", reason: reason) }
    /// 401: the caller did not prove who it is.
    public static func unauthenticated(_ reason: String) -> Self {
        Self(status: 401, code: "unauthenticated", reason: reason)
    }
    /// 403: the caller may not do this.
    public static func forbidden(_ code: String, _ reason: String) -> Self {
        Self(status: 403, code: code, reason: reason)
    }
    /// 404: no such thing.
    public static func notFound(_ reason: String) -> Self { Self(status: 404, code: "not_found", reason: reason) }
    /// 409: refused because of the state it is in (a used nonce, an expired challenge, …).
    public static func conflict(_ code: String, _ reason: String) -> Self {
        Self(status: 409, code: code, reason: reason)
    }
    /// 413: the body is larger than the route allows.
    public static func tooLarge(_ reason: String) -> Self { Self(status: 413, code: "body_too_large", reason: reason) }
    /// 422: evidence that was read but does not verify (signature, nonce, PCRs, event log, clock).
    public static func evidence(_ code: String, _ reason: String) -> Self {
        Self(status: 422, code: code, reason: reason)
    }
    /// 422: a body that was read but cannot be processed (a truncated or malformed protobuf message, a field out of
    /// range): EVE's API answers "missing or unprocessable body" with 422.
    public static func unprocessable(_ reason: String) -> Self {
        Self(status: 422, code: "unprocessable", reason: reason)
    }
    /// 429: this device asked too often; `retryAfter` seconds from now it may ask again.
    public static func rateLimited(_ code: String, _ reason: String, retryAfter: Int) -> Self {
        Self(status: 429, code: code, reason: reason, retryAfter: max(1, retryAfter))
    }
    /// 503: the controller is at its limit of requests in flight (or its database is unreachable); try again after
    /// `retryAfter` seconds.
    public static func unavailable(_ code: String, _ reason: String, retryAfter: Int) -> Self {
        Self(status: 503, code: code, reason: reason, retryAfter: max(1, retryAfter))
    }
    /// 500: the controller failed (its database, its keys); the reason is for the log.
    public static func internalFailure(_ reason: String) -> Self {
        Self(status: 500, code: "internal_error", reason: reason)
    }

    /// Maps a protocol error (a malformed or unauthenticated message).
    public init(_ error: ControllerProtocolError) {
        switch error.code {
        case .tooLarge: self = .tooLarge(error.reason)
        case .unauthenticated: self = .unauthenticated(error.reason)
        case .invalid, .sealedDataRejected: self = .invalid(error.reason)
        }
    }
}
