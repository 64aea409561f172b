import ControllerProtocol
import Foundation

/// The audit log as the dashboard shows it: a page of entries, newest first, filtered by text, and the last
/// recorded verification of the chain (a verification is itself an audit entry, `audit.verify`).
struct DashboardAudit: Sendable {
    /// Entries shown, newest first.
    let entries: [AuditLog.Entry]
    /// The newest `audit.verify` entry, if the chain was ever verified.
    let lastVerification: AuditLog.Entry?
    /// The sequence number to pass as `before` for the next (older) page, if there is one.
    let older: Int64?

    /// Entries on one page.
    static let pageSize = 100
}

extension Controller {
    /// A page of the audit log for `caller` (a viewer may read it): entries before `before` (all when nil) whose
    /// actor, action, subject or outcome contains `filter` (case-insensitive), newest first.
    func dashboardAudit(_ caller: AdminCaller, filter: String, before: Int64?) async throws(ControllerError)
        -> DashboardAudit
    {
        // The filter is matched literally: LIKE's own wildcards in it are escaped.
        let needle = String(filter.lowercased().prefix(200))
        var escaped = ""
        for c in needle {
            if c == "\\" || c == "%" || c == "_" { escaped.append("\\") }
            escaped.append(c)
        }
        let pattern = "%\(escaped)%"
        let columns = "seq, at, actor, action, subject, outcome, detail, prev_digest"
        return try await backend.transaction { tx throws(ControllerError) in
            let rows = try await tx.query(
                "SELECT \(columns) FROM audit WHERE seq < ? AND lower(actor || ' ' || action || ' ' || subject || ' ' || outcome) LIKE ? ESCAPE '\\' ORDER BY seq DESC LIMIT ?",
                [
                    .integer(before ?? Int64.max), .text(pattern),
                    .integer(Int64(DashboardAudit.pageSize + 1)),
                ])
            var entries = try rows.map { row throws(ControllerError) in try Self.auditEntry(row) }
            var older: Int64?
            if entries.count > DashboardAudit.pageSize {
                entries.removeLast()
                older = entries.last?.seq
            }
            let last = try await tx.first(
                "SELECT \(columns) FROM audit WHERE action = 'audit.verify' ORDER BY seq DESC LIMIT 1", [])
            return DashboardAudit(
                entries: entries,
                lastVerification: try last.map { row throws(ControllerError) in
                    try Self.auditEntry(row)
                }, older: older)
        }
    }

    static func auditEntry(_ row: SQLRow) throws(ControllerError) -> AuditLog.Entry {
        AuditLog.Entry(
            seq: try row.requiredInteger("seq"), at: try row.requiredInteger("at"),
            actor: try row.requiredText("actor"), action: try row.requiredText("action"),
            subject: try row.requiredText("subject"), outcome: try row.requiredText("outcome"),
            detail: try row.requiredText("detail"), prevDigest: try row.requiredText("prev_digest"))
    }
}
