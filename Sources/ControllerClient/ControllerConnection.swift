import AsyncHTTPClient
import ControllerProtocol
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOSSL

/// An HTTPS connection to a Vigil controller that trusts exactly one CA: the controller's (`--ca FILE`, its
/// `ca.pem`), never the system's roots. Used by the device (`vigil device …`) and the security team
/// (`vigil admin …`).
public final class ControllerConnection: Sendable {
    /// The controller's base URL (`https://host:port`).
    public let baseURL: String
    private let client: HTTPClient
    private let requestTimeout: TimeAmount
    /// The largest response read.
    public static let maximumResponse = 16 << 20

    /// Connects to `url`, trusting only the CA certificates in `caPEM`. A request that has no answer within
    /// `requestSeconds` fails as unreachable (a node must notice a cut network in seconds, not minutes).
    public init(url: String, caPEM: String, connectSeconds: Int64 = 10, requestSeconds: Int64 = 120)
        throws(ControllerClientError)
    {
        guard url.hasPrefix("https://") else {
            throw ControllerClientError(
                status: nil, code: "invalid_url", reason: "--controller must be an https:// URL, not \(url)")
        }
        baseURL = url.hasSuffix("/") ? String(url.dropLast()) : url
        let roots: [NIOSSLCertificate]
        do { roots = try NIOSSLCertificate.fromPEMBytes(Array(caPEM.utf8)) } catch {
            throw ControllerClientError(status: nil, code: "invalid_ca", reason: "--ca: not PEM certificates: \(error)")
        }
        guard !roots.isEmpty else {
            throw ControllerClientError(status: nil, code: "invalid_ca", reason: "--ca: no certificate in the file")
        }
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(roots)
        tls.certificateVerification = .fullVerification
        tls.minimumTLSVersion = .tlsv12
        client = HTTPClient(
            eventLoopGroupProvider: .singleton,
            configuration: HTTPClient.Configuration(
                tlsConfiguration: tls,
                timeout: .init(connect: .seconds(connectSeconds), read: .seconds(requestSeconds))))
        requestTimeout = .seconds(requestSeconds)
    }

    /// Sends a request and returns the status and body (any status: refusals are for the caller to read).
    public func send(method: String, path: String, body: [UInt8]?, headers: [(String, String)] = [])
        async throws(ControllerClientError) -> (status: Int, body: [UInt8])
    {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = .RAW(value: method)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        do {
            let response = try await client.execute(request, timeout: requestTimeout)
            let buffer = try await response.body.collect(upTo: Self.maximumResponse)
            return (Int(response.status.code), Array(buffer.readableBytesView))
        } catch {
            throw ControllerClientError(
                status: nil, code: "connection_failed", reason: "\(method) \(baseURL)\(path): \(error)")
        }
    }

    /// Sends a request and decodes a 200 answer as `T`; any other status throws the controller's reason.
    public func call<T: Decodable>(
        _ type: T.Type, method: String, path: String, body: [UInt8]?, headers: [(String, String)] = []
    ) async throws(ControllerClientError) -> T {
        let (status, bytes) = try await send(method: method, path: path, body: body, headers: headers)
        guard status == 200 else { throw ControllerClientError(status: status, body: bytes) }
        do { return try APIJSON.decode(type, from: bytes, limit: Self.maximumResponse) } catch {
            throw ControllerClientError(
                status: status, code: "bad_response",
                reason: "the controller's answer is not a \(T.self): \(error.reason)")
        }
    }

    /// Closes the connection pool.
    public func shutdown() async {
        try? await client.shutdown()
    }
}

/// The one error type of `ControllerClient`: the controller refused (its code and reason), or could not be reached.
public struct ControllerClientError: Error, Sendable, CustomStringConvertible {
    /// The HTTP status, nil when no answer came.
    public let status: Int?
    /// The controller's refusal code (`nonce_used`, `not_attested`, …) or a local one.
    public let code: String
    /// Why.
    public let reason: String

    /// An error.
    public init(status: Int?, code: String, reason: String) {
        self.status = status
        self.code = code
        self.reason = reason
    }

    /// The controller's error body, or the raw text when it is not one.
    public init(status: Int, body: [UInt8]) {
        self.status = status
        if let e = try? APIJSON.decode(APIErrorBody.self, from: body, limit: 1 << 20) {
            code = e.error
            reason = e.reason
        } else {
            code = "http_\(status)"
            reason = String(decoding: body.prefix(512), as: UTF8.self)
        }
    }

    /// `code: reason (HTTP status)`.
    public var description: String { "\(code): \(reason)\(status.map { " (HTTP \($0))" } ?? "")" }
}
