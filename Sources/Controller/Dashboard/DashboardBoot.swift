import ControllerProtocol
import Foundation

/// A device's latest boot as its latest attestation showed it, and the last boot that passed before it: what the
/// device page decodes and compares (``BootDiff``).
struct DashboardBoot: Sendable {
    /// One attestation's boot.
    struct Shown: Sendable {
        let at: Date
        let pass: Bool
        /// nil: the evidence was refused before its log was verified, or it was stored before records were kept.
        let record: BootRecord?
    }

    /// The latest attestation.
    let latest: Shown?
    /// The last passing attestation before it (nil when it is itself the pass, or none passed).
    let lastPass: Shown?
}

extension Controller {
    /// The boots the device page shows for `device` (viewer role, checked by the caller's session).
    func dashboardBoot(_ device: DeviceID) async throws(ControllerError) -> DashboardBoot {
        try await backend.transaction { tx throws(ControllerError) in
            func shown(_ row: SQLRow?) throws(ControllerError) -> DashboardBoot.Shown? {
                guard let row else { return nil }
                return DashboardBoot.Shown(
                    at: Date(sqlMilliseconds: try row.requiredInteger("at")),
                    pass: try row.requiredInteger("pass") == 1,
                    record: try row.text("record").flatMap(BootRecord.decode))
            }
            let latest = try await tx.first(
                "SELECT a.at AS at, a.pass AS pass, b.record AS record FROM attestations a LEFT JOIN boot_records b ON b.sha256 = a.boot_sha256 WHERE a.device_id = ? ORDER BY a.at DESC LIMIT 1",
                [.text(device.rawValue)])
            guard let latest = try shown(latest) else { return DashboardBoot(latest: nil, lastPass: nil) }
            guard !latest.pass else { return DashboardBoot(latest: latest, lastPass: nil) }
            let pass = try await tx.first(
                "SELECT a.at AS at, a.pass AS pass, b.record AS record FROM attestations a LEFT JOIN boot_records b ON b.sha256 = a.boot_sha256 WHERE a.device_id = ? AND a.pass = 1 ORDER BY a.at DESC LIMIT 1",
                [.text(device.rawValue)])
            return DashboardBoot(latest: latest, lastPass: try shown(pass))
        }
    }
}
