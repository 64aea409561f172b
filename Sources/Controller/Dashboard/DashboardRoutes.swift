import ControllerProtocol
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Policy
import Synchronization

/// The security team's dashboard at `/ui/`, served by the controller itself: server-rendered HTML that works
/// without JavaScript (live updates excepted), behind the admin tokens and their roles.
///
/// Sign-in takes an admin token once and sets a session cookie (``DashboardSession``); every form carries the
/// session's CSRF token, and the sign-in form a double-submit cookie. Every answer carries a Content-Security-Policy
/// that admits only this origin's stylesheet and script, so markup that got past escaping still could not run.
enum DashboardRoutes {
    /// The largest form body (sign-in, sign-out, audit verification).
    static let maximumFormBody = 8 * 1024
    /// The largest policy upload form: a policy of at most 1 MiB, URL-encoded (up to three bytes per byte).
    static let maximumPolicyForm = 3 * 1024 * 1024 + 8 * 1024
    /// Live-update streams open at once (each polls the database once a second).
    static let maximumEventStreams = 32
    /// How long one live-update stream lasts before the browser reconnects (and the session is checked anew).
    static let eventStreamLifetime: Duration = .seconds(300)

    static let securityHeaders: HTTPFields = {
        var fields: HTTPFields = [
            .contentSecurityPolicy:
                "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            .xContentTypeOptions: "nosniff",
            .cacheControl: "no-store",
        ]
        for (name, value) in [
            ("Referrer-Policy", "same-origin"), ("X-Frame-Options", "DENY"),
            ("Strict-Transport-Security", "max-age=31536000"),
        ] {
            if let name = HTTPField.Name(name) { fields[name] = value }
        }
        return fields
    }()

    /// Live-update streams open now, in all and per session.
    final class StreamCount: Sendable {
        let open = Mutex<(all: Int, bySession: [String: Int])>((0, [:]))

        /// A slot for `session`'s stream, or nil at either limit.
        func take(for session: String) -> StreamSlot? {
            let admitted = open.withLock { open in
                guard open.all < maximumEventStreams, open.bySession[session, default: 0] < maximumStreamsPerSession
                else { return false }
                open.all += 1
                open.bySession[session, default: 0] += 1
                return true
            }
            return admitted ? StreamSlot(self, session: session) : nil
        }

        fileprivate func give(back session: String) {
            open.withLock { open in
                open.all -= 1
                open.bySession[session, default: 1] -= 1
                if open.bySession[session] == 0 { open.bySession[session] = nil }
            }
        }
    }

    /// One stream's place, given back when the last reference goes: when its body finishes, and also when the
    /// body never runs at all (the client left before the response head was written).
    final class StreamSlot: Sendable {
        let count: StreamCount
        let session: String
        init(_ count: StreamCount, session: String) {
            self.count = count
            self.session = session
        }
        deinit { count.give(back: session) }
    }

    /// Live-update streams one session may hold (a few tabs).
    static let maximumStreamsPerSession = 4

    static func add(to router: Router<BasicRequestContext>, _ controller: Controller) {
        let streams = StreamCount()
        let deadline = controller.configuration.requestDeadline
        router.get("/ui") { request, _ in
            await ControllerServer.withDeadline(deadline) { await fleet(request, controller) }
        }
        router.get("/ui/login") { request, _ in
            await ControllerServer.withDeadline(deadline) { await loginForm(request, controller, error: nil) }
        }
        router.post("/ui/login") { request, _ in
            await ControllerServer.withDeadline(deadline) { await signIn(request, controller) }
        }
        router.post("/ui/logout") { request, _ in
            await ControllerServer.withDeadline(deadline) { await signOut(request, controller) }
        }
        router.get("/ui/devices/{id}") { request, context in
            let id = context.parameters.get("id") ?? ""
            return await ControllerServer.withDeadline(deadline) { await device(request, controller, id: id) }
        }
        router.get("/ui/audit") { request, _ in
            await ControllerServer.withDeadline(deadline) { await audit(request, controller, verify: false) }
        }
        router.post("/ui/audit/verify") { request, _ in
            await ControllerServer.withDeadline(deadline) { await audit(request, controller, verify: true) }
        }
        router.get("/ui/policies") { request, _ in
            await ControllerServer.withDeadline(deadline) { await policies(request, controller) }
        }
        router.post("/ui/policies") { request, _ in
            await ControllerServer.withDeadline(deadline) { await uploadPolicy(request, controller) }
        }
        router.get("/ui/policies/{name}") { request, context in
            let name = context.parameters.get("name") ?? ""
            return await ControllerServer.withDeadline(deadline) { await policy(request, controller, name: name) }
        }
        router.get("/ui/events") { request, _ in await events(request, controller, streams: streams) }
        router.get("/ui/static/vigil.css") { _, _ in
            asset(DashboardTemplates.stylesheet, type: "text/css; charset=utf-8")
        }
        router.get("/ui/static/live.js") { _, _ in
            asset(DashboardTemplates.liveScript, type: "text/javascript; charset=utf-8")
        }
    }

    // MARK: Pages

    static func fleet(_ request: Request, _ controller: Controller) async -> Response {
        let parameters = DashboardInput.parameters(request.uri)
        guard let session = await session(request, controller) else {
            // The live script's refresh: no page to redirect to, it reloads the page (and lands on sign-in).
            if parameters["fragment"] == "1" { return Response(status: .unauthorized, headers: securityHeaders) }
            return redirect("/ui/login")
        }
        let query = DashboardPages.FleetQuery(parameters)
        do throws(ControllerError) {
            let devices = try await controller.listDevices(session.caller)
            let region = DashboardPages.fleetRegion(
                devices, query, now: controller.clock(), freshFor: controller.configuration.resultLifetime)
            if parameters["fragment"] == "1" { return html(region) }
            return html(
                DashboardPages.page(
                    title: "Fleet", session: session, content: DashboardPages.fleetPage(region: region, query),
                    live: true))
        } catch {
            return failure(error, session: session)
        }
    }

    static func device(_ request: Request, _ controller: Controller, id: String) async -> Response {
        guard let session = await session(request, controller) else { return redirect("/ui/login") }
        guard let device = DeviceID(id) else {
            return html(
                DashboardPages.page(
                    title: "Not found", session: session,
                    content: DashboardPages.message("Not found", "That is not a device id.")), status: .notFound)
        }
        do throws(ControllerError) {
            let detail = try await controller.showDevice(session.caller, device)
            let boot = try await controller.dashboardBoot(device)
            return html(
                DashboardPages.page(
                    title: "Device \(device.rawValue)", session: session,
                    content: DashboardPages.devicePage(
                        detail, boot: boot, now: controller.clock(),
                        freshFor: controller.configuration.resultLifetime)))
        } catch {
            return failure(error, session: session)
        }
    }

    /// `GET /ui/audit`: the log, filtered and paged; `POST /ui/audit/verify` (CSRF): the same page with the chain
    /// recomputed just now (``Controller/verifyAudit(_:)``, which records the check in the chain).
    static func audit(_ request: Request, _ controller: Controller, verify: Bool) async -> Response {
        guard let session = await session(request, controller) else { return redirect("/ui/login") }
        var report: Admin.AuditReport?
        if verify {
            guard sameOrigin(request) else { return crossOrigin(request) }
            guard let form: CSRFForm = await decodeForm(request), DashboardSession.same(form.csrf, session.csrf)
            else { return forbidden("the form's CSRF token is missing or wrong") }
            do throws(ControllerError) { report = try await controller.verifyAudit(session.caller) } catch {
                return failure(error, session: session)
            }
        }
        let parameters = DashboardInput.parameters(request.uri)
        let query = String((parameters["q"] ?? "").prefix(200))
        let before = parameters["before"].flatMap { Int64($0) }
        do throws(ControllerError) {
            let page = try await controller.dashboardAudit(session.caller, filter: query, before: before)
            return html(
                DashboardPages.page(
                    title: "Audit", session: session,
                    content: DashboardPages.auditPage(page, query: query, csrf: session.csrf, report: report)))
        } catch {
            return failure(error, session: session)
        }
    }

    /// `GET /ui/policies`: every policy, its assignments and lint; the upload form for policy-admins.
    static func policies(_ request: Request, _ controller: Controller) async -> Response {
        guard let session = await session(request, controller) else { return redirect("/ui/login") }
        do throws(ControllerError) {
            let policies = try await controller.dashboardPolicies()
            return html(
                DashboardPages.page(
                    title: "Policies", session: session,
                    content: DashboardPages.policiesPage(policies, session: session)))
        } catch {
            return failure(error, session: session)
        }
    }

    /// `GET /ui/policies/NAME`: one policy's versions, explanation, source and a diff of two versions.
    static func policy(_ request: Request, _ controller: Controller, name: String) async -> Response {
        guard let session = await session(request, controller) else { return redirect("/ui/login") }
        do throws(ControllerError) {
            let policies = try await controller.dashboardPolicies()
            guard let name = PolicyName(name),
                let content = DashboardPages.policyPage(
                    policies.versions(of: name.rawValue), parameters: DashboardInput.parameters(request.uri))
            else {
                return html(
                    DashboardPages.page(
                        title: "Not found", session: session,
                        content: DashboardPages.message("Not found", "There is no policy of that name.")),
                    status: .notFound)
            }
            return html(DashboardPages.page(title: "Policy \(name)", session: session, content: content))
        } catch {
            return failure(error, session: session)
        }
    }

    struct PolicyUploadBody: Decodable { let csrf: String, name: String, yaml: String, parent: String? }

    /// `POST /ui/policies` (CSRF, policy-admin): lints the document with the stored version it extends, and
    /// stores it as a new version; a lint error is shown at file:line:column with the offending line.
    static func uploadPolicy(_ request: Request, _ controller: Controller) async -> Response {
        guard sameOrigin(request) else { return crossOrigin(request) }
        guard let session = await session(request, controller) else { return redirect("/ui/login") }
        guard let form: PolicyUploadBody = await decodeForm(request, limit: maximumPolicyForm),
            DashboardSession.same(form.csrf, session.csrf)
        else { return forbidden("the form's CSRF token is missing or wrong") }
        do throws(ControllerError) {
            // The audit subject is a valid name or a placeholder, never the raw (up to 3 MiB) form field.
            try await controller.require(
                session.caller, .policyAdmin, for: "policy.add",
                subject: PolicyName(form.name)?.rawValue ?? "(not a policy name)")
            let policies = try await controller.dashboardPolicies()
            // Browsers send a textarea's line breaks as CR LF.
            let yaml = form.yaml.replacingOccurrences(of: "\r\n", with: "\n")
            let shown = DashboardPages.PolicyUploadForm(name: form.name, yaml: yaml, parent: form.parent ?? "")
            func refuse(_ errors: [DashboardPages.LintErrorView]) -> Response {
                html(
                    DashboardPages.page(
                        title: "Policies", session: session,
                        content: DashboardPages.policiesPage(policies, session: session, form: shown, errors: errors)),
                    status: .unprocessableContent)
            }
            guard let name = PolicyName(form.name) else {
                return refuse([
                    .init(
                        location: "name", message: "1 to 64 of A–Z a–z 0–9 . _ -, starting with a letter or digit",
                        source: nil, caret: nil)
                ])
            }
            var parents: [String] = []
            if let parent = form.parent, !parent.isEmpty {
                guard let stored = policies.versions.first(where: { "\($0.name)@\($0.version)" == parent }) else {
                    return refuse([
                        .init(location: "extends", message: "no stored version \(parent)", source: nil, caret: nil)
                    ])
                }
                parents = stored.parents + [stored.yaml]
            }
            let file = "\(name).yaml"
            do throws(PolicyError) { _ = try DashboardPolicies.load(yaml: yaml, parents: parents, file: file) } catch {
                return refuse([DashboardPages.lintError(error, file: file, yaml: yaml)])
            }
            let stored: Admin.PolicyVersion
            do throws(ControllerError) {
                stored = try await controller.addPolicy(session.caller, name: name, .init(yaml: yaml, parents: parents))
            } catch  where error.status == 400 {
                return refuse([.init(location: file, message: error.callerReason, source: nil, caret: nil)])
            }
            return redirect("/ui/policies/\(name)?version=\(stored.version)")
        } catch {
            return failure(error, session: session)
        }
    }

    // MARK: Signing in and out

    static func loginForm(
        _ request: Request, _ controller: Controller, error: String?, status: HTTPResponse.Status = .ok
    )
        async -> Response
    {
        if error == nil, await session(request, controller) != nil { return redirect("/ui/") }
        let nonce = DashboardSession.randomToken()
        var response = html(
            DashboardPages.page(
                title: "Sign in", session: nil, content: DashboardPages.login(csrf: nonce, error: error)),
            status: status)
        response.setCookie(
            Cookie(
                name: DashboardSession.loginCookie, value: nonce, maxAge: 600, path: "/", secure: true,
                httpOnly: true, sameSite: .strict))
        return response
    }

    struct LoginForm: Decodable { let token: String, csrf: String }
    struct CSRFForm: Decodable { let csrf: String }

    static func signIn(_ request: Request, _ controller: Controller) async -> Response {
        guard sameOrigin(request) else { return crossOrigin(request) }
        guard let form: LoginForm = await decodeForm(request) else {
            return await loginForm(request, controller, error: "The form was malformed.", status: .badRequest)
        }
        guard let expected = request.cookies[DashboardSession.loginCookie]?.value, expected.utf8.count == 64,
            DashboardSession.same(expected, form.csrf)
        else {
            return await loginForm(
                request, controller, error: "The sign-in form expired or was not this controller's; try again.",
                status: .forbidden)
        }
        let token = form.token.trimmingCharacters(in: .whitespacesAndNewlines)
        do throws(ControllerError) {
            let id = try await controller.dashboardSignIn(token: token)
            var response = redirect("/ui/")
            response.setCookie(
                Cookie(
                    name: DashboardSession.cookie, value: id, maxAge: Int(DashboardSession.lifetime), path: "/",
                    secure: true, httpOnly: true, sameSite: .strict))
            response.setCookie(expired(DashboardSession.loginCookie))
            return response
        } catch {
            let message = error.status == 401 ? "That token is not valid." : error.callerReason
            return await loginForm(request, controller, error: message, status: .unauthorized)
        }
    }

    static func signOut(_ request: Request, _ controller: Controller) async -> Response {
        guard sameOrigin(request) else { return crossOrigin(request) }
        guard let session = await session(request, controller) else { return redirect("/ui/login") }
        guard let form: CSRFForm = await decodeForm(request), DashboardSession.same(form.csrf, session.csrf) else {
            return forbidden("the form's CSRF token is missing or wrong")
        }
        do throws(ControllerError) { try await controller.dashboardSignOut(session) } catch {
            return failure(error, session: session)
        }
        var response = redirect("/ui/login")
        response.setCookie(expired(DashboardSession.cookie))
        return response
    }

    // MARK: Live updates

    /// `GET /ui/events`: server-sent events, one `verdict` per attestation stored (by any instance) since the
    /// stream opened, polled from the database once a second.
    static func events(_ request: Request, _ controller: Controller, streams: StreamCount) async -> Response {
        guard let session = await session(request, controller) else {
            return Response(status: .unauthorized, headers: securityHeaders)
        }
        guard let slot = streams.take(for: session.idHash) else {
            var headers = securityHeaders
            headers[.retryAfter] = "30"
            return Response(status: .serviceUnavailable, headers: headers)
        }
        var headers = securityHeaders
        headers[.contentType] = "text/event-stream"
        let started = controller.clock()
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { writer in
                _ = slot  // held until the stream ends (or its body is dropped unrun)
                var since = started
                let end = ContinuousClock.now + eventStreamLifetime
                try await writer.write(ByteBuffer(string: "retry: 3000\n: vigil verdicts\n\n"))
                var quiet = 0
                while ContinuousClock.now < end {
                    try await Task.sleep(for: .seconds(1))
                    // A session signed out or expired, or its token removed, ends its stream.
                    guard
                        (try? await controller.dashboardSession(id: request.cookies[DashboardSession.cookie]?.value))
                            .flatMap({ $0 })?.idHash == session.idHash
                    else { break }
                    let verdicts = (try? await controller.dashboardVerdicts(since: since)) ?? []
                    for verdict in verdicts {
                        since = max(since, verdict.at)
                        let data = try APIJSON.encode(verdict)
                        try await writer.write(
                            ByteBuffer(string: "event: verdict\ndata: \(String(decoding: data, as: UTF8.self))\n\n"))
                    }
                    quiet = verdicts.isEmpty ? quiet + 1 : 0
                    if quiet >= 15 {
                        quiet = 0
                        try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                    }
                }
                try await writer.finish(nil)
            })
    }

    // MARK: Plumbing

    /// The session the request's cookie names, if it is live.
    static func session(_ request: Request, _ controller: Controller) async -> DashboardSession? {
        (try? await controller.dashboardSession(id: request.cookies[DashboardSession.cookie]?.value)) ?? nil
    }

    /// A form post from another origin is refused outright (the CSRF token would refuse it too). Browsers send
    /// `Origin` with every form post; a client that sends none relies on the CSRF token alone.
    static func sameOrigin(_ request: Request) -> Bool {
        guard let origin = request.headers[.origin] else { return true }
        guard let authority = request.head.authority else { return false }
        return origin == "https://\(authority)"
    }

    /// Why ``sameOrigin(_:)`` refused, for the page.
    static func crossOrigin(_ request: Request) -> Response {
        let authority = request.head.authority ?? "?"
        return forbidden(
            "a form posted from \(request.headers[.origin] ?? "?") to this controller (https://\(authority))")
    }

    static func decodeForm<T: Decodable>(_ request: Request, limit: Int = maximumFormBody) async -> T? {
        guard
            request.headers[.contentType]?.lowercased().hasPrefix("application/x-www-form-urlencoded") == true,
            let body = try? await ControllerServer.collect(request, limit: limit)
        else { return nil }
        return DashboardInput.form(T.self, body, limit: limit)
    }

    static func html(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        var headers = securityHeaders
        headers[.contentType] = "text/html; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func asset(_ text: String, type: String) -> Response {
        var headers = securityHeaders
        headers[.contentType] = type
        headers[.cacheControl] = "max-age=300"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func redirect(_ location: String) -> Response {
        var headers = securityHeaders
        headers[.location] = location
        return Response(status: .seeOther, headers: headers)
    }

    static func forbidden(_ why: String) -> Response {
        html(
            DashboardPages.page(
                title: "Refused", session: nil, content: DashboardPages.message("Refused", "Refused: \(why).")),
            status: .forbidden)
    }

    static func failure(_ error: ControllerError, session: DashboardSession) -> Response {
        html(
            DashboardPages.page(
                title: "Error", session: session,
                content: DashboardPages.message(error.status == 404 ? "Not found" : "Refused", error.callerReason)),
            status: HTTPResponse.Status(code: error.status))
    }

    static func expired(_ name: String) -> Cookie {
        Cookie(name: name, value: "", maxAge: 0, path: "/", secure: true, httpOnly: true, sameSite: .strict)
    }
}
