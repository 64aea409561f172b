import ControllerProtocol
import Foundation

/// One stored verdict, as the dashboard's live stream announces it (no detail: the page fetches that itself,
/// through the session's role).
struct DashboardVerdict: Codable, Sendable {
    /// The device.
    let device: String
    /// Whether it passed.
    let pass: Bool
    /// When it was stored.
    let at: Date
}

extension Controller {
    /// Verdicts stored after `since` (by any instance sharing the database), oldest first, at most 200.
    func dashboardVerdicts(since: Date) async throws(ControllerError) -> [DashboardVerdict] {
        try await backend.transaction { tx throws(ControllerError) in
            try await tx.query(
                "SELECT device_id, pass, at FROM attestations WHERE at > ? ORDER BY at LIMIT 200",
                [.integer(since.sqlMilliseconds)]
            ).map { row throws(ControllerError) in
                DashboardVerdict(
                    device: try row.requiredText("device_id"), pass: try row.requiredInteger("pass") == 1,
                    at: Date(sqlMilliseconds: try row.requiredInteger("at")))
            }
        }
    }
}
