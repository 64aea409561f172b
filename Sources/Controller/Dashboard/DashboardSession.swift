import Attest
import ControllerProtocol
import Crypto
import Foundation

/// A signed-in dashboard user: the admin token it signed in with (by role) and the session's CSRF token.
///
/// The browser holds only the session id (a 256-bit random value in an HttpOnly, Secure, SameSite=Strict cookie);
/// the database holds its SHA-256, so a copy of the database opens no session. The admin token itself never
/// reaches the browser after sign-in. Every request looks the session up again, joined with the token: a token
/// removed or given another role takes effect on the next page, on every instance.
struct DashboardSession: Sendable {
    /// The caller, as the admin API knows it (role, token hash prefix for the audit log).
    let caller: Controller.AdminCaller
    /// The value every form must send back (synchronizer token), random per session.
    let csrf: String
    /// The session id's SHA-256 (hex): what the database knows it by.
    let idHash: String

    /// How long a session lasts from sign-in (no sliding renewal: a stolen cookie dies with its session).
    static let lifetime: TimeInterval = 8 * 3600
    /// The session cookie's name: `__Host-` so that only this origin, over HTTPS, with `Path=/` and no `Domain`,
    /// can set it (a sibling subdomain cannot plant one).
    static let cookie = "__Host-vigil_session"
    /// The sign-in form's double-submit cookie (CSRF protection before there is a session).
    static let loginCookie = "__Host-vigil_login"
    /// Session ids and CSRF tokens: 32 random bytes, hex.
    static func randomToken() -> String {
        Hex.encode(SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
    }

    /// The SHA-256 of a session id, as stored.
    static func hash(_ id: String) -> String { Hex.encode(SHA256.hash(data: Array(id.utf8))) }

    /// Compares two secrets in time independent of where they differ.
    static func same(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var difference: UInt8 = 0
        for i in x.indices { difference |= x[i] ^ y[i] }
        return difference == 0
    }
}

extension Controller {
    /// Signs in to the dashboard with an admin token (any role): a new session, audited; the token must be one
    /// the admin API accepts. Returns the session id for the cookie.
    func dashboardSignIn(token: String) async throws(ControllerError) -> String {
        let caller = try await authenticateAdmin(authorization: "Bearer \(token)", requires: .viewer)
        let tokenHash = TokenHash.hash(token)
        let id = DashboardSession.randomToken()
        try await adminAction(caller, "dashboard.sign_in", subject: "session:\(DashboardSession.hash(id).prefix(12))") {
            tx, now throws(ControllerError) in
            // Expired sessions go when someone signs in: the table stays the size of the live ones.
            try await tx.execute("DELETE FROM ui_sessions WHERE expires_at < ?", [.integer(now.sqlMilliseconds)])
            try await tx.execute(
                "INSERT INTO ui_sessions (session_sha256, token_sha256, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                [
                    .text(DashboardSession.hash(id)), .text(tokenHash), .text(DashboardSession.randomToken()),
                    .integer(now.sqlMilliseconds),
                    .integer(now.addingTimeInterval(DashboardSession.lifetime).sqlMilliseconds),
                ])
            return ((), "session until \(Int(now.addingTimeInterval(DashboardSession.lifetime).timeIntervalSince1970))")
        }
        return id
    }

    /// The live session a cookie names, nil if there is none (unknown, expired, or its token gone).
    func dashboardSession(id: String?) async throws(ControllerError) -> DashboardSession? {
        guard let id, id.utf8.count == 64, id.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) })
        else { return nil }
        let hash = DashboardSession.hash(id)
        let now = clock()
        let row = try await backend.transaction { tx throws(ControllerError) in
            try await tx.first(
                "SELECT s.csrf AS csrf, s.expires_at AS expires_at, t.role AS role, t.token_sha256 AS token FROM ui_sessions s JOIN api_tokens t ON t.token_sha256 = s.token_sha256 WHERE s.session_sha256 = ?",
                [.text(hash)])
        }
        guard let row, try row.requiredInteger("expires_at") > now.sqlMilliseconds,
            let role = Admin.Role(rawValue: try row.requiredText("role"))
        else { return nil }
        return DashboardSession(
            caller: AdminCaller(tokenHash: String(try row.requiredText("token").prefix(12)), role: role),
            csrf: try row.requiredText("csrf"), idHash: hash)
    }

    /// Ends a session (sign-out), audited.
    func dashboardSignOut(_ session: DashboardSession) async throws(ControllerError) {
        try await adminAction(session.caller, "dashboard.sign_out", subject: "session:\(session.idHash.prefix(12))") {
            tx, _ throws(ControllerError) in
            try await tx.execute("DELETE FROM ui_sessions WHERE session_sha256 = ?", [.text(session.idHash)])
            return ((), "")
        }
    }
}
