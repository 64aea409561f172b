import ControllerProtocol
import Foundation
import HTTPTypes
public import Hummingbird
import HummingbirdTLS
public import Logging
import NIOCore
import NIOSSL
import Synchronization

/// The controller's HTTPS API (Hummingbird 2 over TLS with the controller's certificate): a thin layer that
/// reads bounded bodies, decodes them strictly and calls ``Controller``. Every refusal is a JSON
/// ``APIErrorBody`` with a 4xx status that names what was refused.
public enum ControllerServer {
    /// A route's handler.
    typealias Handler = @Sendable (Request, BasicRequestContext) async throws -> Response

    /// The routes, on a router (tests and `vigil controller serve` share this): one handler per
    /// ``APIOperation``, registered from that list, so the OpenAPI document and the routes are the same list.
    public static func router(_ controller: Controller, metrics: ControllerMetrics? = nil) -> Router<
        BasicRequestContext
    > {
        let router = Router(context: BasicRequestContext.self)
        router.add(
            middleware: InFlightLimit(limit: controller.configuration.maximumInFlight, metrics: metrics))
        let table = handlers(controller, metrics: metrics)
        for operation in APIOperation.all {
            guard let handler = table[operation.id] else { continue }  // ControllerServerTests: none is missing
            router.on(RouterPath(operation.routerPath), method: HTTPRequest.Method(rawValue: operation.method) ?? .get)
            {
                request, context in
                let started = ContinuousClock.now
                let response = await withDeadline(controller.configuration.requestDeadline) {
                    try await handler(request, context)
                }
                metrics?.record(operation: operation.id, status: response.status.code, since: started)
                return response
            }
        }
        // EVE devices attest through EVE's own API, answered by the same controller.
        EVERoutes.add(to: router, controller, metrics: metrics)
        // The security team's dashboard, behind the same tokens.
        DashboardRoutes.add(to: router, controller)
        return router
    }

    /// The ids of the operations that have a handler.
    public static func handledOperations(_ controller: Controller) -> Set<String> {
        Set(handlers(controller, metrics: nil).keys)
    }

    static func handlers(_ controller: Controller, metrics: ControllerMetrics?) -> [String: Handler] {
        var h: [String: Handler] = [:]
        h["health"] = { _, _ in try json(["status": "ok"]) }
        h["metrics"] = { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(string: metrics?.exposition() ?? "")))
        }
        h["resultKey"] = { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/x-pem-file"],
                body: .init(byteBuffer: ByteBuffer(string: controller.state.resultSigningPublicKeyPEM + "\n")))
        }
        h["revocations"] = { _, _ in
            do throws(ControllerError) {
                let token = try await controller.revocationList()
                return Response(
                    status: .ok, headers: [.contentType: "application/jwt"],
                    body: .init(byteBuffer: ByteBuffer(string: token)))
            } catch {
                return errorResponse(error)
            }
        }
        h["openapi"] = { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(bytes: OpenAPIDocument.json)))
        }

        // MARK: Devices
        h["onboardBegin"] = { request, _ in
            try await respond {
                let body = try await collect(request, limit: Controller.maximumOnboardingBody)
                let begin = try decode(
                    Onboarding.BeginRequest.self, body, limit: Controller.maximumOnboardingBody,
                    knownKeys: Onboarding.BeginRequest.knownKeys)
                return try await controller.beginOnboarding(begin)
            }
        }
        h["onboardFinish"] = { request, _ in
            try await respond {
                let body = try await collect(request, limit: Controller.maximumOnboardingBody)
                let finish = try decode(
                    Onboarding.FinishRequest.self, body, limit: Controller.maximumOnboardingBody,
                    knownKeys: Onboarding.FinishRequest.knownKeys)
                return try await controller.finishOnboarding(
                    finish, authorization: request.headers[.authorization], method: "POST",
                    path: request.uri.path, body: body)
            }
        }
        h["attestNonce"] = { request, _ in
            try await respond {
                let body = try await collect(request, limit: 1024)
                return try await controller.issueNonce(
                    authorization: request.headers[.authorization], method: "POST", path: request.uri.path, body: body)
            }
        }
        h["attest"] = { request, _ in
            try await respond {
                let body = try await collect(request, limit: EvidenceLimit.bytes)
                do throws(ControllerError) {
                    let outcome = try await controller.attest(
                        authorization: request.headers[.authorization], method: "POST", path: request.uri.path,
                        body: body)
                    metrics?.attestation(pass: outcome.pass, reason: outcome.pass ? "pass" : "policy")
                    return outcome
                } catch {
                    metrics?.attestation(pass: false, reason: error.code)
                    throw error
                }
            }
        }
        h["secretRelease"] = { request, context in
            try await respond {
                let body = try await collect(request, limit: 1024)
                let name = context.parameters.get("name") ?? ""
                do throws(ControllerError) {
                    let envelope = try await controller.releaseSecret(
                        name, authorization: request.headers[.authorization], method: "POST",
                        path: request.uri.path, body: body)
                    metrics?.release(outcome: "released")
                    return envelope
                } catch {
                    metrics?.release(outcome: error.code)
                    throw error
                }
            }
        }
        h["escrowDeposit"] = { request, context in
            try await respond {
                let body = try await collect(request, limit: Controller.maximumEscrowBody)
                return try await controller.depositEscrow(
                    context.parameters.get("name") ?? "", authorization: request.headers[.authorization],
                    method: "POST", path: request.uri.path, body: body)
            }
        }
        h["nodeReport"] = { request, context in
            try await respond {
                let body = try await collect(request, limit: NodeReport.maximumBody)
                return try await controller.nodeReport(
                    authorization: request.headers[.authorization], method: "POST", path: request.uri.path, body: body)
            }
        }
        AdminRoutes.add(to: &h, controller)
        return h
    }

    /// Serves `controller` over TLS on `host:port` until cancelled; `onRunning` gets the bound port.
    public static func serve(
        _ controller: Controller, host: String, port: Int, logger: Logger, metrics: ControllerMetrics? = nil,
        onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) async throws {
        let chain = try NIOSSLCertificate.fromPEMBytes(Array(controller.state.tlsChainPEM.utf8))
        let key = try NIOSSLPrivateKey(bytes: Array(controller.state.tlsKeyPEM.utf8), format: .pem)
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        tls.minimumTLSVersion = .tlsv12
        let app = Application(
            router: router(controller, metrics: metrics),
            // A connection that sends nothing for 30 s is closed (a slow client holds no slot for long: bodies also
            // have a read deadline, ``collect(_:limit:)``).
            server: try .tls(.http1(configuration: .init(idleTimeout: .seconds(30))), tlsConfiguration: tls),
            configuration: .init(address: .hostname(host, port: port), serverName: "vigil-controller"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) },
            logger: logger)
        try await app.run()
    }

    // MARK: Plumbing

    /// Runs `handler` and answers with its response, or with 503 `request_timeout` once `seconds` have passed
    /// (the handler is then cancelled; what it already committed stays committed, and the caller may retry).
    static func withDeadline(_ seconds: TimeInterval, _ handler: @escaping @Sendable () async throws -> Response)
        async -> Response
    {
        let timeout = errorResponse(
            .unavailable(
                "request_timeout", "the controller could not finish this request within \(Int(seconds)) s; try again",
                retryAfter: 2))
        let race = DeadlineRace()
        return await withCheckedContinuation { (continuation: CheckedContinuation<Response, Never>) in
            race.outcome.withLock { $0 = continuation }
            let timer = Task {
                try? await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
                guard !Task.isCancelled, let waiting = race.outcome.withLock({ $0.take() }) else { return }
                race.work.withLock { $0 }?.cancel()
                waiting.resume(returning: timeout)
            }
            let work = Task {
                let response: Response
                do { response = try await handler() } catch {
                    response = errorResponse(.internalFailure("\(error)"))
                }
                timer.cancel()
                race.outcome.withLock { $0.take() }?.resume(returning: response)
            }
            race.work.withLock { $0 = work }
        }
    }

    /// Who answers first: the handler or the deadline.
    final class DeadlineRace: Sendable {
        let outcome = Mutex<CheckedContinuation<Response, Never>?>(nil)
        let work = Mutex<Task<Void, Never>?>(nil)
    }

    /// The evidence body limit: a bundle's own cap.
    enum EvidenceLimit { static let bytes = 8 << 20 }

    /// Reads the body up to `limit` bytes; a larger body is refused before it is read whole. (How long it may take
    /// is the request's deadline, ``withDeadline(_:_:)``.)
    static func collect(_ request: Request, limit: Int) async throws(ControllerError) -> [UInt8] {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit {
            throw .tooLarge("the body is \(length) bytes; this route takes at most \(limit)")
        }
        do {
            let buffer = try await request.body.collect(upTo: limit)
            return Array(buffer.readableBytesView)
        } catch {
            throw .tooLarge("the body is larger than the \(limit) bytes this route takes")
        }
    }

    static func decode<T: Decodable>(_ type: T.Type, _ body: [UInt8], limit: Int, knownKeys: Set<String>?)
        throws(ControllerError) -> T
    {
        do { return try APIJSON.decode(type, from: body, limit: limit, knownKeys: knownKeys) } catch {
            throw ControllerError(error)
        }
    }

    /// Runs a handler and turns its value into a 200 JSON response and its refusal into the error body.
    static func respond(_ body: () async throws -> some Encodable) async throws -> Response {
        do {
            return try json(try await body())
        } catch let error as ControllerError {
            return errorResponse(error)
        } catch let error as ControllerProtocolError {
            return errorResponse(ControllerError(error))
        } catch {
            return errorResponse(.internalFailure("\(error)"))
        }
    }

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: try APIJSON.encode(value))))
    }

    static func errorResponse(_ error: ControllerError) -> Response {
        let body = (try? APIJSON.encode(APIErrorBody(error: error.code, reason: error.callerReason))) ?? []
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retryAfter = error.retryAfter { headers[.retryAfter] = String(retryAfter) }
        return Response(
            status: HTTPResponse.Status(code: error.status), headers: headers,
            body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}
