import ControllerProtocol
import HTTPTypes
import Hummingbird
import NIOCore

/// EVE's device API (`/api/v2/edgedevice/…`, lf-edge/eve-api `APIv2.md`) on the controller's router: protobuf
/// bodies (`application/x-proto-binary`), each request and each answer an `AuthContainer`. Refusals are the
/// status APIv2.md names (401 unauthenticated, 403 not allowed, 409 duplicate, 422 unprocessable, 400 unknown
/// device) with the reason as `text/plain`, so an operator reading a device's log sees what was refused.
enum EVERoutes {
    /// The path prefix.
    static let prefix = "/api/v2/edgedevice"
    /// The protobuf media type of every body.
    static let mediaType = "application/x-proto-binary"

    static func add(to router: Router<BasicRequestContext>, _ controller: Controller, metrics: ControllerMetrics?) {
        func route(
            _ id: String, _ method: HTTPRequest.Method, _ path: String,
            _ handler: @escaping @Sendable (Request, BasicRequestContext) async throws(ControllerError) -> EVEResponse
        ) {
            router.on(RouterPath(prefix + path), method: method) { request, context in
                let started = ContinuousClock.now
                // The same deadline as Vigil's own routes (503 request_timeout once it has passed).
                let response = await ControllerServer.withDeadline(controller.configuration.requestDeadline) {
                    () async -> Response in
                    do throws(ControllerError) {
                        let answer = try await handler(request, context)
                        if let a = answer.attestation { metrics?.attestation(pass: a.pass, reason: a.reason) }
                        return Response(
                            status: HTTPResponse.Status(code: answer.status),
                            headers: answer.body.isEmpty ? [:] : [.contentType: mediaType],
                            body: .init(byteBuffer: ByteBuffer(bytes: answer.body)))
                    } catch {
                        if id == "eveAttest", error.status < 500 {
                            metrics?.attestation(pass: false, reason: error.code)
                        }
                        let reason = error.callerReason
                        var headers: HTTPFields = [.contentType: "text/plain; charset=utf-8"]
                        if let retryAfter = error.retryAfter { headers[.retryAfter] = String(retryAfter) }
                        return Response(
                            status: HTTPResponse.Status(code: error.status),
                            headers: headers,
                            body: .init(byteBuffer: ByteBuffer(string: "\(error.code): \(reason)\n")))
                    }
                }
                metrics?.record(operation: id, status: response.status.code, since: started)
                return response
            }
        }
        route("evePing", .get, "/ping") { _, _ throws(ControllerError) in EVEResponse(status: 200) }
        route("eveCerts", .get, "/certs") { _, _ throws(ControllerError) in try controller.eveCertificates() }
        route("eveRegister", .post, "/register") { request, _ throws(ControllerError) in
            try await controller.eveRegister(body: try await body(request))
        }
        route("eveUUID", .post, "/uuid") { request, _ throws(ControllerError) in
            try await controller.eveUUID(body: try await body(request))
        }
        route("eveAttest", .post, "/id/:uuid/attest") { request, context throws(ControllerError) in
            try await controller.eveAttest(uuid: context.parameters.get("uuid") ?? "", body: try await body(request))
        }
    }

    /// The body, refused above ``UnverifiedAuthContainer/maximumSize`` before it is read whole.
    static func body(_ request: Request) async throws(ControllerError) -> [UInt8] {
        try await ControllerServer.collect(request, limit: UnverifiedAuthContainer.maximumSize)
    }
}
