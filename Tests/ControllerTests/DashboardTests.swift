import AsyncHTTPClient
import Attest
import AttestTPM
import ControllerProtocol
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import ProcessSupport
import Testing
import VigilTestSupport

@testable import Controller

/// The dashboard (issue 13) over real HTTPS against a controller with swtpm devices: sign-in sets a session cookie
/// that scripts cannot read and other sites cannot send; every form needs the session's CSRF token; a passing and
/// a failing device are shown as such, the failing one with its rule and PCR.
@Suite(.enabled(if: SoftwareTPM.canRun, "swtpm is not installed"))
struct DashboardTests {
    /// A browser-like client without a browser: it keeps the cookies it is given and does not follow redirects.
    final class Browser: @unchecked Sendable {
        let http: HTTPClient
        let base: String
        var cookies: [String: String] = [:]

        init(_ controller: ControllerHarness) throws {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .certificates(
                try NIOSSLCertificate.fromPEMBytes(
                    Array(try String(contentsOfFile: controller.caPath, encoding: .utf8).utf8)))
            var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
            configuration.redirectConfiguration = .disallow
            http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            base = controller.url
        }

        struct Page {
            let status: Int
            let headers: HTTPHeaders
            let text: String
            var location: String? { headers.first(name: "Location") }
            /// The value of the form's hidden `csrf` field.
            var csrf: String? {
                guard let range = text.range(of: #"name="csrf" value=""#) else { return nil }
                return String(text[range.upperBound...].prefix { $0 != "\"" })
            }
        }

        func go(_ method: HTTPMethod, _ path: String, form: [String: String]? = nil, origin: String? = nil)
            async throws -> Page
        {
            var request = HTTPClientRequest(url: base + path)
            request.method = method
            if !cookies.isEmpty {
                request.headers.add(
                    name: "Cookie", value: cookies.map { "\($0.key)=\($0.value)" }.joined(separator: "; "))
            }
            if let origin { request.headers.add(name: "Origin", value: origin) }
            if let form {
                var components = URLComponents()
                components.queryItems = form.map { URLQueryItem(name: $0.key, value: $0.value) }
                let body = (components.percentEncodedQuery ?? "").replacingOccurrences(of: "+", with: "%2B")
                request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
                request.body = .bytes(ByteBuffer(string: body))
            }
            let response = try await http.execute(request, timeout: .seconds(60))
            for header in response.headers[canonicalForm: "Set-Cookie"] {
                let pair = header.split(separator: ";", maxSplits: 1)[0].split(separator: "=", maxSplits: 1)
                guard pair.count == 2 || (pair.count == 1 && header.contains("Max-Age=0")) else { continue }
                let name = String(pair[0]).trimmingCharacters(in: .whitespaces)
                if header.contains("Max-Age=0") { cookies[name] = nil } else { cookies[name] = String(pair[1]) }
            }
            let bytes = try await response.body.collect(upTo: 4 << 20)
            return Page(status: Int(response.status.code), headers: response.headers, text: String(buffer: bytes))
        }

        func shutdown() async { try? await http.shutdown() }
    }

    /// The fleet both tests look at: `good` onboarded with the vendor's EK chain and attested (pass); `bad` a blank
    /// swtpm admitted by EK fingerprint, attested after one unapproved measurement in PCR 4 (fail); and a viewer
    /// token.
    static func fleet(_ controller: ControllerHarness, good: TestDevice, bad: TestDevice) async throws -> (
        good: String, bad: String, viewer: String
    ) {
        try await controller.prepareFleet()
        // The second device is a blank swtpm (another EK, without a vendor certificate): its group's policy
        // is the strict one without the EK chain.
        let admin = try await controller.admin()
        _ = try await controller.controller.addPolicy(
            admin, name: try #require(PolicyName("lab-no-ek-cert")),
            Admin.PolicyUpload(
                yaml:
                    "id: lab-no-ek-cert\nversion: 1\nextends: strict-secureboot-linux\nidentity:\n  ek_certificate: optional\n",
                parents: try ControllerFixtures.fleetParents()))
        _ = try await controller.controller.assignPolicy(
            admin, name: try #require(PolicyName("lab-no-ek-cert")),
            Admin.PolicyAssignment(device: nil, group: "blank", version: nil))
        let goodID = try await ControllerEndToEndTests.bootAndOnboard(good, controller, group: "lab")
        // Admitted by its EK fingerprint (it has no vendor certificate to chain).
        #expect(try await bad.vigil(["tpm", "provision"]).status == 0)
        #expect(try await bad.vigil(["tpm", "replay-log", ControllerFixtures.eventLog]).status == 0)
        let shown = try await bad.vigil(["device", "id", "--json"])
        let fingerprint = try #require(
            (try JSONSerialization.jsonObject(with: Data(shown.stdout.utf8)) as? [String: Any])?["ek_fingerprint"]
                as? String)
        let allow = try await bad.vigil(
            ["admin", "device", "allow", "--ek-fingerprint", fingerprint, "--group", "blank"]
                + controller.adminArguments)
        #expect(allow.status == 0, "\(allow.stderr)")
        let onboarded = try await bad.vigil(["device", "onboard", "--json"] + controller.connectionArguments)
        #expect(onboarded.status == 0, "\(onboarded.stderr)")
        let badID = try #require(
            (try JSONSerialization.jsonObject(with: Data(onboarded.stdout.utf8)) as? [String: Any])?["device_id"]
                as? String)
        let pass = try await good.vigil(
            ["device", "attest", "--eventlog", ControllerFixtures.eventLog] + controller.connectionArguments)
        #expect(pass.status == 0, "\(pass.stdout)\(pass.stderr)")
        // The bad device passes once, so that its failure has a last pass to be compared with.
        let badPass = try await bad.vigil(
            ["device", "attest", "--eventlog", ControllerFixtures.eventLog] + controller.connectionArguments)
        #expect(badPass.status == 0, "\(badPass.stdout)\(badPass.stderr)")
        let tpm = try await bad.open()
        try await tpm.pcrExtend(4, digests: [.sha256: Array(SHA256.hash(data: Array("rootkit-loader".utf8)))])
        let fail = try await bad.vigil(
            ["device", "attest", "--eventlog", ControllerFixtures.eventLog] + controller.connectionArguments)
        #expect(fail.status == 1, "\(fail.stdout)\(fail.stderr)")
        let viewer = try await controller.controller.createToken(
            try await controller.admin(), Admin.TokenRequest(role: .viewer)
        ).token
        return (goodID, badID, viewer)
    }

    @Test(arguments: ControllerHarness.Database.available)
    func signInShowsThePassingAndTheFailingDeviceAndEveryFormNeedsItsToken(_ database: ControllerHarness.Database)
        async throws
    {
        let controller = try await ControllerHarness.start(database)
        let good = try TestDevice()
        let bad = try TestDevice(fresh: true)
        defer {
            good.stop()
            bad.stop()
        }
        let browser = try Browser(controller)
        do {
            let (goodID, badID, viewer) = try await Self.fleet(controller, good: good, bad: bad)

            // Without a session: to the sign-in page.
            let anonymous = try await browser.go(.GET, "/ui/")
            #expect(anonymous.status == 303)
            #expect(anonymous.location == "/ui/login")
            let device = try await browser.go(.GET, "/ui/devices/\(badID)")
            #expect(device.status == 303, "a device page without a session")
            let fragmentWithout = try await browser.go(.GET, "/ui/?fragment=1")
            #expect(fragmentWithout.status == 401 && !fragmentWithout.text.contains(badID))
            let eventsWithout = try await browser.go(.GET, "/ui/events")
            #expect(eventsWithout.status == 401)

            // The sign-in form: a double-submit cookie, HttpOnly, Secure, SameSite=Strict; the page's policy
            // admits only this origin.
            let form = try await browser.go(.GET, "/ui/login")
            #expect(form.status == 200)
            let loginCookie = try #require(form.headers[canonicalForm: "Set-Cookie"].first)
            for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
                #expect(loginCookie.contains(attribute), "\(loginCookie)")
            }
            let csp = try #require(form.headers.first(name: "Content-Security-Policy"))
            #expect(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"), "\(csp)")
            let loginToken = try #require(form.csrf)

            // A sign-in whose form token is not the cookie's (a login CSRF), from another origin, or with a wrong
            // admin token: refused, no session.
            let forged = try await browser.go(
                .POST, "/ui/login", form: ["token": viewer, "csrf": String(repeating: "0", count: 64)])
            #expect(forged.status == 403)
            #expect(browser.cookies[DashboardSession.cookie] == nil)
            let retry = try await browser.go(.GET, "/ui/login")
            let crossSite = try await browser.go(
                .POST, "/ui/login", form: ["token": viewer, "csrf": try #require(retry.csrf)],
                origin: "https://evil.example")
            #expect(crossSite.status == 403)
            let wrongToken = try await browser.go(
                .POST, "/ui/login",
                form: ["token": "vat_" + String(repeating: "a", count: 40), "csrf": try #require(retry.csrf)])
            #expect(wrongToken.status == 401)
            #expect(wrongToken.text.contains("That token is not valid"))
            #expect(browser.cookies[DashboardSession.cookie] == nil)
            _ = loginToken

            // Signed in as a viewer.
            let again = try await browser.go(.GET, "/ui/login")
            let signedIn = try await browser.go(
                .POST, "/ui/login", form: ["token": viewer, "csrf": try #require(again.csrf)])
            #expect(signedIn.status == 303)
            #expect(signedIn.location == "/ui/")
            let sessionCookie = try #require(
                signedIn.headers[canonicalForm: "Set-Cookie"].first { $0.hasPrefix("\(DashboardSession.cookie)=") })
            for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
                #expect(sessionCookie.contains(attribute), "\(sessionCookie)")
            }
            // The token itself is not in the cookie; the database holds only the session id's hash.
            #expect(!sessionCookie.contains(viewer))
            let sessionID = try #require(browser.cookies[DashboardSession.cookie])
            let stored = try await controller.backend.transaction { tx throws(ControllerError) in
                try await tx.query("SELECT session_sha256 FROM ui_sessions", [])
            }
            #expect(stored.count == 1)
            #expect(try stored.first?.requiredText("session_sha256") == DashboardSession.hash(sessionID))

            // The fleet: the good device trusted, the bad one failed on PCR 4's rule.
            let fleet = try await browser.go(.GET, "/ui/")
            #expect(fleet.status == 200)
            #expect(fleet.text.contains(goodID) && fleet.text.contains(badID), "\(fleet.text)")
            let goodRow = try #require(Self.row(of: goodID, in: fleet.text))
            let badRow = try #require(Self.row(of: badID, in: fleet.text))
            #expect(goodRow.contains("state-trusted"), "\(goodRow)")
            #expect(badRow.contains("state-failed") && badRow.contains("pcrs.sha256.4"), "\(badRow)")
            // Filtered to the failed ones, and the live fragment, without the page around it.
            let failedOnly = try await browser.go(.GET, "/ui/?state=failed")
            #expect(failedOnly.text.contains(badID) && !failedOnly.text.contains("data-device=\"\(goodID)\""))
            let fragment = try await browser.go(.GET, "/ui/?fragment=1")
            #expect(fragment.text.contains(badID) && !fragment.text.contains("<html"))

            // The failing device's page: the rule, what was expected and found, the PCR.
            let page = try await browser.go(.GET, "/ui/devices/\(badID)")
            #expect(page.status == 200)
            #expect(page.text.contains("Why the last attestation failed"))
            #expect(page.text.contains("<code>pcrs.sha256.4</code>"), "\(page.text)")
            #expect(page.text.contains("<td>sha256 4</td>"), "\(page.text)")
            let unknown = try await browser.go(.GET, "/ui/devices/not-a-device")
            #expect(unknown.status == 404)
            // What changed since its last pass: PCR 4's quoted value, with the log unchanged, so PCR 4's events
            // no longer replay and are marked as not attested.
            let changed = try #require(Self.section("changed", in: page.text), "\(page.text)")
            #expect(changed.contains("<td>sha256</td><td>4</td>"), "\(changed)")
            #expect(!changed.contains("change-added") && !changed.contains("change-removed"), "\(changed)")
            #expect(changed.contains("something was measured into this PCR that the log does not show"), "\(changed)")
            let latestBoot = try #require(Self.section("boot", in: page.text))
            #expect(
                latestBoot.contains("<tr class=\"proof-unproven\"><td>")
                    && latestBoot.contains("Secure Boot</dt><dd>enabled"))

            // A boot with markup and script in its kernel command line, measured for real (the event is bound to
            // its digests and PCR 8 replays): the verdict fails on the command line, and the page shows the
            // command line as text, the added event and PCR 8 as what changed since the good device's last pass.
            let hostileLog = try await Self.hostileBoot(good)
            let hostile = try await good.vigil(
                ["device", "attest", "--eventlog", hostileLog] + controller.connectionArguments)
            #expect(hostile.status == 1, "\(hostile.stdout)\(hostile.stderr)")
            let goodPage = try await browser.go(.GET, "/ui/devices/\(goodID)")
            #expect(goodPage.text.contains("<code>boot.kernel_cmdline</code>"), "\(goodPage.text)")
            #expect(!goodPage.text.contains("<script>window") && !goodPage.text.contains("<img src=x"))
            #expect(goodPage.text.contains("&lt;script&gt;window.__pwned=1&lt;/script&gt;"), "\(goodPage.text)")
            let goodChanged = try #require(Self.section("changed", in: goodPage.text), "\(goodPage.text)")
            #expect(goodChanged.contains("<td>sha256</td><td>8</td>"), "\(goodChanged)")
            #expect(goodChanged.contains("<tr class=\"change-added\">") && goodChanged.contains("EV_IPL"))
            #expect(goodChanged.contains("attested: the data hashes to its digest"), "\(goodChanged)")
            #expect(!goodChanged.contains("change-removed"))

            // Sign-out needs the session's CSRF token, and a form from another origin is refused.
            let noToken = try await browser.go(.POST, "/ui/logout", form: [:])
            #expect(noToken.status == 403)
            let wrong = try await browser.go(.POST, "/ui/logout", form: ["csrf": String(repeating: "f", count: 64)])
            #expect(wrong.status == 403)
            let csrf = try #require(fleet.csrf)

            // The audit log: the sign-in is there, the filter narrows it, verifying needs the CSRF token, and an
            // entry edited in the database shows as the break.
            let auditPage = try await browser.go(.GET, "/ui/audit")
            #expect(auditPage.status == 200 && auditPage.text.contains("dashboard.sign_in"), "\(auditPage.text)")
            #expect(auditPage.text.contains("<td>nonce</td>"))
            let filtered = try await browser.go(.GET, "/ui/audit?q=dashboard.sign")
            #expect(filtered.text.contains("dashboard.sign_in") && !filtered.text.contains("<td>nonce</td>"))
            let wildcard = try await browser.go(.GET, "/ui/audit?q=%25")
            #expect(!wildcard.text.contains("<td>nonce</td>"), "a % in the filter is a character, not a wildcard")
            #expect(try await browser.go(.POST, "/ui/audit/verify", form: [:]).status == 403)
            let verified = try await browser.go(.POST, "/ui/audit/verify", form: ["csrf": csrf])
            #expect(verified.status == 200 && verified.text.contains("intact,"), "\(verified.text)")
            try await controller.backend.transaction { tx throws(ControllerError) in
                try await tx.execute("UPDATE audit SET detail = 'edited' WHERE seq = 3")
            }
            let broken = try await browser.go(.POST, "/ui/audit/verify", form: ["csrf": csrf])
            #expect(broken.text.contains("broken at entry 3"), "\(broken.text)")
            let foreign = try await browser.go(
                .POST, "/ui/logout", form: ["csrf": csrf], origin: "https://evil.example")
            #expect(foreign.status == 403)
            #expect(try await browser.go(.GET, "/ui/").status == 200, "the refused forms did not end the session")
            let out = try await browser.go(.POST, "/ui/logout", form: ["csrf": csrf])
            #expect(out.status == 303)
            // The old cookie, sent again by hand, opens nothing.
            browser.cookies[DashboardSession.cookie] = sessionID
            #expect(try await browser.go(.GET, "/ui/").status == 303)
            // Both sign-in and sign-out are in the audit chain.
            let audit = try await controller.backend.transaction { tx throws(ControllerError) in
                try await tx.query("SELECT action FROM audit WHERE action LIKE 'dashboard.%' ORDER BY seq", [])
            }
            #expect(try audit.map { try $0.requiredText("action") } == ["dashboard.sign_in", "dashboard.sign_out"])
        } catch {
            await browser.shutdown()
            await controller.stop()
            throw error
        }
        await browser.shutdown()
        await controller.stop()
    }

    /// A real browser (Debian's chromium, headless, driven by selenium from `Tests/Browser`): signs in, sees both
    /// devices, reads the failed rule and PCR on the failing one's page, watches the table change live when the
    /// good device re-attests with script in its kernel command line, finds that script shown as text and not run
    /// (with the added event and PCR 8 as what changed), cannot upload a policy as a viewer nor post a form with a
    /// wrong CSRF token, and is sent to sign in once its cookie is gone. Screenshots go to
    /// `.build/dashboard-screenshots/` (or `$VIGIL_SCREENSHOTS`).
    @Test(.enabled(if: Self.browserAvailable, "chromium, chromium-driver or python3-selenium is missing"))
    func aRealBrowserSignsInReadsWhyADeviceFailedAndSeesTheFleetChangeLive() async throws {
        let controller = try await ControllerHarness.start()
        let good = try TestDevice()
        let bad = try TestDevice(fresh: true)
        defer {
            good.stop()
            bad.stop()
        }
        do {
            let (goodID, badID, viewer) = try await Self.fleet(controller, good: good, bad: bad)
            let tokenFile = good.path("viewer-token")
            try viewer.write(toFile: tokenFile, atomically: true, encoding: .utf8)
            // The good device's next boot carries markup and script in its kernel command line (measured and
            // bound): its re-attestation, started by the browser test while the fleet page is open, fails, and its
            // page must show the command line as text.
            let hostileLog = try await Self.hostileBoot(good)
            let screenshots =
                ProcessInfo.processInfo.environment["VIGIL_SCREENSHOTS"]
                ?? SoftwareTPM.repositoryRoot.appendingPathComponent(".build/dashboard-screenshots").path
            let script = SoftwareTPM.repositoryRoot.appendingPathComponent("Tests/Browser/dashboard_browser_test.py")
            let arguments =
                [
                    script.path, "--url", controller.url, "--token", tokenFile, "--good", goodID, "--bad", badID,
                    "--screenshots", screenshots, "--reattest", ProcessRunner.vigilExecutable, "device", "attest",
                    "--eventlog", hostileLog,
                ] + controller.connectionArguments
            let tcti = good.simulator.tctiString
            let result = try await withCheckedThrowingContinuation { continuation in
                DispatchQueue.global().async {
                    continuation.resume(
                        with: Result {
                            try ProcessRunner.run(
                                "python3", arguments, environment: ["VIGIL_TCTI": tcti, "TSS2_LOG": "all+none"],
                                timeoutSeconds: 300)
                        })
                }
            }
            #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
            #expect(result.stdout.contains("PASS"), "\(result.stdout)")
            for name in ["fleet.png", "device-failed.png", "fleet-after-reattest.png", "device-hostile-cmdline.png"] {
                #expect(FileManager.default.fileExists(atPath: screenshots + "/" + name), "screenshot \(name)")
            }
        } catch {
            await controller.stop()
            throw error
        }
        await controller.stop()
    }

    /// chromium, its driver and selenium are here (under CI they must be: scripts/test.sh installs them).
    static var browserAvailable: Bool {
        if SoftwareTPM.isCI { return true }
        guard SoftwareTPM.which("chromium") != nil, SoftwareTPM.which("chromedriver") != nil else { return false }
        return (try? ProcessRunner.run("python3", ["-c", "import selenium"]).status) == 0
    }

    /// The device page's section whose heading has `id`, up to the next section.
    static func section(_ id: String, in html: String) -> String? {
        guard let start = html.range(of: "<h2 id=\"\(id)\">") else { return nil }
        let rest = html[start.lowerBound...]
        return String(rest[..<(rest.range(of: "</section>")?.upperBound ?? rest.endIndex)])
    }

    /// A kernel command line that forbids itself (`single`) and carries markup and script.
    static let hostileCommandLine =
        #"BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro single "><script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">"#

    /// Boots `device` with the fixture log plus one more EV_IPL event in PCR 8 carrying ``hostileCommandLine``
    /// (as GRUB logs it, `kernel_cmdline: …`, bound to its digests), extending its TPM with the same digests;
    /// returns the log's path.
    static func hostileBoot(_ device: TestDevice) async throws -> String {
        let boot = try LogAppend.append(
            to: try Array(Data(contentsOf: URL(fileURLWithPath: ControllerFixtures.eventLog))), pcr: 8,
            type: 0x0000_000D, data: Array("kernel_cmdline: \(hostileCommandLine)".utf8))
        let path = device.path("hostile-cmdline.bin")
        try Data(boot.log).write(to: URL(fileURLWithPath: path))
        try await device.open().pcrExtend(8, digests: boot.digests)
        return path
    }

    /// The table row of `device` in a fleet page.
    static func row(of device: String, in html: String) -> String? {
        guard let start = html.range(of: "data-device=\"\(device)\"") else { return nil }
        let rest = html[start.lowerBound...]
        guard let end = rest.range(of: "</tr>") else { return nil }
        return String(rest[..<end.upperBound])
    }

    /// Whatever a device sent reaches the page escaped: a command line, a certificate subject and a refusal
    /// carrying markup render as text.
    @Test func everythingADeviceSentIsEscaped() throws {
        let hostile = #"console=ttyS0 "><script>alert(1)</script><img src=x onerror=alert(2)>"#
        let record = Admin.AttestationRecord(
            at: Date(timeIntervalSince1970: 1_700_000_000), pass: false, policy: "fleet-lab@1",
            failures: [
                Admin.RuleFailure(
                    rule: "boot.kernel_cmdline", bank: "sha256", pcr: 8, event: 41, expected: "no forbidden argument",
                    actual: hostile)
            ], refusal: "refused: \(hostile)", evidenceSHA256: nil)
        let id = try #require(DeviceID("vd-" + String(repeating: "a", count: 24)))
        let detail = Admin.DeviceDetail(
            summary: Admin.DeviceSummary(
                deviceID: id, group: "lab", status: "active", policy: "fleet-lab@1", last: record),
            ekFingerprint: nil, akName: nil, onboardedAt: Date(timeIntervalSince1970: 1_690_000_000),
            history: [record], identityProof: "eve-device-certificate",
            eve: Admin.EVEIdentity(
                uuid: "u", serial: "<b>serial</b>", deviceCertificateSubject: "CN=\(hostile)",
                deviceCertificateSHA256: "00", certificates: [:]))
        let pages = [
            DashboardPages.devicePage(
                detail, boot: DashboardBoot(latest: nil, lastPass: nil),
                now: Date(timeIntervalSince1970: 1_700_000_100), freshFor: 900),
            DashboardPages.fleetRegion(
                [detail.summary], DashboardPages.FleetQuery(["q": hostile]), now: Date(), freshFor: 900),
        ]
        for html in pages {
            #expect(!html.contains("<script"), "\(html)")
            #expect(!html.contains("<img"), "\(html)")
            #expect(!html.contains("<b>serial"), "\(html)")
        }
        #expect(pages[0].contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "\(pages[0])")
        #expect(pages[0].contains("<td>sha256 8</td>") && pages[0].contains("<td>41</td>"))
    }

    /// Signs `browser` in with `token`; returns the CSRF token of its session's forms.
    static func signIn(_ browser: Browser, token: String) async throws -> String {
        let form = try await browser.go(.GET, "/ui/login")
        let signedIn = try await browser.go(
            .POST, "/ui/login", form: ["token": token, "csrf": try #require(form.csrf)])
        #expect(signedIn.status == 303, "\(signedIn.text)")
        return try #require(try await browser.go(.GET, "/ui/").csrf)
    }

    /// The policies pages over HTTPS: every policy with its assignment and lint; a viewer sees no upload form and is
    /// refused (and audited) when it posts one anyway; a policy-admin's upload is linted first, its error shown at
    /// file:line:column with the offending line, and nothing stored; a good upload becomes a new version, and two
    /// versions are compared (what the new one accepts or refuses, and the source line by line), escaped.
    @Test(arguments: ControllerHarness.Database.available)
    func policiesAreListedLintedComparedAndOnlyAPolicyAdminUploads(_ database: ControllerHarness.Database)
        async throws
    {
        let controller = try await ControllerHarness.start(database)
        let viewerBrowser = try Browser(controller)
        let adminBrowser = try Browser(controller)
        do {
            try await controller.prepareFleet()
            let admin = try await controller.admin()
            let viewer = try await controller.controller.createToken(admin, Admin.TokenRequest(role: .viewer)).token
            let policyAdmin = try await controller.controller.createToken(
                admin, Admin.TokenRequest(role: .policyAdmin)
            ).token
            func stored(_ name: String) async throws -> Int {
                try await controller.backend.transaction { tx throws(ControllerError) in
                    try await tx.query("SELECT version FROM policies WHERE name = ?", [.text(name)]).count
                }
            }
            let good = "id: lab-strict\nversion: 1\nextends: fleet-lab\npcrs:\n  sha256:\n    \"4\": replay\n"

            // A viewer: the list, no form; a post made anyway is refused on the role and audited.
            let viewerCSRF = try await Self.signIn(viewerBrowser, token: viewer)
            let list = try await viewerBrowser.go(.GET, "/ui/policies")
            #expect(list.status == 200)
            #expect(list.text.contains("<a href=\"/ui/policies/fleet-lab\">fleet-lab</a>"), "\(list.text)")
            #expect(list.text.contains("group:lab → 1"), "\(list.text)")
            #expect(list.text.contains("<span class=\"lint-ok\">ok</span>"), "\(list.text)")
            #expect(!list.text.contains("<textarea") && list.text.contains("needs the policy-admin role"))
            let refused = try await viewerBrowser.go(
                .POST, "/ui/policies",
                form: ["csrf": viewerCSRF, "name": "lab-strict", "yaml": good, "parent": "fleet-lab@1"])
            #expect(refused.status == 403, "\(refused.text)")
            #expect(refused.text.contains("policy-admin"))
            #expect(try await stored("lab-strict") == 0)
            let audited = try await controller.backend.transaction { tx throws(ControllerError) in
                try await tx.query(
                    "SELECT outcome FROM audit WHERE action = 'policy.add' AND subject = 'lab-strict'", [])
            }
            #expect(try audited.map { try $0.requiredText("outcome") } == ["refused:role_insufficient"])

            // A policy-admin: the form; a lint error at its line and column, with the line; nothing stored.
            let adminCSRF = try await Self.signIn(adminBrowser, token: policyAdmin)
            #expect(try await adminBrowser.go(.GET, "/ui/policies").text.contains("<textarea"))
            let typo = good.replacingOccurrences(of: "replay", with: "replai")
            let lint = try await adminBrowser.go(
                .POST, "/ui/policies",
                form: ["csrf": adminCSRF, "name": "lab-strict", "yaml": typo, "parent": "fleet-lab@1"])
            #expect(lint.status == 422, "\(lint.text)")
            #expect(lint.text.contains("<code class=\"location\">lab-strict.yaml:6:"), "\(lint.text)")
            #expect(lint.text.contains("<pre class=\"source\">    &quot;4&quot;: replai\n"), "\(lint.text)")
            #expect(lint.text.contains("replai\n</textarea>"), "the form keeps what was typed")
            #expect(try await stored("lab-strict") == 0)
            // Without its parent, `extends: fleet-lab` resolves to nothing.
            let orphan = try await adminBrowser.go(
                .POST, "/ui/policies", form: ["csrf": adminCSRF, "name": "lab-strict", "yaml": good, "parent": ""])
            #expect(orphan.status == 422 && orphan.text.contains("fleet-lab"), "\(orphan.text)")
            // Forms without the session's token or from another origin.
            let forged = try await adminBrowser.go(
                .POST, "/ui/policies",
                form: [
                    "csrf": String(repeating: "0", count: 64), "name": "lab-strict", "yaml": good,
                    "parent": "fleet-lab@1",
                ])
            #expect(forged.status == 403)
            let foreign = try await adminBrowser.go(
                .POST, "/ui/policies",
                form: ["csrf": adminCSRF, "name": "lab-strict", "yaml": good, "parent": "fleet-lab@1"],
                origin: "https://evil.example")
            #expect(foreign.status == 403)
            #expect(try await stored("lab-strict") == 0)

            // Two good versions, the second with one more PCR and markup in its description.
            let first = try await adminBrowser.go(
                .POST, "/ui/policies",
                form: ["csrf": adminCSRF, "name": "lab-strict", "yaml": good, "parent": "fleet-lab@1"])
            #expect(first.status == 303 && first.location == "/ui/policies/lab-strict?version=1", "\(first.text)")
            let second =
                good.replacingOccurrences(
                    of: "version: 1\n", with: "version: 2\ndescription: <script>alert(1)</script>\n")
                + "    \"14\": replay\n"
            let upload = try await adminBrowser.go(
                .POST, "/ui/policies",
                form: ["csrf": adminCSRF, "name": "lab-strict", "yaml": second, "parent": "fleet-lab@1"])
            #expect(upload.status == 303 && upload.location == "/ui/policies/lab-strict?version=2", "\(upload.text)")
            #expect(try await stored("lab-strict") == 2)

            // The viewer reads version 2 compared with version 1.
            let page = try await viewerBrowser.go(.GET, "/ui/policies/lab-strict?version=2")
            #expect(page.status == 200)
            #expect(page.text.contains("Version 1 → version 2"), "\(page.text)")
            #expect(page.text.contains("<code>+ pcrs.sha256.14: new rule"), "\(page.text)")
            #expect(
                page.text.contains(
                    "<tr class=\"diff-add\"><td></td><td>8</td><td>+</td><td><code>    &quot;14&quot;: replay</code>"),
                "\(page.text)")
            #expect(!page.text.contains("<script>alert"), "\(page.text)")
            #expect(page.text.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
            let reversed = try await viewerBrowser.go(.GET, "/ui/policies/lab-strict?version=2&from=2&to=1")
            #expect(reversed.text.contains("<code>- pcrs.sha256.14: rule removed"), "\(reversed.text)")
            #expect(try await viewerBrowser.go(.GET, "/ui/policies/no-such-policy").status == 404)
            #expect(try await viewerBrowser.go(.GET, "/ui/policies/..%2F..").status == 404)
        } catch {
            await viewerBrowser.shutdown()
            await adminBrowser.shutdown()
            await controller.stop()
            throw error
        }
        await viewerBrowser.shutdown()
        await adminBrowser.shutdown()
        await controller.stop()
    }

    /// A boot compared with the last one that passed: an event whose data changed is "altered" (paired by PCR and
    /// type), one that is new is "added", one gone is "removed", in log order; PCRs by bank and index.
    @Test func bootDiffPairsAlteredEventsAndListsPCRs() throws {
        func event(_ i: Int, _ pcr: Int, _ type: String, _ digest: String, _ text: String) -> String {
            #"{"index":\#(i),"pcr":\#(pcr),"type":"\#(type)","digest":"\#(digest)","proof":"bound","text":"\#(text)"}"#
        }
        func record(_ pcrs: String, _ events: [String]) throws -> BootRecord {
            let json =
                #"{"version":1,"bank":"sha256","pcrs":{"sha256":\#(pcrs)},"events":[\#(events.joined(separator: ","))],"truncated":0,"bootApplications":[],"kernelCommandLines":[]}"#
            return try #require(BootRecord.decode(json))
        }
        let before = try record(
            #"{"4":"aa","8":"bb"}"#,
            [
                event(0, 4, "EV_EFI_BOOT_SERVICES_APPLICATION", "01", "shim"), event(1, 8, "EV_IPL", "02", "ro quiet"),
                event(2, 8, "EV_IPL", "03", "grub_cmd: boot"),
            ])
        let after = try record(
            #"{"4":"aa","8":"cc","9":"dd"}"#,
            [
                event(0, 4, "EV_EFI_BOOT_SERVICES_APPLICATION", "01", "shim"), event(1, 8, "EV_IPL", "04", "ro single"),
                event(2, 9, "EV_IPL", "05", "/boot/vmlinuz"),
            ])
        let diff = BootDiff(from: before, to: after)
        #expect(
            diff.pcrs == [
                .init(bank: "sha256", pcr: 8, before: "bb", after: "cc"),
                .init(bank: "sha256", pcr: 9, before: nil, after: "dd"),
            ])
        #expect(diff.events.map(\.kind) == [.altered, .removed, .added], "\(diff.events)")
        #expect(diff.events[0].before?.text == "ro quiet" && diff.events[0].after?.text == "ro single")
        #expect(diff.events[1].before?.text == "grub_cmd: boot" && diff.events[2].after?.text == "/boot/vmlinuz")
        #expect(BootDiff(from: before, to: before).isEmpty)
        // A record of another layout version is not shown rather than misread.
        #expect(BootRecord.decode(#"{"version":2}"#) == nil && BootRecord.decode("not json") == nil)
    }

    /// A policy source compared line by line: changed lines as removed and added, long unchanged runs folded.
    @Test func policySourceDiff() {
        let old = (1...20).map { "line \($0)" }.joined(separator: "\n")
        let new = old.replacingOccurrences(of: "line 10\n", with: "line ten\n") + "\nline 21"
        let lines = DashboardPages.textDiff(old: old, new: new)
        #expect(lines.filter { $0.kind == "del" }.map(\.text) == ["line 10"])
        #expect(lines.filter { $0.kind == "add" }.map(\.text) == ["line ten", "line 21"])
        #expect(lines.first?.kind == "skip" && lines.first?.text == "6 unchanged lines", "\(lines.map(\.text))")
        #expect(lines.count < 20)
        #expect(DashboardPages.textDiff(old: "", new: "a").map(\.kind) == ["del", "add"])
    }

    /// Revoked overrides everything; no verdict is "never"; a pass older than a result's lifetime is stale.
    @Test func fleetStates() throws {
        let id = try #require(DeviceID("vd-" + String(repeating: "b", count: 24)))
        let now = Date(timeIntervalSince1970: 1_700_000_000)
        func summary(status: String = "active", pass: Bool?, age: TimeInterval = 0) -> Admin.DeviceSummary {
            Admin.DeviceSummary(
                deviceID: id, group: "lab", status: status, policy: nil,
                last: pass.map {
                    Admin.AttestationRecord(
                        at: now.addingTimeInterval(-age), pass: $0, policy: nil, failures: [], refusal: nil,
                        evidenceSHA256: nil)
                })
        }
        typealias S = DashboardPages.FleetState
        #expect(S.of(summary(pass: true), now: now, freshFor: 900) == .trusted)
        #expect(S.of(summary(pass: true, age: 901), now: now, freshFor: 900) == .stale)
        #expect(S.of(summary(pass: false), now: now, freshFor: 900) == .failed)
        #expect(S.of(summary(pass: nil), now: now, freshFor: 900) == .never)
        #expect(S.of(summary(status: "revoked", pass: true), now: now, freshFor: 900) == .revoked)
    }
}
