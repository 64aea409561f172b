import Attest
public import ControllerProtocol
import Foundation

extension Controller {
    /// `POST /v1/node/report`: a node agent's account of its gate and plugins, stored on the device record (the
    /// latest one only). A change of the gate is audited; the periodic repeats are not. The answer says whether the
    /// controller's latest verdict for the device is an unexpired pass; a revoked device is refused with 403
    /// `device_revoked` by ``authenticate(authorization:method:path:body:)``, which is how a node learns of a
    /// revocation within one report interval.
    public func nodeReport(authorization: String?, method: String, path: String, body: [UInt8])
        async throws(ControllerError) -> NodeReport.Directive
    {
        let device = try await authenticate(authorization: authorization, method: method, path: path, body: body)
        let now = clock()
        let report: NodeReport.State
        do throws(ControllerProtocolError) {
            report = try APIJSON.decode(
                NodeReport.State.self, from: body, limit: NodeReport.maximumBody,
                knownKeys: NodeReport.State.knownKeys)
            try report.validate()
        } catch { throw ControllerError(error) }
        let stored: [UInt8]
        do throws(ControllerProtocolError) { stored = try APIJSON.encode(report) } catch {
            throw ControllerError(error)
        }
        return try await backend.transaction { [self] tx throws(ControllerError) in
            guard
                let row = try await tx.first(
                    "SELECT status, last_attestation, node_state FROM devices WHERE device_id = ?",
                    [.text(device.id.rawValue)])
            else { throw .unauthenticated("unknown device \(device.id)") }
            let previousGate = try row.text("node_state").flatMap { text in
                try? APIJSON.decode(NodeReport.State.self, from: Array(text.utf8), limit: NodeReport.maximumBody)
            }?.gateOpen
            try await tx.execute(
                "UPDATE devices SET node_state = ?, node_state_at = ? WHERE device_id = ?",
                [
                    .text(String(decoding: stored, as: UTF8.self)), .integer(now.sqlMilliseconds),
                    .text(device.id.rawValue),
                ])
            if previousGate != report.gateOpen {
                try await AuditLog.append(
                    tx, backend: backend, at: now, actor: .device(device.id), action: "node.gate",
                    subject: device.id.rawValue, outcome: report.gateOpen ? "open" : "closed",
                    detail: "phase \(report.phase): \(report.reason.prefix(512))")
            }
            var latestPass = false
            var latestExpires: Date?
            if let last = try row.text("last_attestation"),
                let a = try await tx.first("SELECT pass, expires_at FROM attestations WHERE id = ?", [.text(last)])
            {
                let expires = try a.integer("expires_at")
                latestExpires = expires.map { Date(sqlMilliseconds: $0) }
                latestPass = try a.requiredInteger("pass") == 1 && (expires ?? 0) > now.sqlMilliseconds
            }
            return NodeReport.Directive(
                status: try row.requiredText("status"), latestPass: latestPass, latestExpires: latestExpires)
        }
    }
}
